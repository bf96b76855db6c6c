"""``fprescore rescore`` end to end: read, expand, score in batches, search, write.

One batch of ``--batch-size`` lattices goes through::

    lattice -> tokens -> prune + expand (lattice mode) | first-pass n-best (n-best mode)
            -> ScoreRequest ----------------------------------------------+
    all requests of the batch -> score_requests (dedupe, chunked model calls)
            -> per-arc nnlm scores -> ScoredLattice | ScoredList -> ResultCollector

A bad utterance raises a ``RescorerError`` that is recorded as a ``Failure``
and skipped (``--strict``: re-raised). Global problems (model, options,
references) raise before any lattice is read.
"""
import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Protocol, Tuple

import torch

from rescorer.data.vocab import Vocabulary
from rescorer.errors import ConfigError, InputFormatError, RescorerError
from rescorer.formats.detect import lattice_files
from rescorer.lattice.fsavec import Lattice, LatticeFailure
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.wer import load_references
from rescorer.rescoring.collect import ResultCollector
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.inputs import iter_inputs
from rescorer.rescoring.report import Failure, RescoreReport
from rescorer.rescoring.scoring import score_requests
from rescorer.rescoring.sentences import history_mismatch
from rescorer.rescoring.tokens import ArcTokenizer
from rescorer.lattice.batch import LatticeBatch
from rescorer.rescoring.job import rescore_lattices
from rescorer.model.checkpoint import load_model


class ProgressHook(Protocol):
    """Receives progress events (the CLI draws a bar; tests pass None)."""

    def utterance_done(self, utt_id: Optional[str], ok: bool, message: Optional[str] = None) -> None:
        """One utterance finished (ok) or failed (``message`` says why)."""


@dataclass
class RescoreContext:
    """What is loaded once per run.

    Attributes:
      model:
        The LM in eval mode on its device.
      vocabulary:
        The LM's vocabulary.
      window:
        History window of the expansion (lattice mode), or the sentence
        history limit of n-best mode (None = whole sentence).
      symbols:
        ``--words``, or a growing table for the words of SLF files.
      references:
        Utterance id -> reference words, or None.
    """

    model: torch.nn.Module
    vocabulary: Vocabulary
    window: Optional[int]
    symbols: SymbolTable
    references: Optional[Dict[str, List[str]]]

    def __post_init__(self) -> None:
        self._tokenizers: Dict[int, ArcTokenizer] = {}

    def tokenizer(self, symbols: SymbolTable) -> ArcTokenizer:
        """The (cached) tokenizer for a symbol table."""
        key = id(symbols)
        if key not in self._tokenizers:
            self._tokenizers[key] = ArcTokenizer(self.vocabulary, symbols)
        return self._tokenizers[key]


def resolve_device(device: str) -> str:
    """"auto" -> "cuda" when available else "cpu"; "cuda" must be available."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but CUDA is not available (use --device cpu or auto)")
    return device


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
    return RescoreContext(model, vocabulary, window, symbols, references)


@contextlib.contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the block with ``count`` torch CPU threads, then restore the old number."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def run_rescore(config: RescoreConfig, progress: Optional[ProgressHook] = None) -> RescoreReport:
    """Rescore every lattice of ``config.lattices`` and write the outputs.

    Returns:
      The ``RescoreReport`` (statistics, failures, WER rows, grid).

    Raises:
      RescorerError: a global problem, or the first failure under ``--strict``.
    """
    with torch_threads(config.threads):
        return _run(config, progress)


def _run(config: RescoreConfig, progress: Optional[ProgressHook]) -> RescoreReport:
    """``run_rescore`` under the configured thread count."""
    started = time.perf_counter()
    context = load_context(config)
    report = RescoreReport()
    collector = ResultCollector(config, context.references)
    files = lattice_files(config.lattices)
    if config.jobs > 1 and len(files) > 1:
        from rescorer.rescoring.parallel import run_parallel  # Only for --jobs > 1.

        run_parallel(files, context, config, report, collector, progress)
    else:
        process_files(files, context, config, report, collector, progress)
    if report.results:
        collector.finish(report)
        if context.window != context.model.history_window and config.mode == "lattice":
            _note_history_mismatch(context, config, report, collector)
    report.timings.total = time.perf_counter() - started
    return report


def _note_history_mismatch(
    context: RescoreContext, config: RescoreConfig, report: RescoreReport,
    collector: ResultCollector,
) -> None:
    """With --history-approx: compare the 1-best nnlm scores with full-history ones."""
    best = [hyps[0] for hyps in collector.hypotheses.values() if hyps]
    mean, largest = history_mismatch(context.model, context.vocabulary, best, config.oov_penalty,
                                     config.chunk_rows)
    report.notes.append(
        f"--history-approx {context.window}: 1-best nnlm differs from full-history scores by "
        f"{mean:.3f} nats on average, {largest:.3f} at most ({len(best)} utterances)"
    )


def process_files(
    files: List[Path],
    context: RescoreContext,
    config: RescoreConfig,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional[ProgressHook],
) -> None:
    """Read, rescore and collect every lattice of ``files``, ``--batch-size`` at a time."""
    batch: List[Tuple[Path, Lattice, SymbolTable]] = []
    read_started = time.perf_counter()
    for item in iter_inputs(files, context.symbols):
        report.timings.read += time.perf_counter() - read_started
        if isinstance(item, LatticeFailure):
            _fail(report, config, progress, item.path, item.utt_id, item.error)
        else:
            batch.append(item)
            if len(batch) == config.batch_size:
                _run_batch(batch, context, config, report, collector, progress)
                batch = []
        read_started = time.perf_counter()
    report.timings.read += time.perf_counter() - read_started
    _run_batch(batch, context, config, report, collector, progress)


def _run_batch(
    batch: List[Tuple[Path, Lattice, SymbolTable]],
    context: RescoreContext,
    config: RescoreConfig,
    report: RescoreReport,
    collector: ResultCollector,
    progress: Optional[ProgressHook],
) -> None:
    """Rescore the lattices of one batch together (``rescore_lattices``)."""
    items = []
    for path, lattice, symbols in batch:
        if lattice.utt_id in report.results or any(item[1].utt_id == lattice.utt_id for item in items):
            _fail(report, config, progress, path, lattice.utt_id, InputFormatError(
                "utterance id appears twice (expected unique ids across all inputs; "
                "skipped the second)"))
        else:
            items.append((path, lattice, symbols))
    if not items:
        return
    device = next(context.model.parameters()).device
    lattices = LatticeBatch.from_lattices([lattice for _, lattice, _ in items]).to(device)
    outcome = rescore_lattices(lattices, [path for path, _, _ in items],
                               [symbols for _, _, symbols in items], context, config, collector)
    for index, error in sorted(outcome.failures, key=lambda failure: failure[0]):
        path, lattice, _ = items[index]
        _fail(report, config, progress, path, lattice.utt_id, error)
    for utt_id, stats in outcome.results.items():
        report.results[utt_id] = stats
        if progress is not None:
            progress.utterance_done(utt_id, True)
    report.unique_histories += outcome.unique_histories
    for name, seconds in outcome.seconds.items():
        setattr(report.timings, name, getattr(report.timings, name) + seconds)


def _fail(
    report: RescoreReport,
    config: RescoreConfig,
    progress: Optional[ProgressHook],
    path: Optional[Path],
    utt_id: Optional[str],
    error: RescorerError,
) -> None:
    """Record a skipped utterance; re-raise under --strict."""
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
