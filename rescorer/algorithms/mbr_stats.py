"""The MBR recursion of Xu et al. (2011), Figures 4 and 5, for a whole batch at once.

``rescorer.algorithms.mbr`` states the cost and the decoding loop; this module
computes one round's statistics: for every active lattice u with current
hypothesis ``R_u`` (epsilon-interleaved, ``Q_u`` positions), the forward
edit-cost matrix ``alpha'(state, q)``, the backward ``beta'(state, q)``, and
from them the bin posteriors ``gamma[u][q][word]`` and time sums.

Batching: the hypotheses are padded to ``Qm = max Q_u`` with the word -1
(never a lattice word) into a (U, Qm) matrix, and each arc works on its
lattice's row. Padding is exact, not approximate: the forward recursion only
flows from position q-1 and q to q, so columns past ``Q_u`` never reach the
real ones, and the backward one starts with all of its mass in column ``Q_u``
and only moves it to lower columns, so the padded columns hold exact zeros.
Every float operation a lattice sees is the one it would see alone (same
order of additions per state and per bin), so a lattice's result does not
depend on its batch-mates (tested).

Vectorised per topological level of the batch: all arcs entering a level are
one (arcs, Qm+1) matrix; the recursion along R (Kaldi's inner loop over q) is
a running minimum (``torch.cummin``) going forward and a segmented suffix sum
going backward.
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.mbr_graph import WordGraph

DELTA = 1.0e-5


@dataclass(frozen=True)
class BinStats:
    """One lattice's bin statistics after a round, entries sorted by (bin, word).

    Attributes:
      bins:
        1-D int64 tensor of shape (B,), the 1-based bin (position of R) of each entry.
      words:
        1-D int64 tensor of shape (B,), the word of each entry (0 = epsilon).
      gamma:
        1-D float64 tensor of shape (B,), its posterior.
      tau:
        2-D float64 tensor of shape (B, 2), sums of begin/end time times posterior.
      bayes_risk:
        The expected edit distance of R to the lattice.
    """

    bins: Tensor
    words: Tensor
    gamma: Tensor
    tau: Tensor
    bayes_risk: float


@dataclass(frozen=True)
class _Round:
    """The padded hypotheses of one round: (U, Qm) words and (U, Qm+1) D(q)."""

    reference: Tensor
    inserted: Tensor
    lengths: Tensor  # (U,) Q_u, 0 for inactive lattices


def _round(graph: WordGraph, references: Dict[int, Tensor]) -> _Round:
    """Pad the active lattices' hypotheses into one matrix."""
    device = graph.words.device
    count = graph.batch.num_utts
    lengths = torch.zeros(count, dtype=torch.int64)
    for utt, reference in references.items():
        lengths[utt] = reference.numel()
    width = int(lengths.max()) if count else 0
    padded = torch.full((count, width), -1, dtype=torch.int64)
    for utt, reference in references.items():
        padded[utt, :reference.numel()] = reference.cpu()
    padded = padded.to(device)
    inserted = torch.cat([torch.zeros(count, 1, dtype=torch.float64, device=device),
                          torch.cumsum((padded != 0).to(torch.float64), 1)], dim=1)  # (U, Qm+1) D(q)
    return _Round(padded, inserted, lengths.to(device))


def _costs(words: Tensor, previous: Tensor, reference: Tensor):
    """Kaldi's a1, a2 (per arc and position 1..Qm) and the position-0 cost.

    Args:
      words:
        1-D int64 (a,) arc words; previous: 2-D float64 (a, Qm+1) alpha' of the
        arcs' sources; reference: 2-D int64 (a, Qm) each arc's lattice's R.
    """
    against_eps = (words != 0).to(torch.float64) * (1.0 + DELTA)  # l(w, 0, penalize)
    substitute = (words.unsqueeze(1) != reference).to(torch.float64)  # (a, Qm) l(w, r_q)
    a1 = previous[:, :-1] + substitute  # (a, Qm) align w with r_q
    a2 = previous[:, 1:] + against_eps.unsqueeze(1)  # (a, Qm) w against nothing
    first = previous[:, 0] + against_eps  # (a,) position 0
    return a1, a2, first


def _arc_rows(a1: Tensor, a2: Tensor, first: Tensor, inserted: Tensor) -> Tensor:
    """alpha'_arc(q) = min(a1, a2, alpha'_arc(q-1) + l(0, r_q)), all q at once.

    With D(q) the cumulative cost of R's words 1..q (``inserted``, (a, Qm+1)),
    the chain of a3 terms is ``D(q) + min_{j <= q} (c(j) - D(j))``, c = min(a1, a2)
    (c(0) = first).
    """
    direct = torch.cat([first.unsqueeze(1), torch.minimum(a1, a2)], dim=1)  # (a, Qm+1)
    return torch.cummin(direct - inserted, dim=1).values + inserted


