"""Lattice oracle: the fewest word errors of any path against a reference.

Dynamic programming over topological levels with a (S, R+1) cost matrix:
``cost[s, r]`` is the fewest edits turning the words of some path from the
start to ``s`` into the first r reference words. Along an arc each word is one
edit-distance row update (match/substitution and insertion, then deletions by a
cumulative-min scan along the reference axis); at a state the rows of its
incoming arcs are combined by an elementwise min.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.topsort import LevelSchedule
from rescorer.lattice.batch import LatticeBatch

_COST = torch.int32  # edit counts: half the memory traffic of int64
_UNREACHED = 1 << 29  # cost of states no path reaches (stays far above real costs, no overflow)
_NO_WORD = -1  # pads reference rows; never a word id on an arc


def _after_word(rows: Tensor, words: Tensor, reference: Tensor) -> Tensor:
    """Edit-distance rows after one more hypothesis word.

    Args:
      rows: 2-D int32 (E, R+1), costs before the word (deletion-closed).
      words: 1-D int64 (E,), the hypothesis word of each row.
      reference: 2-D int64 (E, R), the reference of each row's lattice (padded).

    Returns:
      2-D int32 (E, R+1), deletion-closed costs after the word.
    """
    mismatch = (words.unsqueeze(1) != reference).to(_COST)  # (E, R)
    new = torch.empty_like(rows)
    new[:, 0] = rows[:, 0] + 1  # insertion
    new[:, 1:] = torch.minimum(rows[:, 1:] + 1, rows[:, :-1] + mismatch)
    offsets = torch.arange(rows.shape[1], dtype=_COST, device=rows.device)  # deletions: r + cummin(new - r)
    return torch.cummin(new - offsets, dim=1).values + offsets


def _along_arcs(rows: Tensor, arcs: Tensor, batch: LatticeBatch, reference: Tensor) -> Tensor:
    """Feed each arc's words (0, 1 or several) into its cost row (reference: (E, R))."""
    starts = batch.word_splits[arcs]
    counts = batch.word_splits[arcs + 1] - starts  # (E,)
    for position in range(int(counts.max()) if counts.numel() else 0):  # words per arc
        active = (counts > position).nonzero().squeeze(1)
        words = batch.word_ids[starts[active] + position]
        rows[active] = _after_word(rows[active], words, reference[active])
    return rows


def _edit_distance(hypothesis: Sequence[int], reference: Sequence[int]) -> int:
    """Plain edit distance (traceback helper, for one arc's few words)."""
    row = list(range(len(reference) + 1))
    for word in hypothesis:
        previous, row = row, [row[0] + 1]
        for r, ref_word in enumerate(reference, start=1):
            row.append(min(previous[r] + 1, row[r - 1] + 1, previous[r - 1] + (word != ref_word)))
    return row[-1]


def _padded(references: Sequence[Sequence[int]], device: torch.device) -> Tuple[Tensor, Tensor]:
    """(U, R) reference ids padded with ``_NO_WORD``, and (U,) lengths."""
    lengths = torch.tensor([len(words) for words in references], dtype=torch.int64)
    width = int(lengths.max()) if lengths.numel() else 0
    table = torch.full((len(references), width), _NO_WORD, dtype=torch.int64)
    for utt, words in enumerate(references):
        table[utt, :len(words)] = torch.as_tensor(list(words), dtype=torch.int64)
    return table.to(device), lengths.to(device)


