"""``--jobs N``: rescore work units (runs of lattices, not files) in N worker processes.

The graph algorithms run many small tensor operations, which extra torch
threads slow down rather than speed up, so several cores are used by running
several single-threaded workers. Workers are forked (CPU only) after the
model is loaded and every input is read, so each starts with the model,
vocabulary, references and lattices in memory and receives only unit
numbers. Each unit is rescored by ``session.run_unit`` into a partial
``RescoreReport`` and ``ResultCollector``, merged by the parent in unit
order, so the outputs equal a one-process run's.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import List, Optional, Tuple

import torch

from rescorer.lattice.fsavec import Lattice
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.inputs import make_unit
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.session import ProgressHook, run_unit

_WORKER_STATE: Optional[Tuple[RescoreContext, RescoreConfig, List[Tuple[Path, Lattice]]]] = None


def _initialize() -> None:
    """Use one torch thread per worker (the forked state is already in ``_WORKER_STATE``)."""
    assert _WORKER_STATE is not None, "worker forked without state"
    torch.set_num_threads(_WORKER_STATE[1].threads)


def _rescore_unit(unit: Tuple[int, int]) -> Tuple[RescoreReport, ResultCollector]:
    """Rescore lattices ``unit[0]:unit[1]`` in a worker; return the partial report and results."""
    assert _WORKER_STATE is not None, "worker not initialized"
    context, config, items = _WORKER_STATE
    report = RescoreReport()
    collector = ResultCollector(config, None)  # references stay with the parent
    with report.timings.activate():
        batch, paths = make_unit(items[unit[0]:unit[1]])
        run_unit(batch, paths, context, config, report, collector, None)
    return report, collector


def run_parallel(
    items: List[Tuple[Path, Lattice]],
    units: List[Tuple[int, int]],
    context: RescoreContext,
    config: RescoreConfig,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional[ProgressHook],
) -> None:
    """Rescore ``items`` unit by unit in ``config.jobs`` forked workers, merging in unit order.

    Raises:
      RescorerError: the first failure under ``--strict`` (re-raised from a worker).
    """
    global _WORKER_STATE
    _WORKER_STATE = (context, config, items)
    pool = ProcessPoolExecutor(max_workers=min(config.jobs, len(units)),
                               mp_context=multiprocessing.get_context("fork"),
                               initializer=_initialize)
    try:
        with pool:
            for part_report, part_collector in pool.map(_rescore_unit, units):
                _merge(part_report, part_collector, report, collector, progress)
    finally:
        _WORKER_STATE = None


def _merge(part_report: RescoreReport, part_collector: ResultCollector, report: RescoreReport,
           collector: ResultCollector, progress: Optional[ProgressHook]) -> None:
    """Add a worker's partial results (ids are unique: the parent removed repeats)."""
    for failure in part_report.failures:
        report.failures.append(failure)
        if progress is not None:
            progress.utterance_done(failure.utt_id, False, failure.message)
    for utt_id, stats in part_report.results.items():
        report.results[utt_id] = stats
        collector.merge(part_collector, utt_id)
        if progress is not None:
            progress.utterance_done(utt_id, True)
    report.unique_histories += part_report.unique_histories
    report.timings.add(part_report.timings)
