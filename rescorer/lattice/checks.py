"""Per-utterance invariant checks over a whole ``LatticeBatch`` at once.

``Lattice.validate`` checks one lattice with a dozen small tensor operations;
a reader that builds a batch of thousands of lattices checks them all with the
same operations over the flat arc tensors instead, and asks ``Lattice.validate``
for the exact message only for the (rare) utterances that fail.
"""
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.errors import Failure, InputFormatError, RescorerError, SymbolError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable


def oversized_utterances(state_splits: Tensor, arc_splits: Tensor) -> Tensor:
    """Lattices that claim more states than their arcs can touch.

    A lattice whose every state lies on an arc has at most 2 states per arc; a
    file claiming more (a corrupt or crafted state count) is rejected before
    anything is allocated per state.

    Args:
      state_splits:
        1-D int64 tensor of shape (U+1,), row splits of ``[utt][state]``.
      arc_splits:
        1-D int64 tensor of shape (U+1,), row splits of ``[utt][arc]``.

    Returns:
      1-D bool tensor of shape (U,), True for an oversized lattice.
    """
    num_states = state_splits[1:] - state_splits[:-1]  # (U,)
    num_arcs = arc_splits[1:] - arc_splits[:-1]  # (U,)
    return num_states > 2 * num_arcs + 2


def invalid_utterances(batch: LatticeBatch, symbols: Optional[SymbolTable] = None) -> Tensor:
    """Lattices of ``batch`` that ``Lattice.validate`` (or the word check) would reject.

    Args:
      batch:
        The batch; its splits must be non-decreasing from 0 and its state counts
        bounded (see ``oversized_utterances``).
      symbols:
        If given, word ids missing from it make a lattice invalid too.

    Returns:
      1-D bool tensor of shape (U,).
    """
    splits, arc_splits = batch.state_splits, batch.arc_splits
    num_states = splits[1:] - splits[:-1]  # (U,)
    num_arcs = arc_splits[1:] - arc_splits[:-1]  # (U,)
    bad = (num_states < 2) | (num_arcs == 0)  # (U,)
    first = torch.repeat_interleave(splits[:-1], num_arcs)  # (A,) the start state of its lattice
    final = torch.repeat_interleave(splits[1:] - 1, num_arcs)  # (A,) the final state
    src, dst, labels = batch.src, batch.dst, batch.labels
    into_final = dst == final  # (A,)
    # first <= src < final and first <= dst <= final, in two passes of (A,) temporaries
    arc_bad = torch.minimum(src, dst) < first
    arc_bad |= torch.maximum(src, dst - 1) >= final  # no overflow: dst - 1 wraps only below first
    arc_bad |= into_final != (labels == -1)
    if labels.numel() and int(labels.min()) < -1:
        arc_bad |= labels < -1
    for scores in (batch.am_scores, batch.ngram_scores):
        if not bool(torch.isfinite(scores.sum())):  # a sum is finite only if every term is
            arc_bad |= ~torch.isfinite(scores)
    bad |= _counts_per_utt(arc_bad, arc_splits) > 0
    word_bad = batch.word_ids <= 0  # (W,)
    if symbols is not None and batch.word_ids.numel():
        word_bad |= ~symbols.known(batch.word_ids)
    if bool(word_bad.any()):  # the words of lattice u: word_splits[arc_splits[u]] onwards
        bad |= _counts_per_utt(word_bad, batch.word_splits[arc_splits]) > 0
    return bad | (_counts_per_utt(into_final, arc_splits) == 0)  # no arc enters the final state


def _counts_per_utt(flags: Tensor, splits: Tensor) -> Tensor:
    """1-D int64 tensor of shape (U,), how many of each lattice's items are flagged.

    Args:
      flags:
        1-D bool tensor of shape (N,), one per item, the items of each lattice contiguous.
      splits:
        1-D int64 tensor of shape (U+1,), non-decreasing row splits of ``[utt][item]``.
    """
    running = torch.zeros(flags.numel() + 1, dtype=torch.int64, device=flags.device)
    torch.cumsum(flags, dim=0, out=running[1:])  # (N+1,) flagged items before each
    return running[splits[1:]] - running[splits[:-1]]


def split_invalid(batch: LatticeBatch, paths: Sequence[Path],
                  symbols: Optional[SymbolTable] = None
                  ) -> Tuple[LatticeBatch, List[Failure], List[int]]:
    """The valid lattices of ``batch`` and one failure per invalid one.

    Oversized lattices (``oversized_utterances``) are refused first, before any
    check that allocates per state; the others are checked as ``Lattice.validate``
    does (and against ``symbols``).

    Args:
      batch:
        The lattices as read.
      paths:
        The file of each lattice (U paths), for the messages.
      symbols:
        If given, every word id must be in it.

    Returns:
      ``(valid lattices in order, failures in batch order, indices of the valid
      ones in batch)``; each failure carries the message that ``Lattice.validate``
      or ``SymbolTable.check_ids`` gives. Failures in batch order make a batch
      split in consecutive parts fail as the whole would (``k2_read.read_k2_chunks``).
    """
    oversized = oversized_utterances(batch.state_splits, batch.arc_splits)
    failed = {index: _oversized(batch, index, paths[index])
              for index in oversized.nonzero().flatten().tolist()}
    checked = list(range(batch.num_utts))
    if failed:
        checked = (~oversized).nonzero().flatten().tolist()
        batch = batch.select(checked)
    bad = invalid_utterances(batch, symbols).nonzero().flatten().tolist()
    for index in bad:
        failed[checked[index]] = Failure(Path(paths[checked[index]]), batch.utt_ids[index],
                                         _problem(batch, index, paths[checked[index]], symbols))
    failures = [failed[index] for index in sorted(failed)]
    if not bad:
        return batch, failures, checked
    drop = set(bad)
    keep = [i for i in range(batch.num_utts) if i not in drop]
    return batch.select(keep), failures, [checked[i] for i in keep]


def _oversized(batch: LatticeBatch, index: int, path: Path) -> Failure:
    """The failure of a lattice that claims too many states."""
    states = int(batch.state_splits[index + 1] - batch.state_splits[index])
    arcs = int(batch.arc_splits[index + 1] - batch.arc_splits[index])
    return _oversized_failure(batch.utt_ids[index], states, arcs, path)


def _oversized_failure(utt_id: str, states: int, arcs: int, path: Path) -> Failure:
    error = InputFormatError(f"claims {states} states for {arcs} arcs (expected at most 2 "
                             "states per arc; corrupt file?)", path=path, utt_id=utt_id)
    return Failure(Path(path), utt_id, error)


def lattice_failure(lattice: Lattice, path: Path) -> Optional[Failure]:
    """What ``split_invalid`` says about one lattice alone: None if it is valid."""
    if lattice.num_states > 2 * lattice.num_arcs + 2:
        return _oversized_failure(lattice.utt_id, lattice.num_states, lattice.num_arcs, path)
    try:
        lattice.validate(path)
    except InputFormatError as error:
        return Failure(Path(path), lattice.utt_id, error)
    return None


def _problem(batch: LatticeBatch, index: int, path: Path,
             symbols: Optional[SymbolTable]) -> RescorerError:
    """The located error of one lattice that ``invalid_utterances`` flagged."""
    lattice = batch.lattice(index)
    try:
        lattice.validate(path)
        if symbols is not None:
            symbols.check_ids(lattice.word_ids, path=path, utt_id=lattice.utt_id)
    except (InputFormatError, SymbolError) as error:
        return error
    raise AssertionError(f"{lattice.utt_id}: flagged invalid but passes Lattice.validate")
