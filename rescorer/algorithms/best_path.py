"""Forward/backward scores, Viterbi best paths and total scores of a whole batch.

Scores are accumulated in float64 (k2's ``use_double_scores=True``), one
topological level of the *batch* at a time: the arcs into (forward) or out of
(backward) the states of a level, in every lattice, are reduced at once with a
scatter max (tropical) or a max-shifted log-sum-exp (log). The number of torch
calls grows with the deepest lattice, not with the number of lattices.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import segment_logsumexp
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import splits_from_counts
from rescorer.threads import single_threaded

_NONE = torch.iinfo(torch.int64).max  # "no arc" while taking the smallest arc id


def _schedule(batch: LatticeBatch, schedule: Optional[LevelSchedule]) -> LevelSchedule:
    return LevelSchedule.of(batch) if schedule is None else schedule


def _sweep(schedule: LevelSchedule, scores: Tensor, backward: bool, log_semiring: bool) -> Tensor:
    """One forward or backward pass over all lattices; (S,) float64 state scores."""
    batch = schedule.batch
    state_scores = torch.full((batch.num_states,), float("-inf"), dtype=torch.float64,
                              device=batch.device)
    if backward:
        state_scores[batch.final_states] = 0.0
        return _pull(schedule, scores, state_scores, log_semiring)
    state_scores[batch.start_states] = 0.0
    tropical = _push_max(schedule, scores, state_scores)
    if not log_semiring:
        return tropical
    log = _push_log(schedule, scores, tropical)
    finals = batch.final_states
    if bool((torch.isfinite(tropical[finals]) & ~torch.isfinite(log[finals])).any()):
        log = _push_log_rescaled(schedule, scores, tropical)  # > 1e308 near-best paths
    return log


def _push_max(schedule: LevelSchedule, scores: Tensor, state_scores: Tensor,
              kept: Optional[Tensor] = None) -> Tensor:
    """Tropical forward: each level's out-arcs raise their destinations' maxima.

    ``scores`` (A,) may be float32: each sum is taken in ``state_scores``' float64.
    ``kept``, when given, is a (A,) float64 buffer that receives the arc values
    (source score + arc score) in ``schedule.order``.
    """
    if kept is None:
        kept = state_scores.new_empty(scores.numel())
    kept.copy_(scores.index_select(0, schedule.order))  # (A,) arc scores in order
    for values, src, dst in zip(schedule.per_level(kept), schedule.src, schedule.dst):
        values.add_(state_scores.index_select(0, src))
        state_scores.scatter_reduce_(0, dst, values, "amax", include_self=True)
    return state_scores


def _pull(schedule: LevelSchedule, scores: Tensor, state_scores: Tensor,
          log_semiring: bool) -> Tensor:
    """Backward: each level's states reduce over their out-arcs, last level first."""
    for level in range(schedule.num_levels - 1, -1, -1):
        arcs = schedule.arcs[level]
        if arcs.numel() == 0:
            continue
        values = state_scores.index_select(0, schedule.dst[level]) + scores.index_select(0, arcs)
        if log_semiring:
            sources, segments = schedule.sources[level]
            state_scores[sources] = segment_logsumexp(values, segments, sources.numel())
        else:
            state_scores.scatter_reduce_(0, schedule.src[level], values, "amax", include_self=True)
    return state_scores


def _push_log(schedule: LevelSchedule, scores: Tensor, tropical: Tensor) -> Tensor:
    """Forward log semiring as a linear-domain sum scaled by the tropical scores.

    With ``t`` the tropical forward scores, ``total[s] = sum over paths p to s of
    exp(score(p) - t[s])``; then ``log score = t + log(total)``. Along arc a,
    ``total[dst] += total[src] * exp(t[src] + w[a] - t[dst])``, a factor <= 1.
    ``total`` is >= 1 on reached states (the best path contributes 1), so
    nothing that matters underflows; it overflows only past 1e308 paths within
    a few nats of the best (``_sweep`` then falls back to ``_push_log_rescaled``).
    Factors are computed level by level: small gathers stay in cache.
    """
    batch = schedule.batch
    reached = torch.isfinite(tropical)  # (S,)
    shift = torch.where(reached, tropical, torch.zeros_like(tropical))  # (S,) finite
    total = torch.zeros_like(tropical)  # (S,)
    total[batch.start_states] = 1.0
    for arcs, src, dst in zip(schedule.arcs, schedule.src, schedule.dst):
        factor = torch.exp(tropical.index_select(0, src) + scores.index_select(0, arcs)
                           - shift.index_select(0, dst))  # (level arcs,) in [0, 1]
        total.scatter_add_(0, dst, total.index_select(0, src) * factor)
    return torch.where(reached, shift + torch.log(total), tropical)


