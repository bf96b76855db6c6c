"""Forward/backward scores, the Viterbi best path and the total log score.

Scores are accumulated in float64 (k2's ``use_double_scores=True``), one
topological level at a time: all arcs into (forward) or out of (backward) the
states of a level are reduced at once with segment max / log-sum-exp.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import segment_argmax, segment_logsumexp, segment_max
from rescorer.algorithms.topsort import level_schedule, topological_levels
from rescorer.lattice.fsavec import Lattice


def _sweep(
    lattice: Lattice, arc_scores: Tensor, levels: Optional[Tensor], backward: bool,
    log_semiring: bool,
) -> Tuple[Tensor, Tensor]:
    """One forward or backward pass; returns (state scores, best arc per state).

    The best arc (tropical only, else all -1) is the best incoming arc of each
    state going forward, the best outgoing arc going backward.
    """
    if levels is None:
        levels = topological_levels(lattice)
    scores = arc_scores.to(torch.float64)
    num_states = lattice.num_states
    near, far = (lattice.dst, lattice.src) if backward else (lattice.src, lattice.dst)
    state_scores = torch.full((num_states,), float("-inf"), dtype=torch.float64)
    state_scores[num_states - 1 if backward else 0] = 0.0
    best_arc = torch.full((num_states,), -1, dtype=torch.int64)
    order, splits = level_schedule(levels, far)
    level_ids = range(len(splits) - 2, -1, -1) if backward else range(len(splits) - 1)
    for level in level_ids:
        arcs = order[splits[level]:splits[level + 1]]
        if arcs.numel() == 0:
            continue
        states, segments = torch.unique_consecutive(far[arcs], return_inverse=True)
        values = state_scores[near[arcs]] + scores[arcs]  # (level arcs,)
        if log_semiring:
            state_scores[states] = segment_logsumexp(values, segments, states.numel())
        else:
            maxima = segment_max(values, segments, states.numel())
            state_scores[states] = maxima
            best_arc[states] = segment_argmax(values, segments, maxima, arcs)
    return state_scores, best_arc


def forward_scores(
    lattice: Lattice, arc_scores: Tensor, log_semiring: bool = False,
    levels: Optional[Tensor] = None,
) -> Tensor:
    """Best (tropical) or summed (log) score of the paths from the start to each state.

    Args:
      lattice:
        The lattice.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.
      log_semiring:
        False: max over paths; True: log-sum-exp over paths.
      levels:
        Optional 1-D int64 tensor of shape (S,), topological levels
        (``levels[src] < levels[dst]`` for every arc); computed if None.

    Returns:
      1-D float64 tensor of shape (S,); -inf where no path reaches the state.
    """
    return _sweep(lattice, arc_scores, levels, backward=False, log_semiring=log_semiring)[0]


def backward_scores(
    lattice: Lattice, arc_scores: Tensor, log_semiring: bool = False,
    levels: Optional[Tensor] = None,
) -> Tensor:
    """Best or summed score of the paths from each state to the final state.

    Args:
      lattice:
        The lattice.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.
      log_semiring:
        False: max over paths; True: log-sum-exp over paths.
      levels:
        Optional (S,) int64 topological levels, as in ``forward_scores``.

    Returns:
      1-D float64 tensor of shape (S,); -inf where the final state is not reachable.
    """
    return _sweep(lattice, arc_scores, levels, backward=True, log_semiring=log_semiring)[0]


def best_path(
    lattice: Lattice, arc_scores: Tensor, levels: Optional[Tensor] = None,
) -> Tuple[float, Tensor]:
    """The highest-scoring path from the start to the final state (tropical Viterbi).

    Ties go to the arc with the smallest id.

    Args:
      lattice:
        The lattice.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.
      levels:
        Optional (S,) int64 topological levels, as in ``forward_scores``.

    Returns:
      ``(score, arc_ids)``: the float64 path score as a float, and a 1-D int64
      tensor of the path's arc ids from the start to the final state.

    Raises:
      LatticeError: as ``topological_levels`` (empty, cyclic, no path).
    """
    alpha, best_in = _sweep(lattice, arc_scores, levels, backward=False, log_semiring=False)
    final = lattice.num_states - 1
    best_in_list, src_list = best_in.tolist(), lattice.src.tolist()
    path = []
    state = final
    # Traceback: one step per arc of the path (at most L steps), not per state.
    while state != 0:
        arc = best_in_list[state]
        assert arc >= 0, "traceback left the reachable part"
        path.append(arc)
        state = src_list[arc]
    path.reverse()
    return float(alpha[final]), torch.tensor(path, dtype=torch.int64)


def total_log_score(
    lattice: Lattice, arc_scores: Tensor, levels: Optional[Tensor] = None,
) -> float:
    """Log-sum-exp of the scores of all paths (k2 ``get_tot_scores(log_semiring=True)``).

    Args:
      lattice:
        The lattice.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.
      levels:
        Optional (S,) int64 topological levels, as in ``forward_scores``.

    Returns:
      The float64 total score as a float.
    """
    alpha = forward_scores(lattice, arc_scores, log_semiring=True, levels=levels)
    return float(alpha[lattice.num_states - 1])
