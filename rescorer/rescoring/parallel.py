"""``--jobs N``: read file groups, then rescore work units (runs of lattices), in N workers.

The graph algorithms run many small tensor operations, which extra torch
threads slow down rather than speed up, so several cores are used by running
several single-threaded workers, forked (CPU only) after the model is loaded.

1. ``read_parallel``: workers read consecutive groups of files and prune
   them (``read_pruning``), so only pruned lattices travel; the parent
   renumbers their words onto the run's table in file order. One input file
   (a k2 file or Kaldi archive of many lattices) is read by the parent and
   pruned by the workers (``prune_parallel``).
2. ``run_parallel``: workers forked after reading start with the model,
   vocabulary and every lattice in memory and receive only unit numbers,
   the units with the most arcs first (the run ends when the last worker does).
   Each unit is rescored by ``session.run_unit`` into a partial
   ``RescoreReport`` and ``ResultCollector``, merged by the parent in unit
   order, so the outputs equal a one-process run's.

Results come back as one blob per task (``blobs.pack``: the tensors as one flat
buffer per dtype) rather than one shared-memory file descriptor per tensor.
"""
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch

from rescorer.lattice.fsavec import Lattice
from rescorer.rescoring.blobs import pack, unpack
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.inputs import FileItems, make_unit, renumber_words
from rescorer.rescoring.read_pruning import InputFacts, prune_items, read_inputs
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.session import ProgressHook, run_unit
from rescorer.rescoring.timing import Timings

_WORKER_STATE: Optional[Tuple[RescoreContext, RescoreConfig, List[Tuple[Path, Lattice]],
                              Dict[str, InputFacts]]] = None
_READ_STATE: Optional[Tuple[List[Path], RescoreContext, RescoreConfig]] = None
_PRUNE_STATE: Optional[Tuple[FileItems, RescoreContext, RescoreConfig]] = None


def _pool(jobs: int) -> ProcessPoolExecutor:
    """``jobs`` forked single-threaded workers."""
    return ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("fork"),
                               initializer=torch.set_num_threads, initargs=(1,))


def _read_group(group: Tuple[int, int]) -> bytes:
    """Read (and prune) files ``group[0]:group[1]`` in a worker.

    Returns the packed (items, the worker's grown table or None, facts, timings).
    """
    assert _READ_STATE is not None, "worker not initialized"
    files, context, config = _READ_STATE
    symbols = context.symbols  # the worker's copy: a growing table grows here alone
    timings = Timings()
    with timings.activate():
        items, facts = read_inputs(files[group[0]:group[1]], symbols, context, config)
    return pack((items, None if symbols.frozen else symbols, facts, timings))


