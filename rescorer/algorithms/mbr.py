"""Minimum Bayes risk decoding: arc posteriors, confusion networks, consensus.

This follows Kaldi's ``lattice-mbr-decode`` (``src/lat/sausages.{h,cc}``,
class ``MinimumBayesRisk``), which implements H. Xu, D. Povey, L. Mangu and
J. Zhu, "Minimum Bayes Risk decoding and system combination based on a
recursion for edit distance", Computer Speech and Language 25(4), 2011.

The cost. The Bayes risk of a hypothesis R is the expected Levenshtein
distance to the lattice's paths W under their posterior::

    L(R) = sum_W P(W | O) * Lev(W, R),   P(W | O) ~ exp(scale * score(W))

computed with the paper's forward recursion over (state, position of R) with
the word costs ``l(a, b) = 0 if a == b else 1`` (Kaldi's ``l(a, b)``), except
that aligning a lattice word with an epsilon of R costs ``1 + delta``,
``delta = 1e-5`` (Kaldi's ``l(a, 0, penalize=true)``), so that a word is
preferably aligned to a word position and shows up in its bin's statistics.
R is interleaved with epsilons, ``<eps> r1 <eps> r2 .. rQ <eps>``, so each
bin q of the confusion network is one position of R. Decoding (the paper's
Figure 6) starts from the Viterbi path, accumulates the bin posteriors
``gamma[q][word]`` (Figure 5) and replaces every position by its most likely
word (epsilon included) until R no longer changes (at most 100 rounds).

Ties between words of one bin go to the current word, then to the smallest
word id (Kaldi leaves them to ``std::sort``). Times: with per-state times,
a bin word's start and end are the posterior-weighted means of the source and
destination state times of the arcs aligned to it (Kaldi's ``tau_b``,
``tau_e``; an epsilon alignment uses the destination time for both), and
overlapping consecutive words are split in proportion to their durations as
Kaldi's ``MbrDecode`` does.

Vectorised per topological level: all arcs entering a level are processed at
once as an (arcs, Q+1) matrix; the recursion along R (Kaldi's inner loop
over q) is a running minimum (``torch.cummin``) going forward and a
segmented suffix sum going backward.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.single import backward_scores, best_path, forward_scores
from rescorer.algorithms.mbr_graph import WordGraph, word_graph
from rescorer.algorithms.single import level_schedule
from rescorer.errors import ConfigError
from rescorer.lattice.fsavec import Lattice

DELTA = 1.0e-5
MAX_ROUNDS = 100


@dataclass(frozen=True)
class MbrResult:
    """The consensus hypothesis and its confusion network.

    Attributes:
      word_ids:
        1-D int64 tensor of shape (Q,), the consensus words (epsilons removed).
      confidences:
        1-D float64 tensor of shape (Q,), each word's posterior in its bin.
      bins:
        The confusion network: per bin (2Q+1 of them once converged; even
        ones are the epsilon positions between words), (word id, posterior)
        pairs sorted by decreasing posterior; word 0 is epsilon.
      bayes_risk:
        The expected edit distance of the consensus to the lattice (with the
        ``1 + delta`` epsilon cost).
      word_times:
        2-D float64 tensor of shape (Q, 2), start and end of each word, or None
        when no state times were given.
      rounds:
        How many rounds of Figure 6 ran.
    """

    word_ids: Tensor
    confidences: Tensor
    bins: List[List[Tuple[int, float]]]
    bayes_risk: float
    word_times: Optional[Tensor]
    rounds: int


def arc_posteriors(lattice: Lattice, arc_scores: Tensor, scale: float = 1.0,
                   levels: Optional[Tensor] = None) -> Tensor:
    """Posterior probability of every arc, by forward-backward in the log semiring.

    Args:
      lattice:
        The lattice.
      arc_scores:
        1-D float tensor of shape (A,), total log-scores (higher is better).
      scale:
        Multiplies the scores first (Kaldi's --acoustic-scale on a total score;
        smaller flattens the posteriors).
      levels:
        Optional (S,) int64 topological levels.

    Returns:
      1-D float64 tensor of shape (A,), P(path uses arc | lattice), 0 on arcs
      off every complete path.
    """
    scores = arc_scores.to(torch.float64) * scale
    alpha = forward_scores(lattice, scores, log_semiring=True, levels=levels)
    beta = backward_scores(lattice, scores, log_semiring=True, levels=levels)
    total = alpha[lattice.num_states - 1]
    log_posterior = alpha[lattice.src] + scores + beta[lattice.dst] - total  # (A,)
    return torch.where(torch.isfinite(log_posterior), log_posterior.exp(), torch.zeros(1, dtype=torch.float64))


def mbr_decode(lattice: Lattice, arc_scores: Tensor, scale: float = 1.0,
               state_times: Optional[Tensor] = None) -> MbrResult:
    """The minimum-Bayes-risk consensus of a lattice (see the module docstring).

    Args:
      lattice:
        The lattice; arcs may carry any number of words (split into chains).
      arc_scores:
        1-D float tensor of shape (A,), total log-scores (higher is better).
      scale:
        Posterior scale (> 0) applied to the scores; it does not change the
        Viterbi path the decoding starts from.
      state_times:
        Optional 1-D float tensor of shape (S,), the time of each state (e.g.
        SLF node times; for word-on-node SLF use the time where the word
        ends), for ``word_times``.

    Returns:
      The ``MbrResult``.

    Raises:
      LatticeError: for an empty or cyclic lattice, or one without a path.
    """
    if not scale > 0:
        raise ConfigError(f"the posterior scale must be > 0 (got {scale})")
    graph = word_graph(lattice, arc_scores.to(torch.float64) * scale, state_times)
    _, path = best_path(graph.lattice, graph.scores, levels=graph.levels)
    viterbi = graph.words[path]
    reference = _with_epsilons(viterbi[viterbi != 0])
    for rounds in range(1, MAX_ROUNDS + 1):
        stats = _bin_statistics(graph, reference)
        chosen = _best_words(stats, reference)  # (Q,) the best word of every bin
        if torch.equal(chosen, reference) or rounds == MAX_ROUNDS:
            break
        reference = _with_epsilons(chosen[chosen != 0])
    return _result(stats, chosen, state_times is not None, rounds)


def _with_epsilons(words: Tensor) -> Tensor:
    """``<eps> w1 <eps> .. wQ <eps>`` (Kaldi's NormalizeEps), 1-D int64 (2Q+1,)."""
    normalized = torch.zeros(2 * words.numel() + 1, dtype=torch.int64)
    normalized[1::2] = words
    return normalized


@dataclass(frozen=True)
class _Stats:
    """gamma and times per bin: ``gamma[q, j]`` is the posterior of ``bin_words[q, j]``."""

    bin_keys: Tensor  # (B,) int64 bin * (max word + 1) + word, sorted
    gamma: Tensor  # (B,) float64
    tau_begin: Tensor  # (B,) float64 sums of time * posterior
    tau_end: Tensor
    word_base: int
    bayes_risk: float


def _costs(graph: WordGraph, arcs: Tensor, previous: Tensor, reference: Tensor):
    """Kaldi's a1, a2 (per arc and position 1..Q) and the cumulative insertion cost."""
    words = graph.words[arcs]  # (a,)
    against_eps = (words != 0).to(torch.float64) * (1.0 + DELTA)  # l(w, 0, penalize)
    substitute = (words.unsqueeze(1) != reference.unsqueeze(0)).to(torch.float64)  # (a, Q) l(w, r_q)
    a1 = previous[:, :-1] + substitute  # (a, Q) align w with r_q
    a2 = previous[:, 1:] + against_eps.unsqueeze(1)  # (a, Q) w against nothing
    first = previous[:, 0] + against_eps  # (a,) position 0
    return a1, a2, first


def _arc_rows(a1: Tensor, a2: Tensor, first: Tensor, inserted: Tensor) -> Tensor:
    """alpha'_arc(q) = min(a1, a2, alpha'_arc(q-1) + l(0, r_q)), all q at once.

    With D(q) the cumulative cost of R's words 1..q, the chain of a3 terms is
    ``D(q) + min_{j <= q} (c(j) - D(j))``, c = min(a1, a2) (c(0) = first).
    """
    direct = torch.cat([first.unsqueeze(1), torch.minimum(a1, a2)], dim=1)  # (a, Q+1)
    shifted = direct - inserted.unsqueeze(0)
    return torch.cummin(shifted, dim=1).values + inserted.unsqueeze(0)


def _forward(graph: WordGraph, reference: Tensor, inserted: Tensor, order: Tensor, splits: List[int]):
    """Figure 4: alpha'(state, q); returns it and the per-arc conditional posteriors."""
    alpha_dash = torch.zeros(graph.lattice.num_states, reference.numel() + 1,
                             dtype=torch.float64)  # (S, Q+1)
    alpha_dash[0] = inserted  # the empty path against r_1 .. r_q
    alpha = graph.alpha
    weight = alpha[graph.lattice.src] + graph.scores - alpha[graph.lattice.dst]  # (A,)
    conditional = torch.where(torch.isfinite(weight), weight.exp(), torch.zeros(1, dtype=torch.float64))
    for level in range(1, len(splits) - 1):
        arcs = order[splits[level]:splits[level + 1]]
        if arcs.numel() == 0:
            continue
        a1, a2, first = _costs(graph, arcs, alpha_dash[graph.lattice.src[arcs]], reference)
        rows = _arc_rows(a1, a2, first, inserted)  # (a, Q+1)
        alpha_dash.index_add_(0, graph.lattice.dst[arcs], conditional[arcs].unsqueeze(1) * rows)
    return alpha_dash, conditional


def _bin_statistics(graph: WordGraph, reference: Tensor) -> _Stats:
    """Figure 5 (Kaldi's AccStats): bin posteriors gamma and time sums."""
    inserted = torch.cat([torch.zeros(1, dtype=torch.float64),
                          torch.cumsum((reference != 0).to(torch.float64), 0)])  # (Q+1,) D(q)
    order, splits = level_schedule(graph.levels, graph.lattice.dst)
    alpha_dash, conditional = _forward(graph, reference, inserted, order, splits)
    final = graph.lattice.num_states - 1
    positions = reference.numel()  # Q
    beta_dash = torch.zeros_like(alpha_dash)
    beta_dash[final, positions] = 1.0
    collected: List[Tuple[Tensor, Tensor, Tensor, Tensor]] = []
    src, dst, times = graph.lattice.src, graph.lattice.dst, graph.times
    for level in range(len(splits) - 2, 0, -1):
        arcs = order[splits[level]:splits[level + 1]]
        if arcs.numel() == 0:
            continue
        a1, a2, first = _costs(graph, arcs, alpha_dash[src[arcs]], reference)
        rows = _arc_rows(a1, a2, first, inserted)  # (a, Q+1)
        a3 = rows[:, :-1] + (inserted[1:] - inserted[:-1]).unsqueeze(0)  # (a, Q)
        choice = torch.where((a1 <= a2) & (a1 <= a3), 1, torch.where(a2 <= a3, 2, 3))  # (a, Q)
        beta_arc = _segmented_suffix_sums(conditional[arcs].unsqueeze(1) * beta_dash[dst[arcs]],
                                          choice == 3)  # (a, Q+1)
        to_source = torch.zeros_like(beta_arc)
        to_source[:, :-1] += torch.where(choice == 1, beta_arc[:, 1:], torch.zeros(1, dtype=torch.float64))
        to_source[:, 1:] += torch.where(choice == 2, beta_arc[:, 1:], torch.zeros(1, dtype=torch.float64))
        to_source[:, 0] += beta_arc[:, 0]
        beta_dash.index_add_(0, src[arcs], to_source)
        bins = torch.arange(1, positions + 1).expand_as(choice)  # (a, Q)
        words = torch.where(choice == 1, graph.words[arcs].unsqueeze(1), torch.zeros_like(choice))
        begin = torch.where(choice == 1, times[src[arcs]].unsqueeze(1), times[dst[arcs]].unsqueeze(1))
        end = times[dst[arcs]].unsqueeze(1).expand_as(begin)
        keep = choice != 2
        collected.append((bins[keep], words[keep], beta_arc[:, 1:][keep],
                          torch.stack([begin[keep], end[keep]], dim=1)))
    # Lines 29-35: the start state's remaining mass aligns with epsilon.
    start_mass = torch.flip(torch.cumsum(torch.flip(beta_dash[0, 1:], [0]), 0), [0])  # (Q,)
    start_time = times[0].expand(positions)
    collected.append((torch.arange(1, positions + 1), torch.zeros(positions, dtype=torch.int64),
                      start_mass, torch.stack([start_time, start_time], dim=1)))
    return _aggregate(collected, float(alpha_dash[final, positions]))


def _segmented_suffix_sums(values: Tensor, carry: Tensor) -> Tensor:
    """beta(q) = values(q) + [carry(q+1)] * beta(q+1) for q = Q..0, all rows at once.

    Args:
      values:
        2-D float64 tensor of shape (a, Q+1).
      carry:
        2-D bool tensor of shape (a, Q): ``carry[:, q-1]`` says beta(q) flows on
        into beta(q-1) (Kaldi's b_arc(q) == 3).

    Returns:
      2-D float64 tensor of shape (a, Q+1).
    """
    count, width = values.shape
    stop = torch.ones(count, width, dtype=torch.bool)
    stop[:, :-1] = ~carry  # beta(q) stops summing at the first j >= q with stop[j]
    index = torch.arange(width).expand(count, width)
    marks = torch.where(stop, index, torch.full_like(index, width))
    run_end = torch.flip(torch.cummin(torch.flip(marks, [1]), dim=1).values, [1])  # (a, Q+1)
    suffix = torch.flip(torch.cumsum(torch.flip(values, [1]), dim=1), [1])  # (a, Q+1)
    suffix = torch.cat([suffix, torch.zeros(count, 1, dtype=values.dtype)], dim=1)  # (a, Q+2)
    return suffix[:, :-1] - suffix.gather(1, run_end + 1)


def _aggregate(collected, bayes_risk: float) -> _Stats:
    """Sum the (bin, word, mass, times) contributions per (bin, word)."""
    bins = torch.cat([item[0] for item in collected])
    words = torch.cat([item[1] for item in collected])
    mass = torch.cat([item[2] for item in collected])
    times = torch.cat([item[3] for item in collected])
    nonzero = mass != 0  # as Kaldi's AddToMap, which ignores zero additions
    bins, words, mass, times = bins[nonzero], words[nonzero], mass[nonzero], times[nonzero]
    base = int(words.max()) + 1 if words.numel() else 1
    keys, inverse = torch.unique(bins * base + words, return_inverse=True)
    gamma = torch.zeros(keys.numel(), dtype=torch.float64).index_add_(0, inverse, mass)
    tau = torch.zeros(keys.numel(), 2, dtype=torch.float64).index_add_(0, inverse, times * mass.unsqueeze(1))
    return _Stats(keys, gamma, tau[:, 0], tau[:, 1], base, bayes_risk)


def _best_words(stats: _Stats, reference: Tensor) -> Tensor:
    """The most likely word of each bin 1..Q, ties to the current word, then the smaller id.

    Returns:
      1-D int64 tensor of shape (Q,), indexed like ``reference``.
    """
    bins, words = stats.bin_keys // stats.word_base, stats.bin_keys % stats.word_base  # (B,)
    other = (reference[bins - 1] != words).to(torch.int64)  # 0 for the current word
    order = torch.arange(bins.numel())
    for key in (words, other, -stats.gamma, bins):  # stable sorts: the last key is the primary
        order = order[torch.sort(key[order], stable=True).indices]
    first = torch.ones(order.numel(), dtype=torch.bool)
    first[1:] = bins[order][1:] != bins[order][:-1]  # the first entry of each bin after sorting
    best = torch.zeros(reference.numel(), dtype=torch.int64)
    best[bins[order][first] - 1] = words[order][first]
    return best


def _result(stats: _Stats, chosen: Tensor, with_times: bool, rounds: int) -> MbrResult:
    """Consensus words, confidences, times and bins from the last statistics."""
    bins, words = stats.bin_keys // stats.word_base, stats.bin_keys % stats.word_base
    table: List[List[Tuple[int, float]]] = [[] for _ in range(chosen.numel())]
    for bin_index, word, mass in zip(bins.tolist(), words.tolist(), stats.gamma.tolist()):
        table[bin_index - 1].append((word, mass))  # entries of the network, not arcs
    for entries in table:
        entries.sort(key=lambda item: (-item[1], item[0]))
    positions = (chosen != 0).nonzero().flatten()  # (W,) bins of the consensus words
    keys = (positions + 1) * stats.word_base + chosen[positions]
    where = torch.searchsorted(stats.bin_keys, keys)
    confidences = stats.gamma[where]
    word_times = None
    if with_times:
        word_times = torch.stack([stats.tau_begin[where], stats.tau_end[where]], 1) / confidences.unsqueeze(1)
        word_times = _resolve_overlaps(word_times)
    return MbrResult(chosen[positions], confidences, table, stats.bayes_risk, word_times, rounds)


def _resolve_overlaps(times: Tensor) -> Tensor:
    """Kaldi's MbrDecode fix: an overlap of consecutive words is split by their durations."""
    spans = times.tolist()
    for i in range(1, len(spans)):  # one step per output word
        if spans[i - 1][1] > spans[i][0]:
            previous_right = spans[i - 2][1] if i > 1 else 0.0
            left = max(previous_right, min(spans[i - 1][0], spans[i][0]))
            right = max(spans[i - 1][1], spans[i][1])
            first = spans[i - 1][1] - spans[i - 1][0]
            second = spans[i][1] - spans[i][0]
            middle = left + (right - left) * first / (first + second) if first > 0 else left
            spans[i - 1] = [left, middle]
            spans[i] = [middle, right]
    return torch.tensor(spans, dtype=torch.float64).reshape(-1, 2)
