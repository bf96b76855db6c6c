"""State times for the CTM of ``--decode mbr``: from the format, then onto expanded lattices.

MBR gives a consensus word the posterior-weighted times of the states around
the arcs aligned to it (Kaldi's convention: an arc's word spans the times of
its source and destination states), so every lattice needs one time per
state, in seconds:

* SLF: ``LatticeBatch.state_times``, as the reader keeps them (``t=``).
* Kaldi: an arc lasts as many frames as it has transition ids
  (``LatticeBatch.transition_splits``; the -1 arc of a final weight its
  string's). A state's time is the frame count of the paths reaching it,
  times ``--frame-shift``. Kaldi's ``CompactLatticeStateTimes`` assumes every
  path to a state has the same count; here it is checked (the longest and
  the shortest count, two batched forward sweeps, must agree) and a lattice
  where it fails gets no times, with a note naming it.
* k2 (and lattices handed over in memory): one arc per frame when the
  lattice is frame-synchronous, i.e. every path to a state has the same
  number of arcs (the same check with one frame per arc); otherwise no
  times, with one note for all such lattices.

In a run the job gets the lattices pruned as read, so these checks look at
the paths within the beam, the only ones an output can take.

Unknown times are NaN. Expanded lattices take the times of their original
states: an expanded arc copies an input arc (``PreparedPart.kept_arcs`` of
``ExpandedBatch.orig_arc``), so its ends get that arc's source and
destination times.
"""
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import forward_scores
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import RescorerError
from rescorer.formats.detect import K2, detect_format
from rescorer.lattice.batch import LatticeBatch

K2_NOT_SYNCHRONOUS = "not frame-synchronous (paths of different lengths meet at a state)"


def lattice_state_times(
    schedule: LevelSchedule, paths: Sequence[Optional[Path]], frame_shift: float,
) -> Tuple[Tensor, Dict[int, str]]:
    """Each state's time in seconds, and why some lattices have none.

    Args:
      schedule:
        The ``LevelSchedule`` of the lattices (U of them, S states).
      paths:
        The file of each lattice (None: in memory), to tell k2 files from
        SLF files without times.
      frame_shift:
        Seconds per frame (Kaldi and k2).

    Returns:
      ``(times, notes)``: a 1-D float64 tensor of shape (S,), NaN where unknown,
      and lattice index -> the reason for the lattices whose format has times
      but whose times could not be derived.
    """
    batch = schedule.batch
    unknown = torch.full((batch.num_states,), float("nan"), dtype=torch.float64, device=batch.device)
    if batch.state_times is not None:
        return batch.state_times.to(torch.float64), {}
    if batch.transition_splits is not None:
        frames = (batch.transition_splits[1:] - batch.transition_splits[:-1]).to(torch.float64)  # (A,)
        times, consistent = _frame_times(schedule, frames)
        notes = {utt: "Kaldi lattice with inconsistent frame counts (paths of different numbers of "
                      "transition ids meet at a state): no CTM lines for it"
                 for utt, ok in enumerate(consistent.tolist()) if not ok}
        return torch.where(consistent[batch.state_utt], times * frame_shift, unknown), notes
    kinds = {path: _is_k2(path) for path in set(paths)}  # one look at each file
    k2 = torch.tensor([kinds[path] for path in paths], dtype=torch.bool, device=batch.device)
    if not bool(k2.any()):
        return unknown, {}
    times, consistent = _frame_times(schedule, torch.ones(batch.num_arcs, dtype=torch.float64,
                                                          device=batch.device))
    notes = {utt: K2_NOT_SYNCHRONOUS for utt, (ok, is_k2) in enumerate(zip(consistent.tolist(), k2.tolist()))
             if is_k2 and not ok}
    timed = (consistent & k2)[batch.state_utt]  # (S,)
    return torch.where(timed, times * frame_shift, unknown), notes


def _frame_times(schedule: LevelSchedule, frames: Tensor) -> Tuple[Tensor, Tensor]:
    """(S,) float64 frame count of the paths to each state, and (U,) bool: all paths agree."""
    batch = schedule.batch
    longest = forward_scores(batch, frames, schedule=schedule)  # (S,) max over paths
    shortest = -forward_scores(batch, -frames, schedule=schedule)  # (S,) min over paths
    reached = torch.isfinite(longest)
    differs = (reached & (longest != shortest)).to(torch.int64)
    bad = torch.zeros(batch.num_utts, dtype=torch.int64, device=batch.device).index_add_(
        0, batch.state_utt, differs)  # (U,)
    return longest, bad == 0


def _is_k2(path: Optional[Path]) -> bool:
    """True for a k2 file or an in-memory lattice (None)."""
    if path is None:
        return True
    try:
        return Path(path).is_file() and detect_format(path) == K2
    except RescorerError:
        return False


def expanded_state_times(source: LatticeBatch, source_times: Tensor, expanded: LatticeBatch,
                         source_arcs: Tensor) -> Tensor:
    """The state times of an expansion, from the states of the arcs it copies.

    Args:
      source:
        The lattices as read (S states).
      source_times:
        1-D float64 tensor of shape (S,), their state times (NaN: unknown).
      expanded:
        The expanded lattices (S' states, A' arcs).
      source_arcs:
        1-D int64 tensor of shape (A',), the ``source`` arc each expanded arc copies.

    Returns:
      1-D float64 tensor of shape (S',); NaN for states without arcs (none in a
      connected lattice) or of lattices without times.
    """
    times = torch.full((expanded.num_states,), float("nan"), dtype=torch.float64, device=expanded.device)
    times[expanded.src] = source_times[source.src[source_arcs]]
    times[expanded.dst] = source_times[source.dst[source_arcs]]
    return times
