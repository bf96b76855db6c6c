"""Trimming a batch of lattices: ``connect`` (useful part) and ``prune_by_beam`` (Kaldi beam).

Both work on every lattice of the batch at once and return a new batch plus
the input arc id of each kept arc, so per-arc data held elsewhere (extra score
columns, LM tokens) can follow with ``index_select``, and the result's
``LevelSchedule``. ``beam_survivors`` gives just the kept arc ids, for a
caller that needs no schedule of the result.
"""
from typing import Tuple, Union

import torch
from torch import Tensor

from rescorer.algorithms.best_path import backward_scores, forward_arc_values, forward_scores
from rescorer.algorithms.topsort import LevelSchedule, select_arcs
from rescorer.errors import ConfigError

# Relative slack on the beam test: an arc of the best path must pass at beam 0
# although alpha + w + beta and the best score are summed in different orders.
_RELATIVE_SLACK = 1e-12


def _keep(schedule: LevelSchedule, kept: Tensor) -> Tuple[LevelSchedule, Tensor]:
    """The schedule of the batch reduced to the arcs ``kept`` (increasing ids)."""
    selected, _ = select_arcs(schedule.batch, kept)
    return LevelSchedule.of(selected), kept


def connect(schedule: LevelSchedule) -> Tuple[LevelSchedule, Tensor]:
    """Drop the states and arcs that lie on no path from a start to its final state.

    Args:
      schedule:
        The input batch's ``LevelSchedule`` (``LevelSchedule.of(batch)``: no bad lattices).

    Returns:
      ``(connected, kept_arc_ids)``: the schedule of the trimmed batch (states
      renumbered in their old order) and a 1-D int64 tensor of
      shape (A',), the input arc id of each of its arcs, increasing.
    """
    batch = schedule.batch
    zeros = torch.zeros(batch.num_arcs, dtype=torch.float64, device=batch.device)
    alpha = forward_scores(batch, zeros, schedule=schedule)  # -inf: unreachable
    beta = backward_scores(batch, zeros, schedule=schedule)  # -inf: dead end
    useful = torch.isfinite(alpha[batch.src]) & torch.isfinite(beta[batch.dst])
    return _keep(schedule, useful.nonzero().squeeze(1))


def prune_by_beam(
    schedule: LevelSchedule, arc_scores: Tensor, beam: Union[float, Tensor],
) -> Tuple[LevelSchedule, Tensor]:
    """Keep the arcs whose best complete path is within the beam of the best path.

    Kaldi ``lattice-prune`` semantics (``beam_survivors``). The survivors always
    form a connected lattice, because every arc on the best path through a
    survivor survives too.

    Args:
      schedule, arc_scores, beam:
        As ``beam_survivors``.

    Returns:
      ``(pruned, kept_arc_ids)``: the pruned batch's schedule and a 1-D int64
      tensor of shape (A',), the input arc id of each of its arcs, increasing.

    Raises:
      ConfigError: a negative or NaN beam.
    """
    return _keep(schedule, beam_survivors(schedule, arc_scores, beam))


def beam_survivors(schedule: LevelSchedule, arc_scores: Tensor, beam: Union[float, Tensor]) -> Tensor:
    """The arcs that ``prune_by_beam`` keeps, without the pruned batch's schedule.

    Arc a of lattice u survives iff ``alpha[src[a]] + w[a] + beta[dst[a]] >=
    best[u] - beam[u]`` (tropical scores, higher is better; never an arc on no
    complete path).

    Args:
      schedule:
        The input batch's ``LevelSchedule``.
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better).
      beam:
        The beam, >= 0, in the units of ``arc_scores``: a float for every
        lattice, or a 1-D float tensor of shape (U,), one per lattice
        (``inf`` keeps every useful arc).

    Returns:
      1-D int64 tensor of shape (A',), the ids of the surviving arcs, increasing.

    Raises:
      ConfigError: a negative or NaN beam.
    """
    batch = schedule.batch
    beams = torch.as_tensor(beam, dtype=torch.float64, device=batch.device).expand(batch.num_utts)
    if not bool((beams >= 0).all()):
        bad = int((~(beams >= 0)).nonzero()[0])
        raise ConfigError(f"pruning beam must be >= 0 (got {float(beams[bad])})",
                          utt_id=batch.utt_ids[bad])
    scores = arc_scores.to(torch.float64)
    alpha, through = forward_arc_values(schedule, scores)  # (A,) alpha[src] + w, in order
    beta = backward_scores(batch, scores, schedule=schedule)
    best = alpha[batch.final_states]  # (U,)
    through += beta.index_select(0, schedule.order_dst)  # best path via each arc, in order
    threshold = best - beams - _RELATIVE_SLACK * (1.0 + best.abs())  # (U,)
    # The lowest finite float in place of -inf (an infinite beam) keeps -inf arcs out.
    threshold.clamp_(min=torch.finfo(torch.float64).min)
    at_state = threshold.index_select(0, batch.state_utt)  # (S,) each state's lattice's
    passed = (through >= at_state.index_select(0, schedule.order_src)).nonzero().squeeze(1)
    return torch.sort(schedule.order.index_select(0, passed)).values
