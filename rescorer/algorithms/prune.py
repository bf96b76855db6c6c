"""Trimming lattices: ``connect`` (useless parts) and ``prune_by_beam`` (Kaldi beam).

Both return a new lattice plus the input arc id of each kept arc, so per-arc
data held elsewhere (extra score columns) can follow with ``index_select``.
"""
from typing import Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import backward_scores, forward_scores
from rescorer.algorithms.topsort import select_arcs, topological_levels
from rescorer.errors import ConfigError
from rescorer.lattice.fsavec import Lattice

# Relative slack on the beam test: an arc of the best path must pass at beam 0
# although alpha + w + beta and the best score are summed in different orders.
_RELATIVE_SLACK = 1e-12


def connect(lattice: Lattice, levels: Optional[Tensor] = None) -> Tuple[Lattice, Tensor]:
    """Drop the states and arcs that lie on no path from the start to the final state.

    Args:
      lattice:
        The input lattice (not modified).
      levels:
        Optional (S,) int64 topological levels of ``lattice``; computed if None.

    Returns:
      ``(connected, kept_arc_ids)``: the trimmed lattice (states renumbered in
      their old order) and a 1-D int64 tensor of shape (A',), the input arc id
      of each of its arcs, increasing.

    Raises:
      LatticeError: empty, cyclic, or no path from start to final.
    """
    if levels is None:
        levels = topological_levels(lattice)
    zeros = torch.zeros(lattice.num_arcs, dtype=torch.float64)
    alpha = forward_scores(lattice, zeros, levels=levels)  # -inf: unreachable
    beta = backward_scores(lattice, zeros, levels=levels)  # -inf: dead end
    useful = torch.isfinite(alpha[lattice.src]) & torch.isfinite(beta[lattice.dst])
    kept = useful.nonzero().squeeze(1)
    return select_arcs(lattice, kept), kept


def prune_by_beam(
    lattice: Lattice, arc_scores: Tensor, beam: float, levels: Optional[Tensor] = None,
) -> Tuple[Lattice, Tensor]:
    """Keep the arcs whose best complete path is within ``beam`` of the best path.

    Kaldi ``lattice-prune`` semantics: arc a survives iff
    ``alpha[src[a]] + w[a] + beta[dst[a]] >= best - beam`` (tropical scores,
    higher is better). The survivors always form a connected lattice, because
    every arc on the best path through a survivor survives too.

    Args:
      lattice:
        The input lattice (not modified).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better).
      beam:
        The beam, >= 0, in the units of ``arc_scores``.
      levels:
        Optional (S,) int64 topological levels of ``lattice``; computed if None.

    Returns:
      ``(pruned, kept_arc_ids)``: the pruned lattice and a 1-D int64 tensor of
      shape (A',), the input arc id of each of its arcs, increasing.

    Raises:
      ConfigError: negative or NaN beam.
      LatticeError: empty, cyclic, or no path from start to final.
    """
    if not beam >= 0:
        raise ConfigError(f"pruning beam must be >= 0 (got {beam})", utt_id=lattice.utt_id)
    if levels is None:
        levels = topological_levels(lattice)
    scores = arc_scores.to(torch.float64)
    alpha = forward_scores(lattice, scores, levels=levels)
    beta = backward_scores(lattice, scores, levels=levels)
    best = float(alpha[lattice.num_states - 1])
    through = alpha[lattice.src] + scores + beta[lattice.dst]  # (A,) best path via arc
    threshold = best - beam - _RELATIVE_SLACK * (1.0 + abs(best))
    kept = (through >= threshold).nonzero().squeeze(1)
    return select_arcs(lattice, kept), kept