def oracle_errors(
    schedule: LevelSchedule, references: Sequence[Sequence[int]], with_paths: bool = False,
) -> Tuple[Tensor, Optional[List[Tensor]]]:
    """The minimum word edit distance of any path to its reference, for every lattice.

    One (S, R+1) cost matrix for the whole batch (R the longest reference;
    columns past a lattice's own reference length never feed the ones before).

    Args:
      schedule:
        The batch's ``LevelSchedule``; arcs may carry 0, 1 or several words.
      references:
        One list of reference word ids per lattice (may be empty).
      with_paths:
        Also trace back one best path per lattice (costs a Python pass per lattice).

    Returns:
      ``(errors, paths)``: a 1-D int64 tensor of shape (U,), the oracle error
      count of each lattice, and (``with_paths``) one 1-D int64 tensor of batch
      arc ids per lattice, a path achieving it from start to final; else None.
    """
    batch = schedule.batch
    device = batch.device
    reference, lengths = _padded(references, device)
    width = reference.shape[1] + 1
    cost = torch.full((batch.num_states, width), _UNREACHED, dtype=_COST, device=device)
    cost[batch.start_states] = torch.arange(width, dtype=_COST, device=device)
    best_arc = torch.full(cost.shape, -1, dtype=torch.int64, device=device) if with_paths else None
    arc_utt = batch.arc_utt
    into_arcs, into_dst = schedule.into
    for arcs, targets in zip(into_arcs[1:], into_dst[1:]):
        if arcs.numel() == 0:
            continue
        states, segments = torch.unique_consecutive(targets, return_inverse=True)
        rows = _along_arcs(cost[batch.src[arcs]], arcs, batch,
                           reference[arc_utt[arcs]])  # (E, R+1)
        index = segments.unsqueeze(1).expand(-1, width)
        minima = torch.full((states.numel(), width), _UNREACHED, dtype=_COST, device=device)
        minima.scatter_reduce_(0, index, rows, "amin", include_self=True)
        cost[states] = minima
        if best_arc is not None:
            none = torch.iinfo(torch.int64).max
            candidates = torch.where(rows == minima[segments], arcs.unsqueeze(1).expand(-1, width),
                                     torch.full(rows.shape, none, dtype=torch.int64, device=device))
            chosen = torch.full((states.numel(), width), none, dtype=torch.int64, device=device)
            best_arc[states] = chosen.scatter_reduce_(0, index, candidates, "amin",
                                                      include_self=True)
    errors = cost[batch.final_states, lengths].to(torch.int64)
    if best_arc is None:
        return errors, None
    return errors, [_traceback(batch.to(torch.device("cpu")), utt, cost.cpu(), best_arc.cpu(),
                               list(references[utt])) for utt in range(batch.num_utts)]


def oracle_counts(schedule: LevelSchedule, references: Dict[int, Sequence[int]],
                  owners: Sequence[int]) -> Dict[int, Tuple[int, int]]:
    """owner -> (oracle errors, reference words) of the lattices with a reference.

    Args:
      schedule:
        The batch's ``LevelSchedule``.
      references:
        owner -> reference word ids, for the owners that have one.
      owners:
        The owner of each lattice of the batch (U of them).
    """
    chosen = [index for index, owner in enumerate(owners) if owner in references]
    if not chosen:
        return {}
    sub = schedule if len(chosen) == schedule.batch.num_utts else \
        LevelSchedule.of(schedule.batch.select(chosen))
    errors, _ = oracle_errors(sub, [references[owners[index]] for index in chosen])
    return {owners[index]: (int(count), len(references[owners[index]]))
            for index, count in zip(chosen, errors.tolist())}


def _traceback(batch: LatticeBatch, utt: int, cost: Tensor, best_arc: Tensor,
               reference: List[int]) -> Tensor:
    """Batch arcs of a path of lattice ``utt`` achieving ``cost[final, R]``."""
    start, state = int(batch.state_splits[utt]), int(batch.state_splits[utt + 1]) - 1
    column = len(reference)
    path = []
    while state != start:
        arc = int(best_arc[state, column])
        assert arc >= 0, "oracle traceback left the reachable part"
        first, last = int(batch.word_splits[arc]), int(batch.word_splits[arc + 1])
        words = batch.word_ids[first:last].tolist()
        source = int(batch.src[arc])
        target_cost = int(cost[state, column])
        column = next(c for c in range(column, -1, -1)
                      if int(cost[source, c]) + _edit_distance(words, reference[c:column])
                      == target_cost)
        path.append(arc)
        state = source
    return torch.tensor(path[::-1], dtype=torch.int64)