def _levels(graph: WordGraph, active: Tensor) -> List[Tensor]:
    """Per level, the arcs into it of the active lattices (by destination, then arc id)."""
    into = graph.schedule.into[0]
    if bool(active.all()):
        return list(into)
    keep = active[graph.batch.arc_utt]  # (A',)
    return [arcs[keep[arcs]] for arcs in into]


def _forward(graph: WordGraph, step: _Round, levels: List[Tensor],
             conditional: Tensor) -> Tuple[Tensor, List[Tensor]]:
    """Figure 4: alpha'(state, q), 2-D float64 (S', Qm+1), and each level's back-pointers.

    The back-pointers (Kaldi's b_arc(q): 1 align, 2 arc word against nothing,
    3 R's word against nothing) are 2-D uint8 (a, Qm) per level, kept for the
    backward pass, which would otherwise recompute the same costs.
    """
    batch = graph.batch
    alpha_dash = torch.zeros(batch.num_states, step.reference.shape[1] + 1, dtype=torch.float64,
                             device=batch.device)  # (S', Qm+1)
    alpha_dash[batch.start_states] = step.inserted  # the empty path against r_1 .. r_q
    arc_utt = batch.arc_utt
    choices = [torch.zeros(0, dtype=torch.uint8, device=batch.device)]  # level 0 has no arcs in
    for arcs in levels[1:]:
        if arcs.numel() == 0:
            choices.append(choices[0])
            continue
        utt = arc_utt[arcs]
        inserted = step.inserted[utt]  # (a, Qm+1)
        a1, a2, first = _costs(graph.words[arcs], alpha_dash[batch.src[arcs]], step.reference[utt])
        rows = _arc_rows(a1, a2, first, inserted)  # (a, Qm+1)
        alpha_dash.index_add_(0, batch.dst[arcs], conditional[arcs].unsqueeze(1) * rows)
        a3 = rows[:, :-1] + (inserted[:, 1:] - inserted[:, :-1])  # (a, Qm)
        choices.append(torch.where((a1 <= a2) & (a1 <= a3), 1,
                                   torch.where(a2 <= a3, 2, 3)).to(torch.uint8))  # (a, Qm)
    return alpha_dash, choices


def statistics(graph: WordGraph, references: Dict[int, Tensor]) -> Dict[int, BinStats]:
    """Figure 5 (Kaldi's AccStats) for the lattices ``references`` names.

    Args:
      graph:
        The batch's ``WordGraph``.
      references:
        Lattice index -> 1-D int64 tensor (Q_u,), its hypothesis with epsilons
        (``<eps> w1 <eps> .. <eps>``); the other lattices are skipped.

    Returns:
      Lattice index -> its ``BinStats``.
    """
    batch, device = graph.batch, graph.batch.device
    step = _round(graph, references)
    active = torch.zeros(batch.num_utts, dtype=torch.bool, device=device)
    active[list(references)] = True
    levels = _levels(graph, active)
    alpha = graph.alpha
    weight = alpha[batch.src] + graph.scores - alpha[batch.dst]  # (A',)
    zero = torch.zeros(1, dtype=torch.float64, device=device)
    conditional = torch.where(torch.isfinite(weight), weight.exp(), zero)
    alpha_dash, choices = _forward(graph, step, levels, conditional)
    width = step.reference.shape[1]  # Qm
    beta_dash = torch.zeros_like(alpha_dash)
    utts = active.nonzero().flatten()  # (U_a,)
    beta_dash[batch.final_states[utts], step.lengths[utts]] = 1.0
    collected: List[Tuple[Tensor, ...]] = []
    src, dst, times, arc_utt = batch.src, batch.dst, graph.times, batch.arc_utt
    for level in range(len(levels) - 1, 0, -1):
        arcs, choice = levels[level], choices[level]  # (a,), (a, Qm)
        if arcs.numel() == 0:
            continue
        utt = arc_utt[arcs]
        beta_arc = _segmented_suffix_sums(conditional[arcs].unsqueeze(1) * beta_dash[dst[arcs]],
                                          choice == 3)  # (a, Qm+1)
        to_source = torch.zeros_like(beta_arc)
        to_source[:, :-1] += torch.where(choice == 1, beta_arc[:, 1:], zero)
        to_source[:, 1:] += torch.where(choice == 2, beta_arc[:, 1:], zero)
        to_source[:, 0] += beta_arc[:, 0]
        beta_dash.index_add_(0, src[arcs], to_source)
        mass = beta_arc[:, 1:]  # (a, Qm)
        keep = (choice != 2) & (mass != 0)  # zero additions are ignored (Kaldi's AddToMap)
        rows, columns = keep.nonzero(as_tuple=True)  # (k,) arc rows, bin - 1
        aligned = choice[rows, columns] == 1  # (k,)
        arc = arcs[rows]
        words = torch.where(aligned, graph.words[arc], torch.zeros_like(arc))
        begin = torch.where(aligned, times[src[arc]], times[dst[arc]])
        collected.append((utt[rows], columns + 1, words, mass[rows, columns],
                          torch.stack([begin, times[dst[arc]]], dim=1)))
    collected.append(_start_mass(graph, step, beta_dash, utts))
    risks = alpha_dash[batch.final_states[utts], step.lengths[utts]].tolist()
    return _aggregate(collected, width, dict(zip(utts.tolist(), risks)))


