"""``fprescore rescore`` end to end: read, cut into work units, rescore, write.

::

    inputs (all files, read once and pruned as read; --shard keeps 1/N of the utterances)
      -> work units of <= --batch-size lattices (LatticeBatch)
      -> session.run_unit, here or in --jobs forked workers
           lattice -> expand (+ tokens of the kept arcs) | first-pass n-best
           -> one batched LM pass for the unit -> search -> ResultCollector
      -> collector.finish (grid choice, WER rows, onebest.txt, nbest.jsonl)
      -> summary.json (and utterances.jsonl under --shard, for `fprescore merge`)

A bad utterance raises a ``RescorerError`` that is recorded as a ``Failure``
and skipped (``--strict``: re-raised). Global problems (options, ``--out``,
model, references, no lattices at all) raise before any lattice is rescored.
"""
import time
from pathlib import Path
from typing import Callable, Optional

from rescorer.errors import InputFormatError
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.inputs import input_files, make_unit, select_inputs, work_units
from rescorer.rescoring.read_pruning import read_inputs, read_items
from rescorer.rescoring.records import write_records
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.sentences import history_mismatch
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.session import (ProgressHook, frozen_heap, load_context, record_failure,
                                        run_unit)
from rescorer.rescoring.summary import options_of, run_details, write_summary
from rescorer.rescoring.timing import stage
from rescorer.threads import torch_threads


def run_rescore(config: RescoreConfig, progress: Optional[ProgressHook] = None) -> RescoreReport:
    """Rescore every lattice of ``config.lattices`` (this shard's) and write the outputs.

    Returns:
      The ``RescoreReport`` (statistics, failures, WER rows, grid).

    Raises:
      RescorerError: a global problem, or the first failure under ``--strict``.
    """
    with torch_threads(config.threads), frozen_heap() as freeze:
        report = RescoreReport()
        with report.timings.activate():
            _run(config, report, progress, freeze)
        return report


def _run(config: RescoreConfig, report: RescoreReport, progress: Optional[ProgressHook],
         freeze: Callable[[], None]) -> None:
    """``run_rescore`` with ``report``'s timings active; ``freeze`` once the inputs are loaded."""
    started = time.perf_counter()
    context = load_context(config, getattr(progress, "ngram_progress", None))
    files = input_files(config.lattices)
    if config.jobs == 1:
        items, facts = read_inputs(files, context.symbols, context, config)
    elif len(files) > 1:
        from rescorer.rescoring.parallel import read_parallel  # Only for --jobs > 1.

        items, facts = read_parallel(files, context, config, report.timings)
    else:
        from rescorer.rescoring.parallel import prune_parallel  # Only for --jobs > 1.

        with stage("read"):
            items = list(read_items(files, context.symbols))
        items, facts = prune_parallel(items, context, config, report.timings)
    with stage("read"):
        inputs = select_inputs(files, items, config.shard)
    if inputs.lattices_seen == 0 and not inputs.failures:
        raise InputFormatError("no lattices in the inputs (expected at least one lattice)",
                               path=", ".join(map(str, inputs.files)))
    report.files, report.lattices_read = len(inputs.files), inputs.lattices_read
    for failure in inputs.failures:
        record_failure(report, config, progress, failure.path, failure.utt_id, failure.error)
    collector = ResultCollector(config, context.references)
    freeze()  # the model, words and lattices: out of the GC's walks, here and in workers
    units = work_units(len(inputs.items), config.batch_size, config.jobs)
    if config.jobs > 1 and len(units) > 1:
        from rescorer.rescoring.parallel import run_parallel  # Only for --jobs > 1.

        run_parallel(inputs.items, units, context, config, report, collector, progress, facts)
    else:
        for start, stop in units:
            batch, paths = make_unit(inputs.items[start:stop])
            run_unit(batch, paths, context, config, report, collector, progress, facts)
    report.check_oov_rate()
    if report.results or config.shard is not None:
        hypotheses = collector.finish(report)
        if context.window != context.model.history_window and config.mode == "lattice":
            _note_history_mismatch(context, config, report, hypotheses)
    if config.to_stdout:
        report.timings.total = time.perf_counter() - started
        return
    out = Path(config.out)
    with stage("write"):
        if config.shard is not None:
            report.outputs.append(write_records(out, report, collector))
    report.timings.total = time.perf_counter() - started
    report.outputs.append(write_summary(out, options_of(config), report, run_details(config, report)))


def _note_history_mismatch(context: RescoreContext, config: RescoreConfig, report: RescoreReport,
                           hypotheses: dict) -> None:
    """With --history-approx: compare the 1-best nnlm scores with full-history ones."""
    best = [hyps[0] for hyps in hypotheses.values() if hyps]
    if not best:
        return
    mean, largest = history_mismatch(context.model, context.vocabulary, best, config.oov_penalty,
                                     config.chunk_rows)
    report.notes.append(
        f"--history-approx {context.window}: 1-best nnlm differs from full-history scores by "
        f"{mean:.3f} nats on average, {largest:.3f} at most ({len(best)} utterances)"
    )
