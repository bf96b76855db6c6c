"""A lattice with exactly one word (or epsilon) per arc, as MBR decoding needs.

Kaldi's MBR works on a CompactLattice, one word or epsilon per arc. An arc of
``Lattice`` can carry several words (ragged ``[arc][word]``); it becomes a
chain of arcs through new states, the first one carrying the arc's score.
New states get ids after the original non-final ones, and the final state
stays last. The times of new states (when state times are given) are spread
evenly between the arc's end states.
"""
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from rescorer.algorithms.single import forward_scores
from rescorer.algorithms.single import topological_levels
from rescorer.lattice.fsavec import Lattice, words_from_labels


@dataclass(frozen=True)
class WordGraph:
    """One word per arc (see the module docstring).

    Attributes:
      lattice:
        The split lattice (S' states, A' arcs).
      words:
        1-D int64 tensor of shape (A',), the word of each arc, 0 for epsilon.
      scores:
        1-D float64 tensor of shape (A',), scaled log-scores.
      levels:
        1-D int64 tensor of shape (S',), topological levels.
      alpha:
        1-D float64 tensor of shape (S',), log-semiring forward scores.
      times:
        1-D float64 tensor of shape (S',), state times (zeros when unknown).
    """

    lattice: Lattice
    words: Tensor
    scores: Tensor
    levels: Tensor
    alpha: Tensor
    times: Tensor


def word_graph(lattice: Lattice, scores: Tensor, state_times: Optional[Tensor] = None) -> WordGraph:
    """Split multi-word arcs into chains and compute levels and forward scores.

    Args:
      lattice:
        The lattice.
      scores:
        1-D float64 tensor of shape (A,), already scaled log-scores.
      state_times:
        Optional 1-D float tensor of shape (S,), the time of each state.

    Returns:
      The ``WordGraph``.

    Raises:
      LatticeError: as ``topological_levels``.
    """
    counts = lattice.words_per_arc  # (A,)
    pieces = counts.clamp_min(1)  # (A,) an arc without words is one epsilon arc
    piece_arc = torch.repeat_interleave(torch.arange(lattice.num_arcs), pieces)  # (P,)
    starts = torch.cumsum(pieces, 0) - pieces  # (A,) first piece of each arc
    step = torch.arange(piece_arc.numel()) - starts[piece_arc]  # (P,) index inside its arc
    extra = pieces - 1  # (A,) new states per arc
    extra_start = torch.cumsum(extra, 0) - extra  # (A,)
    old_final = lattice.num_states - 1
    final = old_final + int(extra.sum())
    inner = old_final + extra_start[piece_arc] + step  # (P,) id of the state after piece j < last
    last = step == pieces[piece_arc] - 1
    renumber = lambda states: torch.where(states == old_final, torch.full_like(states, final), states)
    src = torch.where(step == 0, renumber(lattice.src[piece_arc]), inner - 1)
    dst = torch.where(last, renumber(lattice.dst[piece_arc]), inner)
    has_word = counts[piece_arc] > 0
    word_index = (lattice.word_splits[piece_arc] + step).clamp_max(max(lattice.word_ids.numel() - 1, 0))
    words = torch.where(has_word, lattice.word_ids[word_index] if lattice.word_ids.numel()
                        else torch.zeros_like(step), torch.zeros_like(step))  # (P,)
    piece_scores = torch.where(step == 0, scores.to(torch.float64)[piece_arc],
                               torch.zeros(1, dtype=torch.float64))
    labels = torch.where(dst == final, torch.full_like(words, -1), words)
    word_splits, word_ids = words_from_labels(torch.where(labels > 0, labels, torch.zeros_like(labels)))
    split = Lattice(utt_id=lattice.utt_id, num_states=final + 1, src=src, dst=dst, labels=labels,
                    word_splits=word_splits, word_ids=word_ids,
                    am_scores=piece_scores.float(), ngram_scores=torch.zeros(src.numel()))
    levels = topological_levels(split)
    alpha = forward_scores(split, piece_scores, log_semiring=True, levels=levels)
    return WordGraph(split, words, piece_scores, levels, alpha,
                     _split_times(lattice, state_times, final, pieces, extra_start))


def _split_times(lattice: Lattice, state_times: Optional[Tensor], final: int, pieces: Tensor,
                 extra_start: Tensor) -> Tensor:
    """State times of the split lattice: original ones, new states spread along their arc."""
    times = torch.zeros(final + 1, dtype=torch.float64)
    if state_times is None:
        return times
    state_times = state_times.to(torch.float64)
    times[:lattice.num_states - 1] = state_times[:-1]
    times[final] = state_times[-1]
    arcs = (pieces > 1).nonzero().flatten()  # arcs that got new states
    counts = pieces[arcs] - 1
    owner = torch.repeat_interleave(arcs, counts)  # (new states,)
    index = torch.arange(owner.numel()) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    fraction = (index + 1).to(torch.float64) / pieces[owner].to(torch.float64)
    begin, end = state_times[lattice.src[owner]], state_times[lattice.dst[owner]]
    times[lattice.num_states - 1 + extra_start[owner] + index] = begin + fraction * (end - begin)
    return times
