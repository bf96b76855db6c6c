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

Batched: ``mbr_decode_batch`` decodes every lattice of a ``LatticeBatch``
together. The word graph, the Viterbi start and each round's statistics
(``mbr_stats``) run once for all lattices still changing, level by level of
the batch, so the number of torch calls grows with the deepest lattice and
the most rounds, not with the number of lattices; only the small per-lattice
steps (the best word of each bin, the confusion network's table) are per
lattice. ``mbr_decode`` is the one-lattice view of the same code.
"""
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import shortest_paths
from rescorer.algorithms.mbr_graph import word_graph
from rescorer.algorithms.mbr_stats import BinStats, statistics
from rescorer.algorithms.single import backward_scores, forward_scores
from rescorer.errors import ConfigError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice

MAX_ROUNDS = 100
MAX_CELLS = 1 << 24  # arcs x hypothesis positions of one batch's recursion (uint8 back-pointers;
# the (states, positions) float64 matrices stay under 128 MiB each); a bigger batch is halved


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
        when no state times were given (or some of the lattice's were NaN).
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
        Ignored (kept for callers of the per-lattice engine).

    Returns:
      1-D float64 tensor of shape (A,), P(path uses arc | lattice), 0 on arcs
      off every complete path.
    """
    scores = arc_scores.to(torch.float64) * scale
    alpha = forward_scores(lattice, scores, log_semiring=True)
    beta = backward_scores(lattice, scores, log_semiring=True)
    total = alpha[lattice.num_states - 1]
    log_posterior = alpha[lattice.src] + scores + beta[lattice.dst] - total  # (A,)
    return torch.where(torch.isfinite(log_posterior), log_posterior.exp(), torch.zeros(1, dtype=torch.float64))


def mbr_decode(lattice: Lattice, arc_scores: Tensor, scale: float = 1.0,
               state_times: Optional[Tensor] = None) -> MbrResult:
    """The minimum-Bayes-risk consensus of one lattice (``mbr_decode_batch`` of a batch of one).

    Args:
      lattice:
        The lattice; arcs may carry any number of words (split into chains).
      arc_scores:
        1-D float tensor of shape (A,), total log-scores (higher is better).
      scale:
        Posterior scale (> 0) applied to the scores.
      state_times:
        Optional 1-D float tensor of shape (S,), the time of each state (where
        the words of the arcs into it end), for ``word_times``.

    Raises:
      ConfigError: ``scale`` is not > 0.
      LatticeError: for an empty or cyclic lattice, or one without a path.
    """
    batch = LatticeBatch.from_lattices([lattice], state_times=None if state_times is None else [state_times])
    return mbr_decode_batch(batch, arc_scores, scale, batch.state_times)[0]


def mbr_decode_batch(batch: LatticeBatch, arc_scores: Tensor, scale: float = 1.0,
                     state_times: Optional[Tensor] = None) -> List[MbrResult]:
    """The minimum-Bayes-risk consensus of every lattice of a batch (module docstring).

    Args:
      batch:
        U lattices; arcs may carry any number of words (split into chains).
      arc_scores:
        1-D float tensor of shape (A,), total log-scores (higher is better).
      scale:
        Posterior scale (> 0): P(path) is proportional to exp(scale * score).
        It does not change the Viterbi path the decoding starts from.
      state_times:
        Optional 1-D float tensor of shape (S,), the time of each state: an
        arc's word spans the times of its source and destination states
        (Kaldi's convention). NaN marks unknown times: a lattice with any NaN
        state time gets ``word_times`` None.

    Returns:
      U ``MbrResult``, in batch order.

    Raises:
      ConfigError: ``scale`` is not > 0.
      LatticeError: for an empty or cyclic lattice, or one without a path.
    """
    if not scale > 0:
        raise ConfigError(f"the posterior scale must be > 0 (got {scale})")
    timed = _timed(batch, state_times)
    times = None if state_times is None else torch.nan_to_num(state_times.to(torch.float64), nan=0.0)
    graph = word_graph(batch, arc_scores.to(torch.float64) * scale, times)
    _, splits, path = shortest_paths(graph.batch, graph.scores, graph.schedule)
    bounds = splits.tolist()
    pending: Dict[int, Tensor] = {}
    for utt in range(batch.num_utts):
        viterbi = graph.words[path[bounds[utt]:bounds[utt + 1]]]
        pending[utt] = _with_epsilons(viterbi[viterbi != 0].cpu())
    width = max((reference.numel() for reference in pending.values()), default=0)
    if batch.num_utts > 1 and graph.batch.num_arcs * (width + 1) > MAX_CELLS:
        return _halves(batch, arc_scores, scale, state_times)  # the same results (batch-invariant)
    results: Dict[int, MbrResult] = {}
    for rounds in range(1, MAX_ROUNDS + 1):
        stats = statistics(graph, pending)
        for utt, reference in list(pending.items()):
            chosen = _best_words(stats[utt], reference)  # (Q,) the best word of every bin
            if torch.equal(chosen, reference) or rounds == MAX_ROUNDS:
                results[utt] = _result(stats[utt], chosen, timed[utt], rounds)
                del pending[utt]
            else:
                pending[utt] = _with_epsilons(chosen[chosen != 0])
        if not pending:
            break
    return [results[utt] for utt in range(batch.num_utts)]


def _halves(batch: LatticeBatch, arc_scores: Tensor, scale: float,
            state_times: Optional[Tensor]) -> List[MbrResult]:
    """``mbr_decode_batch`` of each half of the batch, joined."""
    carried = replace(batch, state_times=state_times)
    results: List[MbrResult] = []
    middle = batch.num_utts // 2
    for indices in (list(range(middle)), list(range(middle, batch.num_utts))):
        part = carried.select(indices)
        first, last = int(batch.arc_splits[indices[0]]), int(batch.arc_splits[indices[-1] + 1])
        results += mbr_decode_batch(part, arc_scores[first:last], scale, part.state_times)
    return results


def _timed(batch: LatticeBatch, state_times: Optional[Tensor]) -> List[bool]:
    """Per lattice, whether all its state times are known (finite)."""
    if state_times is None:
        return [False] * batch.num_utts
    unknown = torch.zeros(batch.num_utts, dtype=torch.int64, device=batch.device).index_add_(
        0, batch.state_utt, (~torch.isfinite(state_times)).to(torch.int64))  # (U,)
    return (unknown == 0).tolist()


def _with_epsilons(words: Tensor) -> Tensor:
    """``<eps> w1 <eps> .. wQ <eps>`` (Kaldi's NormalizeEps), 1-D int64 (2Q+1,), on the CPU."""
    normalized = torch.zeros(2 * words.numel() + 1, dtype=torch.int64)
    normalized[1::2] = words.cpu()
    return normalized


def _best_words(stats: BinStats, reference: Tensor) -> Tensor:
    """The most likely word of each bin 1..Q, ties to the current word, then the smaller id.

    Returns:
      1-D int64 tensor of shape (Q,) on the CPU, indexed like ``reference``.
    """
    bins, words, gamma = stats.bins.cpu(), stats.words.cpu(), stats.gamma.cpu()  # (B,)
    other = (reference[bins - 1] != words).to(torch.int64)  # 0 for the current word
    order = torch.arange(bins.numel())
    for key in (words, other, -gamma, bins):  # stable sorts: the last key is the primary
        order = order[torch.sort(key[order], stable=True).indices]
    first = torch.ones(order.numel(), dtype=torch.bool)
    first[1:] = bins[order][1:] != bins[order][:-1]  # the first entry of each bin after sorting
    best = torch.zeros(reference.numel(), dtype=torch.int64)
    best[bins[order][first] - 1] = words[order][first]
    return best


def _result(stats: BinStats, chosen: Tensor, with_times: bool, rounds: int) -> MbrResult:
    """Consensus words, confidences, times and bins from the last statistics."""
    bins, words, gamma, tau = stats.bins.cpu(), stats.words.cpu(), stats.gamma.cpu(), stats.tau.cpu()
    table: List[List[Tuple[int, float]]] = [[] for _ in range(chosen.numel())]
    for bin_index, word, mass in zip(bins.tolist(), words.tolist(), gamma.tolist()):
        table[bin_index - 1].append((word, mass))  # entries of the network, not arcs
    for entries in table:
        entries.sort(key=lambda item: (-item[1], item[0]))
    base = int(words.max()) + 1 if words.numel() else 1
    positions = (chosen != 0).nonzero().flatten()  # (W,) bins of the consensus words
    where = torch.searchsorted(bins * base + words, (positions + 1) * base + chosen[positions])
    confidences = gamma[where]
    word_times = None
    if with_times:
        word_times = _resolve_overlaps(tau[where] / confidences.unsqueeze(1))
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