def _push_log_rescaled(schedule: LevelSchedule, scores: Tensor, tropical: Tensor) -> Tensor:
    """Forward log semiring with a running (max, sum) per state: no overflow, more work."""
    state_scores = torch.full_like(tropical, float("-inf"))
    state_scores[schedule.batch.start_states] = 0.0
    peak = state_scores.clone()  # (S,) 0 at the starts, -inf elsewhere
    total = torch.isfinite(peak).to(torch.float64)  # (S,) 1 at the starts
    levels = zip(schedule.states, schedule.arcs, schedule.src, schedule.dst)
    for states, arcs, src, dst in levels:
        state_scores[states] = peak[states] + torch.log(total[states])  # final now
        values = state_scores[src] + scores[arcs]  # (level arcs,)
        old_peak = peak[dst]
        peak.scatter_reduce_(0, dst, values, "amax", include_self=True)
        new_peak = peak[dst]
        live = new_peak > float("-inf")
        safe_peak = torch.where(live, new_peak, torch.zeros_like(new_peak))
        total[dst] = total[dst] * torch.exp(old_peak - safe_peak)  # repeats write one value
        total.scatter_add_(0, dst, torch.where(live, torch.exp(values - safe_peak),
                                               torch.zeros_like(values)))
    return state_scores


def forward_scores(
    batch: LatticeBatch, arc_scores: Tensor, log_semiring: bool = False,
    schedule: Optional[LevelSchedule] = None,
) -> Tensor:
    """Best (tropical) or summed (log) score of the paths from the start to each state.

    Args:
      batch:
        The lattices.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better).
      log_semiring:
        False: max over paths; True: log-sum-exp over paths.
      schedule:
        The batch's ``LevelSchedule``; built (and the batch checked) if None.

    Returns:
      1-D float64 tensor of shape (S,); -inf where no path reaches the state.

    Raises:
      LatticeError: ``schedule`` is None and some lattice is empty, cyclic or has no path.
    """
    scores = arc_scores.to(torch.float64)
    return _sweep(_schedule(batch, schedule), scores, backward=False, log_semiring=log_semiring)


def backward_scores(
    batch: LatticeBatch, arc_scores: Tensor, log_semiring: bool = False,
    schedule: Optional[LevelSchedule] = None,
) -> Tensor:
    """Best or summed score of the paths from each state to its lattice's final state.

    Args and Raises as ``forward_scores``.

    Returns:
      1-D float64 tensor of shape (S,); -inf where the final state is not reachable.
    """
    scores = arc_scores.to(torch.float64)
    return _sweep(_schedule(batch, schedule), scores, backward=True, log_semiring=log_semiring)


def forward_arc_values(schedule: LevelSchedule, arc_scores: Tensor) -> Tuple[Tensor, Tensor]:
    """Tropical forward scores and the value each arc offers its destination.

    Args:
      schedule:
        The batch's ``LevelSchedule`` (no bad lattices).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.

    Returns:
      ``(alpha, values)``: 1-D float64 (S,) forward scores, and 1-D float64
      (A,) ``alpha[src[a]] + w[a]`` of arc ``schedule.order[i]`` at position i.
    """
    batch = schedule.batch
    alpha = torch.full((batch.num_states,), float("-inf"), dtype=torch.float64, device=batch.device)
    alpha[batch.start_states] = 0.0
    values = torch.empty(batch.num_arcs, dtype=torch.float64, device=batch.device)
    return _push_max(schedule, arc_scores, alpha, values), values


