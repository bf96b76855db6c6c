"""Lattices with exactly one word (or epsilon) per arc, as MBR decoding needs.

Kaldi's MBR works on a CompactLattice, one word or epsilon per arc. An arc of
a ``LatticeBatch`` can carry several words (ragged ``[arc][word]``); it
becomes a chain of arcs through new states, the first one carrying the arc's
score. Every lattice of the batch is split at once: lattice u's new states get
ids after its own non-final states, and its final state stays its last. The
times of new states (when state times are given) are spread evenly between the
arc's end states.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from rescorer.algorithms.best_path import forward_scores
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import splits_from_counts, words_from_labels


@dataclass(frozen=True)
class WordGraph:
    """One word per arc (see the module docstring), U lattices, S' states, A' arcs.

    Attributes:
      schedule:
        The ``LevelSchedule`` of the split batch (``schedule.batch``).
      words:
        1-D int64 tensor of shape (A',), the word of each arc, 0 for epsilon.
      scores:
        1-D float64 tensor of shape (A',), scaled log-scores.
      alpha:
        1-D float64 tensor of shape (S',), log-semiring forward scores.
      times:
        1-D float64 tensor of shape (S',), state times (zeros when unknown; NaN
        where the given times were NaN).
    """

    schedule: LevelSchedule
    words: Tensor
    scores: Tensor
    alpha: Tensor
    times: Tensor

    @property
    def batch(self) -> LatticeBatch:
        return self.schedule.batch


def word_graph(batch: LatticeBatch, scores: Tensor, state_times: Optional[Tensor] = None) -> WordGraph:
    """Split multi-word arcs into chains, then build the schedule and forward scores.

    Args:
      batch:
        The lattices (no bad ones: see ``LevelSchedule.checked``).
      scores:
        1-D float64 tensor of shape (A,), already scaled log-scores.
      state_times:
        Optional 1-D float tensor of shape (S,), the time of each state.

    Returns:
      The ``WordGraph``.

    Raises:
      LatticeError: as ``LevelSchedule.of``.
    """
    device = batch.device
    counts = batch.words_per_arc  # (A,)
    pieces = counts.clamp_min(1)  # (A,) an arc without words is one epsilon arc
    piece_arc = torch.repeat_interleave(torch.arange(batch.num_arcs, device=device), pieces)  # (P,)
    starts = torch.cumsum(pieces, 0) - pieces  # (A,) first piece of each arc
    step = torch.arange(piece_arc.numel(), device=device) - starts[piece_arc]  # (P,) index in its arc
    extra = pieces - 1  # (A,) new states per arc
    extra_start = torch.cumsum(extra, 0) - extra  # (A,) batch-wide
    arc_utt = batch.arc_utt
    utt_extra = torch.zeros(batch.num_utts, dtype=torch.int64, device=device).index_add_(0, arc_utt, extra)
    old_counts = batch.state_splits[1:] - batch.state_splits[:-1]  # (U,)
    new_splits = splits_from_counts((old_counts + utt_extra).cpu()).to(device)  # (U+1,)
    shift = new_splits[:-1] - batch.state_splits[:-1]  # (U,) of a lattice's old non-final states
    state_utt = batch.state_utt

    def renumber(states: Tensor) -> Tensor:
        utt = state_utt[states]
        return torch.where(states == batch.final_states[utt], new_splits[1:][utt] - 1, states + shift[utt])

    utt = arc_utt[piece_arc]  # (P,)
    local_extra = extra_start[piece_arc] - (torch.cumsum(utt_extra, 0) - utt_extra)[utt]  # (P,)
    inner = new_splits[:-1][utt] + old_counts[utt] - 1 + local_extra + step  # (P,) state after piece
    last = step == pieces[piece_arc] - 1
    src = torch.where(step == 0, renumber(batch.src[piece_arc]), inner - 1)
    dst = torch.where(last, renumber(batch.dst[piece_arc]), inner)
    has_word = counts[piece_arc] > 0
    word_index = (batch.word_splits[piece_arc] + step).clamp_max(max(batch.word_ids.numel() - 1, 0))
    words = torch.where(has_word, batch.word_ids[word_index] if batch.word_ids.numel()
                        else torch.zeros_like(step), torch.zeros_like(step))  # (P,)
    piece_scores = torch.where(step == 0, scores.to(torch.float64)[piece_arc],
                               torch.zeros(1, dtype=torch.float64, device=device))
    into_final = dst == (new_splits[1:] - 1)[utt]
    labels = torch.where(into_final, torch.full_like(words, -1), words)
    word_splits, word_ids = words_from_labels(torch.where(labels > 0, labels, torch.zeros_like(labels)))
    split = LatticeBatch(
        utt_ids=list(batch.utt_ids), state_splits=new_splits,
        arc_splits=splits_from_counts(torch.bincount(utt, minlength=batch.num_utts).cpu()).to(device),
        src=src, dst=dst, labels=labels, word_splits=word_splits.to(device), word_ids=word_ids,
        am_scores=piece_scores.float(), ngram_scores=torch.zeros(src.numel(), device=device))
    schedule = LevelSchedule.of(split)
    alpha = forward_scores(split, piece_scores, log_semiring=True, schedule=schedule)
    times = _split_times(batch, state_times, renumber, int(new_splits[-1]), pieces, piece_arc, step, inner)
    return WordGraph(schedule, words, piece_scores, alpha, times)


def _split_times(batch: LatticeBatch, state_times: Optional[Tensor], renumber, num_states: int,
                 pieces: Tensor, piece_arc: Tensor, step: Tensor, inner: Tensor) -> Tensor:
    """State times of the split batch: the original ones, new states spread along their arc."""
    times = torch.zeros(num_states, dtype=torch.float64, device=batch.device)
    if state_times is None:
        return times
    state_times = state_times.to(torch.float64)
    times[renumber(torch.arange(batch.num_states, device=batch.device))] = state_times
    new = step < pieces[piece_arc] - 1  # (P,) pieces followed by a new state
    owner = piece_arc[new]
    fraction = (step[new] + 1).to(torch.float64) / pieces[owner].to(torch.float64)
    begin, end = state_times[batch.src[owner]], state_times[batch.dst[owner]]
    times[inner[new]] = begin + fraction * (end - begin)
    return times
