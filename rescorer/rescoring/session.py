"""A rescoring session: its context loaded once, and the unit of work.

``load_context`` loads the ``RescoreContext`` (model, vocabulary, words,
references), which forked workers inherit. ``run_unit`` rescores one
``LatticeBatch`` into a report and a collector; the serial pipeline and every
worker of ``parallel.py`` call it, so neither imports the other, and the jobs
only know the context module::

    pipeline.py ──> session.py <── parallel.py
                        │
                        ├──> utterance.py, scoring.py (the jobs) ──> context.py
                        └──> context.py

The job itself is called in ``_rescore_lattices``, the one place to change
when the job changes; word and OOV counts are taken apart from the job.
"""
import contextlib
import gc
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.devices import resolve_device
from rescorer.errors import ConfigError, Failure, RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.wer import load_references
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.report import RescoreReport
from rescorer.rescoring.timing import stage
from rescorer.rescoring.tokens import ArcTokenizer
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
    """
    done = len(report.results)
    _rescore_lattices(batch, list(paths), context, config, report, collector, progress)
    rescored = list(report.results)[done:]
    index = {utt: position for position, utt in enumerate(batch.utt_ids)}
    selected = batch.select([index[utt] for utt in rescored])
    words, oov = word_counts(selected, context.tokenizer(context.symbols))
    arpa_oov = torch.zeros_like(oov)
    if context.ngram is not None:
        _, arpa_oov = word_counts(selected, context.ngram_tokenizer(context.symbols))
    for position, utt in enumerate(rescored):
        report.results[utt] = replace(report.results[utt], words=int(words[position]),
                                      oov_words=int(oov[position]),
                                      arpa_oov_words=int(arpa_oov[position]))


def word_counts(batch: LatticeBatch, tokenizer: ArcTokenizer) -> Tuple[Tensor, Tensor]:
    """Word occurrences on each lattice's arcs, and how many of them the LM lacks.

    Args:
      batch:
        U lattices whose word ids are all in the tokenizer's table.
      tokenizer:
        Maps word ids to LM tokens (cached per word id); tells which are OOV.

    Returns:
      ``(words, oov_words)``: two 1-D int64 tensors of shape (U,).
    """
    word_ids = batch.word_ids.cpu()  # (W,) every word occurrence, arc by arc
    present = torch.bincount(word_ids)  # (max id + 1,) linear time, where unique() sorts
    types = present.nonzero().squeeze(1)  # (T,) each word type once
    is_oov = torch.zeros_like(present)  # (max id + 1,) 1 for the LM's OOV word ids
    is_oov[types] = tokenizer.oov_flags(types)
    word_utt = torch.repeat_interleave(batch.arc_utt.cpu(), batch.words_per_arc.cpu())  # (W,)
    words = torch.bincount(word_utt, minlength=batch.num_utts)  # (U,)
    oov = torch.zeros(batch.num_utts, dtype=torch.int64).index_add_(0, word_utt, is_oov[word_ids])
    return words, oov


def _rescore_lattices(
    batch: LatticeBatch, paths: List[Optional[Path]], context: RescoreContext, config: RescoreConfig,
    report: RescoreReport, collector: ResultCollector, progress: Optional[ProgressHook],
) -> None:
    """THE job call: the batched engine rescores ``batch``; results and failures are recorded."""
    device = next(context.model.parameters()).device
    with stage("expand"):
        outcome = rescore_lattices(batch.to(device), paths, [context.symbols] * batch.num_utts,
                                   context, config, collector)
    for index, error in sorted(outcome.failures, key=lambda failure: failure[0]):
        record_failure(report, config, progress, paths[index], batch.utt_ids[index], error)
    for utt_id, stats in outcome.results.items():
        report.results[utt_id] = stats
        if progress is not None:
            progress.utterance_done(utt_id, True)
    report.unique_histories += outcome.unique_histories
