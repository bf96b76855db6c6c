"""One-lattice views of the batched engine, for code that holds a single ``Lattice``.

Each function wraps its lattice in a batch of one and calls the batched
algorithm (there is one implementation of each algorithm, in the sibling
modules); results come back with the lattice's own (local) state and arc ids,
and problems raise as the batched ``LevelSchedule.of`` does. They keep the
signatures the per-lattice engine had (``levels=`` is accepted and ignored: the
batch computes its own schedule), so callers written against it keep working.
Prefer the batched functions for many lattices: these cost one topological
sort per call.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms import best_path as batched
from rescorer.algorithms import history, prune
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice


def _schedule(lattice: Lattice) -> LevelSchedule:
    """The schedule of ``lattice`` alone; raises its ``LatticeError`` (names the utterance)."""
    return LevelSchedule.of(LatticeBatch.from_lattices([lattice]))


def topological_levels(lattice: Lattice) -> Tensor:
    """1-D int64 tensor of shape (S,), longest-path levels; raises ``LatticeError``."""
    return _schedule(lattice).levels


def level_schedule(levels: Tensor, states: Tensor) -> Tuple[Tensor, List[int]]:
    """Arcs grouped by the level of one of their end states, ordered by state inside.

    Args:
      levels:
        1-D int64 tensor of shape (S,), state levels.
      states:
        1-D int64 tensor of shape (A,), the end state that keys each arc.

    Returns:
      ``(order, splits)``: 1-D int64 (A,) arc ids sorted by (level, state), and a
      list of L+1 offsets; level l's arcs are ``order[splits[l]:splits[l+1]]``.
    """
    num_levels = int(levels.max()) + 1
    keys = levels[states] * levels.numel() + states  # (A,) by level, then state
    order = torch.sort(keys, stable=True).indices
    counts = torch.bincount(levels[states], minlength=num_levels)
    return order, [0] + torch.cumsum(counts, dim=0).tolist()


def forward_scores(lattice: Lattice, arc_scores: Tensor, log_semiring: bool = False,
                   levels: Optional[Tensor] = None) -> Tensor:
    """1-D float64 tensor of shape (S,), ``best_path.forward_scores`` of one lattice."""
    schedule = _schedule(lattice)
    return batched.forward_scores(schedule.batch, arc_scores, log_semiring, schedule)


def backward_scores(lattice: Lattice, arc_scores: Tensor, log_semiring: bool = False,
                    levels: Optional[Tensor] = None) -> Tensor:
    """1-D float64 tensor of shape (S,), ``best_path.backward_scores`` of one lattice."""
    schedule = _schedule(lattice)
    return batched.backward_scores(schedule.batch, arc_scores, log_semiring, schedule)


def best_path(lattice: Lattice, arc_scores: Tensor,
              levels: Optional[Tensor] = None) -> Tuple[float, Tensor]:
    """(float64 score, 1-D int64 arc ids from start to final) of the Viterbi path."""
    schedule = _schedule(lattice)
    score, _, arc_ids = batched.shortest_paths(schedule.batch, arc_scores, schedule)
    return float(score[0]), arc_ids


def total_log_score(lattice: Lattice, arc_scores: Tensor,
                    levels: Optional[Tensor] = None) -> float:
    """The float64 log-sum-exp over all paths."""
    schedule = _schedule(lattice)
    return float(batched.total_scores(schedule.batch, arc_scores, True, schedule)[0])


def prune_by_beam(lattice: Lattice, arc_scores: Tensor, beam: float,
                  levels: Optional[Tensor] = None) -> Tuple[Lattice, Tensor]:
    """(pruned lattice, 1-D int64 kept arc ids, increasing), Kaldi lattice-prune semantics."""
    pruned, kept = prune.prune_by_beam(_schedule(lattice), arc_scores, beam)
    return pruned.batch.lattice(0), kept


@dataclass(frozen=True)
class ExpandedLattice:
    """``history.ExpandedBatch`` of one lattice, with the expanded ``Lattice`` itself.

    Attributes as ``ExpandedBatch`` (ids local to the lattice), plus ``lattice``
    (the expanded lattice, its last state the final one) and ``levels`` (1-D
    int64 (S',), its topological levels).
    """

    lattice: Lattice
    orig_arc: Tensor
    orig_state: Tensor
    state_history: Tensor
    levels: Tensor
    histories: Tensor
    history_lengths: Tensor
    query_history: Tensor
    query_token: Tensor
    query_arc: Tensor


def expand_histories(
    lattice: Lattice, arc_token_splits: Tensor, arc_tokens: Tensor, window: int, bos_id: int,
    eos_id: int, max_arcs: int, levels: Optional[Tensor] = None,
) -> ExpandedLattice:
    """``history.expand_histories`` of one lattice.

    Raises:
      ExpansionLimitError: more than ``max_arcs`` expanded arcs.
      LatticeError / ConfigError: as the batched function.
    """
    expanded = history.expand_histories(_schedule(lattice), arc_token_splits, arc_tokens, window,
                                        bos_id, eos_id, max_arcs)
    if expanded.over_limit:
        raise expanded.over_limit[0]
    return ExpandedLattice(
        lattice=expanded.batch.lattice(0), orig_arc=expanded.orig_arc,
        orig_state=expanded.orig_state, state_history=expanded.state_history,
        levels=expanded.schedule.levels, histories=expanded.histories,
        history_lengths=expanded.history_lengths, query_history=expanded.query_history,
        query_token=expanded.query_token, query_arc=expanded.query_arc)
