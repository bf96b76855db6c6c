"""Lattice oracle: the fewest word errors of any path against a reference.

Dynamic programming over topological levels with a (S, R+1) cost matrix:
``cost[s, r]`` is the fewest edits turning the words of some path from the
start to ``s`` into the first r reference words. Along an arc each word is one
edit-distance row update (match/substitution and insertion, then deletions by a
cumulative-min scan along the reference axis); at a state the rows of its
incoming arcs are combined by an elementwise min.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.topsort import level_schedule, topological_levels
from rescorer.lattice.fsavec import Lattice

_UNREACHED = 1 << 40  # cost of states no path reaches (stays far above real costs)


def _after_word(rows: Tensor, words: Tensor, reference: Tensor) -> Tensor:
    """Edit-distance rows after one more hypothesis word.

    Args:
      rows: 2-D int64 (E, R+1), costs before the word (deletion-closed).
      words: 1-D int64 (E,), the hypothesis word of each row.
      reference: 1-D int64 (R,).

    Returns:
      2-D int64 (E, R+1), deletion-closed costs after the word.
    """
    mismatch = (words.unsqueeze(1) != reference.unsqueeze(0)).to(torch.int64)  # (E, R)
    new = torch.empty_like(rows)
    new[:, 0] = rows[:, 0] + 1  # insertion
    new[:, 1:] = torch.minimum(rows[:, 1:] + 1, rows[:, :-1] + mismatch)
    offsets = torch.arange(rows.shape[1], dtype=torch.int64)  # deletions: r + cummin(new - r)
    return torch.cummin(new - offsets, dim=1).values + offsets


def _along_arcs(rows: Tensor, arcs: Tensor, lattice: Lattice, reference: Tensor) -> Tensor:
    """Feed each arc's words (0, 1 or several) into its cost row."""
    starts = lattice.word_splits[arcs]
    counts = lattice.word_splits[arcs + 1] - starts  # (E,)
    for position in range(int(counts.max()) if counts.numel() else 0):  # words per arc
        active = (counts > position).nonzero().squeeze(1)
        words = lattice.word_ids[starts[active] + position]
        rows[active] = _after_word(rows[active], words, reference)
    return rows


def _edit_distance(hypothesis: Sequence[int], reference: Sequence[int]) -> int:
    """Plain edit distance (traceback helper, for one arc's few words)."""
    row = list(range(len(reference) + 1))
    for word in hypothesis:
        previous, row = row, [row[0] + 1]
        for r, ref_word in enumerate(reference, start=1):
            row.append(min(previous[r] + 1, row[r - 1] + 1, previous[r - 1] + (word != ref_word)))
    return row[-1]


def oracle_errors(
    lattice: Lattice, reference_word_ids: Sequence[int], levels: Optional[Tensor] = None,
) -> Tuple[int, Tensor]:
    """The minimum word edit distance of any path to the reference, and that path.

    Args:
      lattice:
        The lattice; arcs may carry 0, 1 or several words.
      reference_word_ids:
        The reference word ids (length R, may be 0).
      levels:
        Optional (S,) int64 topological levels of ``lattice``; computed if None.

    Returns:
      ``(errors, arc_ids)``: the oracle error count and a 1-D int64 tensor with
      the arcs of one path achieving it, from start to final state.

    Raises:
      LatticeError: as ``topological_levels``.
    """
    if levels is None:
        levels = topological_levels(lattice)
    reference = torch.as_tensor(list(reference_word_ids), dtype=torch.int64)
    width = reference.numel() + 1
    cost = torch.full((lattice.num_states, width), _UNREACHED, dtype=torch.int64)
    cost[0] = torch.arange(width)
    best_arc = torch.full((lattice.num_states, width), -1, dtype=torch.int64)
    order, splits = level_schedule(levels, lattice.dst)
    for level in range(1, len(splits) - 1):
        arcs = order[splits[level]:splits[level + 1]]
        if arcs.numel() == 0:
            continue
        states, segments = torch.unique_consecutive(lattice.dst[arcs], return_inverse=True)
        rows = _along_arcs(cost[lattice.src[arcs]], arcs, lattice, reference)  # (E, R+1)
        index = segments.unsqueeze(1).expand(-1, width)
        minima = torch.full((states.numel(), width), _UNREACHED, dtype=torch.int64)
        minima = minima.scatter_reduce(0, index, rows, "amin", include_self=True)
        none = torch.iinfo(torch.int64).max
        candidates = torch.where(rows == minima[segments], arcs.unsqueeze(1).expand(-1, width),
                                 torch.full_like(rows, none))
        chosen = torch.full((states.numel(), width), none, dtype=torch.int64)
        cost[states] = minima
        best_arc[states] = chosen.scatter_reduce(0, index, candidates, "amin", include_self=True)
    final = lattice.num_states - 1
    errors = int(cost[final, -1])
    return errors, _traceback(lattice, cost, best_arc, reference.tolist())


def _traceback(lattice: Lattice, cost: Tensor, best_arc: Tensor, reference: List[int]) -> Tensor:
    """Arcs of a path achieving ``cost[final, R]``, one step per path arc."""
    state, column = lattice.num_states - 1, len(reference)
    cost_list, arc_list = cost.tolist(), best_arc.tolist()
    src_list = lattice.src.tolist()
    path = []
    while state != 0:
        arc = arc_list[state][column]
        assert arc >= 0, "oracle traceback left the reachable part"
        words = lattice.arc_words(arc)
        source = src_list[arc]
        target_cost = cost_list[state][column]
        column = next(c for c in range(column, -1, -1)
                      if cost_list[source][c] + _edit_distance(words, reference[c:column])
                      == target_cost)
        path.append(arc)
        state = source
    return torch.tensor(path[::-1], dtype=torch.int64)
