"""``--jobs N``: rescore groups of files in N worker processes.

The graph algorithms run many small tensor operations, which extra torch
threads slow down rather than speed up, so several cores are used by running
several single-threaded workers. Workers are forked (CPU only) after the model
is loaded, so each starts with the model, vocabulary and references in memory.
Each group of ``--batch-size`` files is rescored in a worker into a partial
``RescoreReport`` and ``ResultCollector``, merged by the parent in file order.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch

from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.report import Failure, RescoreReport

if TYPE_CHECKING:
    from rescorer.rescoring.pipeline import ProgressHook, RescoreContext

_WORKER_STATE: Optional[Tuple["RescoreContext", RescoreConfig]] = None


def _initialize(context: "RescoreContext", config: RescoreConfig) -> None:
    """Keep the (forked) context and settings for ``_rescore_group``."""
    global _WORKER_STATE
    torch.set_num_threads(config.threads)
    _WORKER_STATE = (context, config)


def _rescore_group(files: List[Path]) -> Tuple[RescoreReport, ResultCollector]:
    """Rescore one group of files in a worker; return the partial report and results."""
    from rescorer.rescoring.pipeline import process_files

    assert _WORKER_STATE is not None, "worker not initialized"
    context, config = _WORKER_STATE
    report = RescoreReport()
    collector = ResultCollector(config, None)  # references stay with the parent
    process_files(files, context, config, report, collector, None)
    return report, collector


def file_groups(files: List[Path], size: int, jobs: int) -> List[List[Path]]:
    """Consecutive groups of at most ``size`` files, at least ``jobs`` groups when possible."""
    size = max(1, min(size, -(-len(files) // jobs)))  # ceil(len / jobs)
    return [files[start:start + size] for start in range(0, len(files), size)]


def run_parallel(
    files: List[Path],
    context: "RescoreContext",
    config: RescoreConfig,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional["ProgressHook"],
) -> None:
    """Rescore ``files`` in ``config.jobs`` forked workers, merging into ``report``/``collector``.

    Raises:
      RescorerError: the first failure under ``--strict`` (re-raised from a worker).
    """
    groups = file_groups(files, config.batch_size, config.jobs)
    pool = ProcessPoolExecutor(
        max_workers=min(config.jobs, len(groups)), mp_context=multiprocessing.get_context("fork"),
        initializer=_initialize, initargs=(context, config),
    )
    with pool:
        for part_report, part_collector in pool.map(_rescore_group, groups):
            _merge(part_report, part_collector, report, collector, progress)


def _merge(
    part_report: RescoreReport,
    part_collector: ResultCollector,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional["ProgressHook"],
) -> None:
    """Add a worker's partial results; repeated utterance ids become failures."""
    for failure in part_report.failures:
        report.failures.append(failure)
        if progress is not None:
            progress.utterance_done(failure.utt_id, False, failure.message)
    for utt_id, stats in part_report.results.items():
        if utt_id in report.results:
            problem = "utterance id appears twice (skipped the second)"
            message = f"utterance {utt_id}: {problem}"
            report.failures.append(Failure(None, utt_id, message, problem))
            if progress is not None:
                progress.utterance_done(utt_id, False, message)
            continue
        report.results[utt_id] = stats
        collector.merge(part_collector, utt_id)
        if progress is not None:
            progress.utterance_done(utt_id, True)
    report.unique_histories += part_report.unique_histories
    for name in ("read", "expand", "score", "search"):
        setattr(report.timings, name, getattr(report.timings, name) + getattr(part_report.timings, name))