def read_parallel(files: List[Path], context: RescoreContext, config: RescoreConfig,
                  timings: Timings) -> Tuple[FileItems, Dict[str, InputFacts]]:
    """``read_pruning.read_inputs`` of ``files`` in ``config.jobs`` workers, in groups.

    The result equals one process's: every group's words are renumbered onto
    ``context.symbols`` in file order (a growing table), and the facts of a
    repeated utterance id are those of its first lattice.

    Args:
      files:
        The input files, in order.
      context, config:
        The run's context (its word table, tokenizers, references) and settings.
      timings:
        Receives the workers' read and prune seconds.
    """
    global _READ_STATE
    jobs = config.jobs
    count = min(len(files), 4 * jobs)  # a few groups per worker evens out file sizes
    bounds = [len(files) * index // count for index in range(count + 1)]
    _READ_STATE = (files, context, config)
    try:
        with _pool(min(jobs, count)) as pool:
            parts = [unpack(blob) for blob in pool.map(_read_group, list(zip(bounds, bounds[1:])))]
    finally:
        _READ_STATE = None
    return _joined([(items if local is None else renumber_words(items, local, context.symbols),
                     facts, part_timings) for items, local, facts, part_timings in parts], timings)


def _joined(parts: List[Tuple[FileItems, Dict[str, InputFacts], Timings]],
            timings: Timings) -> Tuple[FileItems, Dict[str, InputFacts]]:
    """The workers' (items, facts, timings) in order as one's: a repeated id keeps its first facts."""
    items: FileItems = []
    facts: Dict[str, InputFacts] = {}
    for part_items, part_facts, part_timings in parts:
        items += part_items
        for utt, utt_facts in part_facts.items():
            facts.setdefault(utt, utt_facts)
        timings.add(part_timings)
    return items, facts


def _prune_share(share: Tuple[int, int]) -> bytes:
    """Prune items ``share[0]:share[1]`` (read by the parent) in a worker: (items, facts, timings)."""
    assert _PRUNE_STATE is not None, "worker not initialized"
    items, context, config = _PRUNE_STATE
    timings = Timings()
    with timings.activate():
        pruned, facts = prune_items(items[share[0]:share[1]], context, config, context.symbols)
    return pack((pruned, facts, timings))


def prune_parallel(items: FileItems, context: RescoreContext, config: RescoreConfig,
                   timings: Timings) -> Tuple[FileItems, Dict[str, InputFacts]]:
    """``read_pruning.prune_items`` of lattices the parent read, in ``config.jobs`` workers.

    For few input files (one k2 file or Kaldi archive of many lattices): the
    items are cut into runs of about equal arcs, a few per worker; the result
    equals one process's.
    """
    global _PRUNE_STATE
    if not items:
        return [], {}
    count = min(len(items), 4 * config.jobs)  # a few shares per worker even out the arcs
    ends = torch.cumsum(torch.tensor([getattr(item, "num_arcs", 0) for _, item in items],
                                     dtype=torch.float64), dim=0)  # (N,) arcs up to each item
    goals = ends[-1] * torch.arange(1, count, dtype=torch.float64) / count  # (count-1,)
    cuts = sorted(set(torch.searchsorted(ends, goals).add(1).clamp(max=len(items)).tolist()))
    bounds = [0] + [cut for cut in cuts if 0 < cut < len(items)] + [len(items)]
    shares = list(zip(bounds, bounds[1:]))
    _PRUNE_STATE = (items, context, config)
    try:
        with _pool(min(config.jobs, len(shares))) as pool:
            parts = [unpack(blob) for blob in pool.map(_prune_share, shares)]
    finally:
        _PRUNE_STATE = None
    return _joined(parts, timings)


def _rescore_unit(unit: Tuple[int, int]) -> bytes:
    """Rescore lattices ``unit[0]:unit[1]`` in a worker: the partial report and collector."""
    assert _WORKER_STATE is not None, "worker not initialized"
    context, config, items, facts = _WORKER_STATE
    torch.set_num_threads(config.threads)
    report = RescoreReport()
    collector = ResultCollector(config, None)  # references stay with the parent
    with report.timings.activate():
        batch, paths = make_unit(items[unit[0]:unit[1]])
        run_unit(batch, paths, context, config, report, collector, None, facts)
    return pack((report, collector))


def run_parallel(
    items: List[Tuple[Path, Lattice]],
    units: List[Tuple[int, int]],
    context: RescoreContext,
    config: RescoreConfig,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional[ProgressHook],
    facts: Dict[str, InputFacts],
) -> None:
    """Rescore ``items`` unit by unit in ``config.jobs`` forked workers, merging in unit order.

    ``facts``: the ``read_pruning.InputFacts`` of the items, by utterance id.

    Raises:
      RescorerError: the first failure under ``--strict`` (re-raised from a worker).
    """
    global _WORKER_STATE
    _WORKER_STATE = (context, config, items, facts)
    try:
        with _pool(min(config.jobs, len(units))) as pool:
            futures = {index: pool.submit(_rescore_unit, units[index])
                       for index in _largest_first(items, units)}
            try:
                for index in range(len(units)):  # merged in unit order, whatever ran first
                    _merge(*unpack(futures[index].result()), report, collector, progress)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # --strict: stop the queued units
                raise
    finally:
        _WORKER_STATE = None


def _largest_first(items: List[Tuple[Path, Lattice]], units: List[Tuple[int, int]]) -> List[int]:
    """Unit indices by decreasing arc count (ties: unit order).

    Longest-processing-time-first: the workers' last units are the smallest,
    so they finish close together (the run waits for the slowest worker).
    A unit's time grows with its arcs (levels, pruning) and the histories
    its pruned arcs make (the LM); its arc count is the estimate.
    """
    arcs = [sum(lattice.num_arcs for _, lattice in items[start:stop]) for start, stop in units]
    return sorted(range(len(units)), key=lambda index: (-arcs[index], index))


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
