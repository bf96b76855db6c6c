"""Topological levels, level schedules, and trimming a lattice to its useful part.

Every other algorithm loops over topological *levels* (all states of a level
processed at once), never over single states or arcs. A state's level is the
length of the longest path reaching it, so each arc goes from a lower level to a
strictly higher one.
"""
import dataclasses
from typing import List, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import expand_ranges, group_by, select_rows
from rescorer.errors import LatticeError
from rescorer.lattice.fsavec import Lattice


def topological_levels(lattice: Lattice) -> Tensor:
    """Longest-path level of every state (Kahn's algorithm, one frontier at a time).

    Args:
      lattice:
        The lattice; state 0 is the start and S-1 the final state.

    Returns:
      1-D int64 tensor of shape (S,): the level of each state; 0 for the start
      (and for any other state without incoming arcs), and
      ``levels[src[a]] < levels[dst[a]]`` for every arc a.

    Raises:
      LatticeError: the lattice is empty, has arcs into the start state, has a
        cycle, or has no path from the start to the final state.
    """
    num_states, src, dst = lattice.num_states, lattice.src, lattice.dst
    if num_states < 2 or src.numel() == 0:
        raise LatticeError(f"empty lattice (expected arcs from state 0 to a final state, "
                           f"got {num_states} states and {src.numel()} arcs)",
                           utt_id=lattice.utt_id)
    if bool((dst == 0).any()):
        raise LatticeError(f"arc {int((dst == 0).nonzero()[0])} enters the start state 0 "
                           "(expected none)", utt_id=lattice.utt_id)
    order, splits = group_by(src, num_states)  # out-arcs of each state
    remaining = torch.bincount(dst, minlength=num_states)  # (S,) unprocessed in-arcs
    levels = torch.full((num_states,), -1, dtype=torch.int64)
    reached = torch.zeros(num_states, dtype=torch.int64)
    reached[0] = 1
    frontier = (remaining == 0).nonzero().squeeze(1)
    level = 0
    while frontier.numel() > 0:
        levels[frontier] = level
        arcs = order[expand_ranges(splits[frontier], splits[frontier + 1] - splits[frontier])]
        targets = dst[arcs]
        remaining = remaining.index_add(0, targets, -torch.ones_like(targets))
        reached = reached.scatter_reduce(0, targets, reached[src[arcs]], "amax",
                                         include_self=True)
        candidates = torch.unique(targets)
        frontier = candidates[remaining[candidates] == 0]
        level += 1
    if bool((levels < 0).any()):
        state = int((levels < 0).nonzero()[0])
        raise LatticeError(f"the lattice has a cycle (state {state} is on or after one)",
                           utt_id=lattice.utt_id)
    if int(reached[num_states - 1]) == 0:
        raise LatticeError(f"no path from the start state 0 to the final state "
                           f"{num_states - 1}", utt_id=lattice.utt_id)
    return levels


def level_schedule(levels: Tensor, states: Tensor) -> Tuple[Tensor, List[int]]:
    """Group arcs by the level of one of their end states, ordered by state inside.

    Args:
      levels:
        1-D int64 tensor of shape (S,), state levels (any topological levels).
      states:
        1-D int64 tensor of shape (A,), the end state that keys each arc
        (``dst`` for forward passes, ``src`` for backward ones).

    Returns:
      ``(order, splits)``: 1-D int64 (A,) arc ids sorted by (level, state), and a
      Python list of L+1 offsets; the arcs of level l are
      ``order[splits[l]:splits[l+1]]``, with equal states contiguous.
    """
    num_levels = int(levels.max()) + 1
    num_states = levels.numel()
    keys = levels[states] * num_states + states  # (A,) sorts by level, then state
    order = torch.sort(keys, stable=True).indices
    counts = torch.bincount(levels[states], minlength=num_levels)
    splits = [0] + torch.cumsum(counts, dim=0).tolist()
    return order, splits


def select_arcs(lattice: Lattice, arc_ids: Tensor) -> Lattice:
    """A new lattice holding only ``arc_ids`` and the states they touch.

    States keep their relative order, so state 0 and the final state stay first
    and last as long as some kept arc touches them.

    Args:
      lattice:
        The input lattice (not modified).
      arc_ids:
        1-D int64 tensor of shape (A',), ids of the arcs to keep, increasing.

    Returns:
      The new lattice; its arc i is ``lattice``'s arc ``arc_ids[i]``.
    """
    used = torch.zeros(lattice.num_states, dtype=torch.bool)
    used[lattice.src[arc_ids]] = True
    used[lattice.dst[arc_ids]] = True
    new_id = torch.cumsum(used.to(torch.int64), dim=0) - 1  # (S,) old -> new state
    word_splits, word_ids = select_rows(lattice.word_splits, lattice.word_ids, arc_ids)
    return dataclasses.replace(
        lattice,
        num_states=int(used.sum()),
        src=new_id[lattice.src[arc_ids]],
        dst=new_id[lattice.dst[arc_ids]],
        labels=lattice.labels[arc_ids],
        word_splits=word_splits,
        word_ids=word_ids,
        am_scores=lattice.am_scores[arc_ids],
        ngram_scores=lattice.ngram_scores[arc_ids],
    )

