"""A rescoring session: its context loaded once, and the unit of work.

``load_context`` loads the ``RescoreContext`` (model, vocabulary, words,
references), which forked workers inherit. ``run_unit`` rescores one
``LatticeBatch`` into a report and a collector; the serial pipeline and every
worker of ``parallel.py`` call it, so neither imports the other, and the jobs
only know the context module::

    pipeline.py ──> session.py <── parallel.py
                        │
                        ├──> job.py, scoring.py (the job) ──> context.py
                        ├──> read_pruning.py (InputFacts)
                        └──> context.py

The job itself is called in ``_rescore_lattices``, the one place to change
when the job changes; the sizes and word counts of the lattices as read come
from ``read_pruning`` (``InputFacts``), apart from the job.
"""
import contextlib
import gc
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Protocol, Sequence

from rescorer.devices import resolve_device
from rescorer.errors import ConfigError, Failure, RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.wer import load_references
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.read_pruning import InputFacts, input_facts
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.timing import stage
from rescorer.rescoring.job import rescore_lattices
from rescorer.model.checkpoint import load_model
from rescorer.ngram.arpa import ProgressCallback
from rescorer.ngram.cache import load_ngram


class ProgressHook(Protocol):
    """Receives progress events (the CLI draws a bar; tests pass None)."""

    def utterance_done(self, utt_id: Optional[str], ok: bool, message: Optional[str] = None) -> None:
        """One utterance finished (ok) or failed (``message`` says why)."""


def history_window(model_window: Optional[int], config: RescoreConfig) -> Optional[int]:
    """The expansion window: the model's K, capped by --history-approx.

    Raises:
      ConfigError: lattice mode with an unbounded-history model and no --history-approx.
    """
    if config.mode == "nbest":
        return model_window  # whole sentences: exact for every solver
    if model_window is None and config.history_approx is None:
        raise ConfigError(
            "the model has unbounded history (sequential solver), so lattice mode cannot be "
            "exact: give --history-approx N to expand with N tokens of history (an n-gram "
            "approximation), or use --mode nbest"
        )
    if config.history_approx is None:
        return model_window
    return config.history_approx if model_window is None else min(model_window, config.history_approx)


def load_context(config: RescoreConfig,
                 ngram_progress: Optional[ProgressCallback] = None) -> RescoreContext:
    """Load references, the model, the ARPA n-gram and the symbol table; check the options.

    ``ngram_progress(bytes_read, total_bytes)`` hears about the ARPA parse
    (not called when it loads from ``--ngram-cache``). Forked ``--jobs``
    workers inherit the loaded context, so every file is loaded once per run.
    """
    references = load_references(config.refs, config.cuts)
    model, vocabulary = load_model(config.model, resolve_device(config.device))
    window = history_window(model.history_window, config)
    ngram = None
    if config.ngram_lm is not None:
        ngram = load_ngram(config.ngram_lm, config.ngram_cache, ngram_progress)
    # Without --words, one growing table collects the words of every SLF file.
    symbols = SymbolTable() if config.words is None else SymbolTable.from_file(config.words)
    return RescoreContext(model, vocabulary, window, symbols, references, config.lowercase, ngram)


@contextlib.contextmanager
def frozen_heap() -> Iterator[Callable[[], None]]:
    """Keep the objects alive at entry out of Python's cyclic GC for the block.

    torch's import leaves ~180,000 tracked objects; every full collection
    walks them all, and in forked workers it also writes to their pages,
    copying them. ``gc.freeze`` moves them to a generation that is never
    collected; the yielded function freezes what exists by then too (call it
    after loading, before forking). Objects made later are collected as
    usual. At the end everything is unfrozen again, unless the caller had
    frozen objects itself (then all stay frozen).
    """
    owned = gc.get_freeze_count() == 0
    gc.freeze()
    try:
        yield gc.freeze
    finally:
        if owned:
            gc.unfreeze()


def record_failure(
    report: RescoreReport, config: RescoreConfig, progress: Optional[ProgressHook],
    path: Optional[Path], utt_id: Optional[str], error: RescorerError,
) -> None:
    """Record a skipped utterance (or file) with its file and utterance; re-raise under --strict."""
    if error.path is None and path is not None:
        error.path = str(path)
    if error.utt_id is None:
        error.utt_id = utt_id
    if config.strict:
        raise error
    report.failures.append(Failure(path, utt_id, error))
    if progress is not None:
        progress.utterance_done(utt_id, False, str(error))


def run_unit(
    batch: LatticeBatch, paths: Sequence[Optional[Path]], context: RescoreContext, config: RescoreConfig,
    report: RescoreReport, collector: ResultCollector, progress: Optional[ProgressHook],
    facts: Optional[Dict[str, InputFacts]] = None,
) -> None:
    """Rescore one work unit: every lattice of ``batch``, LM-scored together.

    Args:
      batch:
        U lattices with unique utterance ids (``[utt][state][arc]``).
      paths:
        U files, ``paths[u]`` holds lattice u (named in failures; None when in memory).
      context, config:
        The run's shared state and settings.
      report, collector:
        Receive the results (``report.results``, ``collector.results``) and
        failures of these lattices.
      progress:
        Told about every finished or failed utterance, or None.
      facts:
        The ``read_pruning.InputFacts`` of every lattice (the run's inputs), or
        None for lattices handed over as they are: their facts are taken here.
    """
    done = len(report.results)
    _rescore_lattices(batch, list(paths), context, config, report, collector, progress, facts)
    rescored = list(report.results)[done:]
    if facts is None:
        index = {utt: position for position, utt in enumerate(batch.utt_ids)}
        selected = batch.select([index[utt] for utt in rescored])
        facts = dict(zip(rescored, input_facts(selected, context, context.symbols)))
    for utt in rescored:
        read = facts[utt]
        report.results[utt] = replace(report.results[utt], arcs=read.arcs, words=read.words,
                                      oov_words=read.oov_words, arpa_oov_words=read.arpa_oov_words)


def _rescore_lattices(
    batch: LatticeBatch, paths: List[Optional[Path]], context: RescoreContext, config: RescoreConfig,
    report: RescoreReport, collector: ResultCollector, progress: Optional[ProgressHook],
    facts: Optional[Dict[str, InputFacts]],
) -> None:
    """THE job call: the batched engine rescores ``batch``; results and failures are recorded."""
    device = next(context.model.parameters()).device
    with stage("expand"):
        outcome = rescore_lattices(batch.to(device), paths, [context.symbols] * batch.num_utts,
                                   context, config, collector, facts)
    for index, error in sorted(outcome.failures, key=lambda failure: failure[0]):
        record_failure(report, config, progress, paths[index], batch.utt_ids[index], error)
    for utt_id, stats in outcome.results.items():
        report.results[utt_id] = stats
        if progress is not None:
            progress.utterance_done(utt_id, True)
    report.unique_histories += outcome.unique_histories