def _best_incoming_arcs(schedule: LevelSchedule, values: Tensor, alpha: Tensor) -> Tensor:
    """The best arc into each reached state (ties: smallest arc id), else -1.

    Args:
      schedule:
        The batch's schedule.
      values:
        1-D float64 tensor of shape (A,), the arc values ``_push_max`` kept, in
        ``schedule.order``.
      alpha:
        1-D float64 tensor of shape (S,), the tropical forward scores.

    Returns:
      1-D int64 tensor of shape (S,).
    """
    best = torch.full((schedule.batch.num_states,), _NONE, dtype=torch.int64, device=alpha.device)
    levels = zip(schedule.per_level(values), schedule.arcs, schedule.dst)
    for level_values, arcs, dst in levels:  # level by level: small temporaries stay in cache
        best_here = (level_values == alpha.index_select(0, dst)).nonzero().squeeze(1)  # same sums
        best.scatter_reduce_(0, dst.index_select(0, best_here), arcs.index_select(0, best_here),
                             "amin", include_self=True)
    return torch.where(best == _NONE, torch.full_like(best, -1), best)


def trace_back(batch: LatticeBatch, best_in: Tensor, num_levels: int) -> Tuple[Tensor, Tensor]:
    """Follow ``best_in`` from every final state back to its start, all lattices at once.

    Args:
      batch:
        The lattices.
      best_in:
        1-D int64 tensor of shape (S,), the best arc into each state (-1 at the starts).
      num_levels:
        L of the batch's schedule (a path has at most L-1 arcs).

    Returns:
      ``(splits, arc_ids)``: 1-D int64 (U+1,) row splits and the arc ids of each
      lattice's path from start to final, ragged ``[utt][arc]``.
    """
    states = torch.arange(batch.num_states, device=batch.device)
    previous = torch.where(best_in >= 0, batch.src.index_select(0, best_in.clamp(min=0)),
                           states)  # (S,) the starts point at themselves
    state = batch.final_states  # (U,)
    steps = []
    for step in range(max(num_levels - 1, 0)):  # one step per path arc, all paths together
        arc = best_in.index_select(0, state)  # (U,) -1 once at the start
        steps.append(arc)
        state = previous.index_select(0, state)
        if step % 16 == 15 and not bool((arc >= 0).any()):
            break
    if not steps:
        empty = torch.zeros(0, dtype=torch.int64, device=batch.device)
        return torch.zeros(batch.num_utts + 1, dtype=torch.int64, device=batch.device), empty
    table = torch.stack(steps, dim=1).flip(1)  # (U, T) start..final, -1 padding in front
    valid = table >= 0
    splits = splits_from_counts(valid.sum(dim=1).cpu()).to(batch.device)  # (U+1,)
    return splits, table[valid]


@single_threaded
def shortest_paths(
    batch: LatticeBatch, arc_scores: Tensor, schedule: Optional[LevelSchedule] = None,
) -> Tuple[Tensor, Tensor, Tensor]:
    """The highest-scoring path of every lattice (tropical Viterbi, k2 ``shortest_path``).

    Ties go to the arc with the smallest id.

    Args:
      batch:
        The lattices (U of them, A arcs).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better).
      schedule:
        The batch's ``LevelSchedule``; built (and the batch checked) if None.

    Returns:
      ``(scores, splits, arc_ids)``: a 1-D float64 tensor of shape (U,), each
      best path's score; and the paths as ragged ``[utt][arc]``, 1-D int64 row
      splits of shape (U+1,) and 1-D int64 *batch* arc ids (lattice u's path is
      ``arc_ids[splits[u]:splits[u+1]]``, from its start to its final state).

    Raises:
      LatticeError: ``schedule`` is None and some lattice is empty, cyclic or has no path.
    """
    schedule = _schedule(batch, schedule)
    alpha, values = forward_arc_values(schedule, arc_scores)
    best_in = _best_incoming_arcs(schedule, values, alpha)
    splits, arc_ids = trace_back(batch, best_in, schedule.num_levels)
    return alpha[batch.final_states], splits, arc_ids


@single_threaded
def total_scores(
    batch: LatticeBatch, arc_scores: Tensor, log_semiring: bool = True,
    schedule: Optional[LevelSchedule] = None,
) -> Tensor:
    """Each lattice's total score (k2 ``get_tot_scores(use_double_scores=True)``).

    Args:
      batch:
        The lattices (U of them, A arcs).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc.
      log_semiring:
        True: log-sum-exp over all paths; False: the best path's score.
      schedule:
        The batch's ``LevelSchedule``; built (and the batch checked) if None.

    Returns:
      1-D float64 tensor of shape (U,).

    Raises:
      LatticeError: ``schedule`` is None and some lattice is empty, cyclic or has no path.
    """
    alpha = forward_scores(batch, arc_scores, log_semiring, schedule)
    return alpha[batch.final_states]
