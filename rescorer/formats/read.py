"""The public reading API: lattices of any format, from many files, into one ``LatticeBatch``.

``read_lattices(paths, words)`` is for library users: it raises the first
problem. ``read_batch(paths, words)`` is for pipelines: every bad file or
utterance becomes one ``Failure`` and the rest is read, so one bad file
never sinks the batch. Both give the lattices in file order (folders recursed,
sorted), with unique utterance ids: a repeated id is a failure of the later one.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch

from rescorer.errors import Failure, InputFormatError
from rescorer.formats.detect import lattice_files, read_file
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.checks import split_invalid
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike
from rescorer.threads import single_threaded

Words = Union[None, PathLike, SymbolTable]


@dataclass(frozen=True)
class ReadResult:
    """What ``read_batch`` read.

    Attributes:
      batch:
        The good lattices, U of them, in file order.
      paths:
        U paths, the file of each lattice of ``batch``.
      failures:
        One per bad file or utterance, in reading order.
      symbols:
        The table used: the --words table, or the one grown from SLF words
        (``<eps>`` = 0, then ids in order of first appearance).
    """

    batch: LatticeBatch
    paths: List[Path]
    failures: List[Failure]
    symbols: SymbolTable


def symbol_table(words: Words) -> SymbolTable:
    """A table from ``words``: a words.txt path (read, frozen), a table (as is), or None (new, growing).

    Raises:
      SymbolError: the words file is missing or malformed.
    """
    if words is None:
        return SymbolTable()
    if isinstance(words, SymbolTable):
        return words
    return SymbolTable.from_file(words)


@single_threaded
def read_batch(paths: Sequence[PathLike], words: Words = None) -> ReadResult:
    """Read every lattice of ``paths``; bad files and utterances become failures.

    Args:
      paths:
        Files and folders (recursed, sorted; hidden files skipped), any mix of
        k2 ``.pt``, SLF (plain or gzipped) and Kaldi text archives.
      words:
        words.txt path or ``SymbolTable``; required for k2 and Kaldi input (their
        files fail without it). SLF words missing from a frozen table are errors;
        a growing table (or None) gets them added.

    Returns:
      A ``ReadResult``. Never raises for bad lattice files.

    Raises:
      SymbolError: ``words`` names a missing or malformed file.
    """
    symbols = symbol_table(words)
    pieces: List[LatticeBatch] = []
    piece_paths: List[Path] = []
    failures: List[Failure] = []
    pending: List[Lattice] = []
    pending_paths: List[Path] = []

    def flush() -> None:
        if pending:
            batch, invalid, kept = split_invalid(LatticeBatch.from_lattices(pending),
                                                 pending_paths)
            pieces.append(batch)
            piece_paths.extend(pending_paths[index] for index in kept)
            failures.extend(invalid)
            pending.clear()
            pending_paths.clear()

    for path in lattice_files(paths):
        batches, lattices, file_failures = read_file(path, symbols)
        if batches:
            flush()
            pieces.extend(batches)
            piece_paths.extend([path] * sum(batch.num_utts for batch in batches))
        pending.extend(lattices)
        pending_paths.extend([path] * len(lattices))
        failures.extend(file_failures)
    flush()
    batch, batch_paths, repeated = _unique(concat_batches(pieces), piece_paths)
    return ReadResult(batch, batch_paths, failures + repeated, symbols)


def read_lattices(paths: Union[PathLike, Sequence[PathLike]], words: Words = None
                  ) -> LatticeBatch:
    """All lattices of ``paths`` as one batch, raising the first problem.

    Args:
      paths:
        A file or folder, or several (see ``read_batch``).
      words:
        words.txt path or ``SymbolTable`` (see ``read_batch``); pass a growing
        ``SymbolTable()`` to keep the table grown from SLF words.

    Returns:
      The ``LatticeBatch`` of every lattice, in file order.

    Raises:
      RescorerError: the first bad file or utterance (``InputFormatError``,
        ``SymbolError``), a repeated utterance id, or no lattice at all.
    """
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    result = read_batch(paths, words)
    if result.failures:
        raise result.failures[0].error
    if result.batch.num_utts == 0:
        raise InputFormatError(f"no lattices found in {', '.join(map(str, paths)) or 'no input'}")
    return result.batch


def _unique(batch: LatticeBatch, paths: List[Path]
            ) -> Tuple[LatticeBatch, List[Path], List[Failure]]:
    """``batch`` without the lattices whose id came earlier, and a failure for each."""
    first: Dict[str, Path] = {}
    keep, failures = [], []
    for index, (utt_id, path) in enumerate(zip(batch.utt_ids, paths)):
        if utt_id in first:
            failures.append(Failure(path, utt_id, InputFormatError(
                f"utterance id appears twice (first in {first[utt_id]}; skipped this one)",
                path=path, utt_id=utt_id)))
        else:
            first[utt_id] = path
            keep.append(index)
    if not failures:
        return batch, paths, []
    return batch.select(keep), [paths[index] for index in keep], failures


def concat_batches(batches: Sequence[LatticeBatch]) -> LatticeBatch:
    """The lattices of several batches as one (states, arcs and words renumbered).

    ``arc_extras`` present in every batch are kept; the others are dropped.
    """
    if len(batches) == 1:
        return batches[0]
    if not batches:
        return LatticeBatch.from_lattices([])
    state_base = [0] + [int(b.state_splits[-1]) for b in batches]
    arc_base = [0] + [int(b.arc_splits[-1]) for b in batches]
    word_base = [0] + [int(b.word_splits[-1]) for b in batches]
    for base in (state_base, arc_base, word_base):
        for index in range(1, len(base)):
            base[index] += base[index - 1]  # running totals

    def splits(name: str, bases: List[int]) -> torch.Tensor:
        parts = [getattr(b, name)[:-1] + bases[i] for i, b in enumerate(batches)]
        return torch.cat(parts + [torch.tensor([bases[-1]], dtype=torch.int64)])

    def cat(name: str, bases: Optional[List[int]] = None) -> torch.Tensor:
        return torch.cat([getattr(b, name) + (bases[i] if bases else 0)
                          for i, b in enumerate(batches)])

    names = [name for name in batches[0].arc_extras  # the first batch's order
             if all(name in b.arc_extras for b in batches)]
    with_ids = all(b.transition_splits is not None for b in batches)
    id_base = [0] + [int(b.transition_splits[-1]) if with_ids else 0 for b in batches]
    for index in range(1, len(id_base)):
        id_base[index] += id_base[index - 1]
    return LatticeBatch(
        utt_ids=[utt_id for b in batches for utt_id in b.utt_ids],
        state_splits=splits("state_splits", state_base),
        arc_splits=splits("arc_splits", arc_base),
        src=cat("src", state_base), dst=cat("dst", state_base), labels=cat("labels"),
        word_splits=splits("word_splits", word_base), word_ids=cat("word_ids"),
        am_scores=cat("am_scores"), ngram_scores=cat("ngram_scores"),
        arc_extras={name: torch.cat([b.arc_extras[name] for b in batches]) for name in names},
        transition_splits=splits("transition_splits", id_base) if with_ids else None,
        transition_ids=cat("transition_ids") if with_ids else None,
        state_times=cat("state_times") if all(b.state_times is not None for b in batches) else None,
    )
