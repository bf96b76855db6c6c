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
when the job changes.
"""
import contextlib
from dataclasses import replace
from pathlib import Path
from typing import Iterator, List, Optional, Protocol, Sequence

import torch

from rescorer.devices import resolve_device
from rescorer.errors import ConfigError, RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.wer import load_references
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.context import RescoreContext
from rescorer.rescoring.report import Failure, RescoreReport
from rescorer.rescoring.scoring import score_requests
from rescorer.rescoring.timing import stage
from rescorer.rescoring.utterance import UtteranceJob, finish_job, start_job
from rescorer.training.checkpoint import load_model


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


def load_context(config: RescoreConfig) -> RescoreContext:
    """Load references, the model and the symbol table; check the options against them."""
    references = load_references(config.refs, config.cuts)
    model, vocabulary = load_model(config.model, resolve_device(config.device))
    window = history_window(model.history_window, config)
    # Without --words, one growing table collects the words of every SLF file.
    symbols = SymbolTable() if config.words is None else SymbolTable.from_file(config.words)
    return RescoreContext(model, vocabulary, window, symbols, references, config.lowercase)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the old number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


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
    problem = ": ".join(part for part in (error.where, error.message) if part)
    report.failures.append(Failure(path, utt_id, str(error), problem))
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
    _rescore_lattices(batch, list(paths), context, config, report, collector, progress)


def _rescore_lattices(
    batch: LatticeBatch, paths: List[Path], context: RescoreContext, config: RescoreConfig,
    report: RescoreReport, collector: ResultCollector, progress: Optional[ProgressHook],
) -> None:
    """Today's job: each lattice prepared alone, one LM pass for all, each searched alone."""
    jobs: List[UtteranceJob] = []
    for path, lattice in zip(paths, batch.to_lattices()):
        try:
            with stage("expand"):
                jobs.append(start_job(path, lattice, context.symbols, context, config))
        except RescorerError as error:
            record_failure(report, config, progress, path, lattice.utt_id, error)
    if not jobs:
        return
    with stage("score"):
        scores, stats = score_requests(context.model, [job.request for job in jobs], config.chunk_rows)
    report.unique_histories += stats.unique_histories
    for job, query_scores in zip(jobs, scores):
        try:
            with stage("search"):
                utterance = finish_job(job, query_scores, config, collector)
        except RescorerError as error:
            record_failure(report, config, progress, job.path, job.utt_id, error)
            continue
        report.results[job.utt_id] = replace(
            utterance, words=int(job.lattice.word_ids.numel()),
            oov_words=int(job.tokens.oov_counts.sum()))
        if progress is not None:
            progress.utterance_done(job.utt_id, True)