def _start_mass(graph: WordGraph, step: _Round, beta_dash: Tensor, utts: Tensor) -> Tuple[Tensor, ...]:
    """Lines 29-35: each start state's remaining mass aligns with epsilon in every bin."""
    starts = graph.batch.start_states[utts]  # (U_a,)
    width = step.reference.shape[1]
    mass = torch.flip(torch.cumsum(torch.flip(beta_dash[starts, 1:], [1]), 1), [1])  # (U_a, Qm)
    bins = torch.arange(1, width + 1, device=mass.device).expand_as(mass)
    keep = bins <= step.lengths[utts].unsqueeze(1)
    time = graph.times[starts].unsqueeze(1).expand_as(mass)
    return (utts.unsqueeze(1).expand_as(mass)[keep], bins[keep], torch.zeros_like(bins)[keep],
            mass[keep], torch.stack([time[keep], time[keep]], dim=1))


def _segmented_suffix_sums(values: Tensor, carry: Tensor) -> Tensor:
    """beta(q) = values(q) + [carry(q+1)] * beta(q+1) for q = Qm..0, all rows at once.

    Args:
      values:
        2-D float64 tensor of shape (a, Qm+1).
      carry:
        2-D bool tensor of shape (a, Qm): ``carry[:, q-1]`` says beta(q) flows on
        into beta(q-1) (Kaldi's b_arc(q) == 3).

    Returns:
      2-D float64 tensor of shape (a, Qm+1).
    """
    count, width = values.shape
    device = values.device
    stop = torch.ones(count, width, dtype=torch.bool, device=device)
    stop[:, :-1] = ~carry  # beta(q) stops summing at the first j >= q with stop[j]
    index = torch.arange(width, device=device).expand(count, width)
    marks = torch.where(stop, index, torch.full_like(index, width))
    run_end = torch.flip(torch.cummin(torch.flip(marks, [1]), dim=1).values, [1])  # (a, Qm+1)
    suffix = torch.flip(torch.cumsum(torch.flip(values, [1]), dim=1), [1])  # (a, Qm+1)
    suffix = torch.cat([suffix, torch.zeros(count, 1, dtype=values.dtype, device=device)], dim=1)
    return suffix[:, :-1] - suffix.gather(1, run_end + 1)  # (a, Qm+1)


def _aggregate(collected: List[Tuple[Tensor, ...]], width: int,
               risks: Dict[int, float]) -> Dict[int, BinStats]:
    """Sum the (lattice, bin, word, mass, times) contributions per (lattice, bin, word)."""
    utts, bins, words, mass, times = (torch.cat([item[i] for item in collected]) for i in range(5))
    nonzero = mass != 0  # as Kaldi's AddToMap, which ignores zero additions
    utts, bins, words, mass, times = utts[nonzero], bins[nonzero], words[nonzero], mass[nonzero], times[nonzero]
    base = int(words.max()) + 1 if words.numel() else 1
    keys, inverse = torch.unique((utts * (width + 1) + bins) * base + words, return_inverse=True)
    gamma = torch.zeros(keys.numel(), dtype=torch.float64, device=keys.device).index_add_(0, inverse, mass)
    tau = torch.zeros(keys.numel(), 2, dtype=torch.float64, device=keys.device).index_add_(
        0, inverse, times * mass.unsqueeze(1))  # (B, 2)
    key_utt = keys // base // (width + 1)  # (B,) sorted
    order = sorted(risks)
    bounds = torch.searchsorted(key_utt, torch.tensor(order + [max(order, default=0) + 1],
                                                      device=keys.device)).tolist()
    stats = {}
    for position, utt in enumerate(order):
        part = slice(bounds[position], bounds[position + 1])
        stats[utt] = BinStats(bins=(keys[part] // base) % (width + 1), words=keys[part] % base,
                              gamma=gamma[part], tau=tau[part], bayes_risk=risks[utt])
    return stats
