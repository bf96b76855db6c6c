"""MBR decoding (Kaldi lattice-mbr-decode, Xu et al. 2011) on hand-built lattices."""
import dataclasses
import math
import random

import pytest
import torch

from lattice_builders import make_lattice, random_lattice
from rescorer.algorithms.single import best_path
from rescorer.algorithms.mbr import arc_posteriors, mbr_decode
from rescorer.errors import ConfigError
from rescorer.lattice.batch import LatticeBatch

A, B, C, D, X = 1, 2, 3, 4, 5
LOG = math.log


def _paths(lattice, scores):
    """Every (words, probability) of a small lattice, by brute force."""
    found = []

    def walk(state, words, score):
        if state == lattice.num_states - 1:
            found.append((tuple(words), score))
            return
        for arc in (lattice.src == state).nonzero().flatten().tolist():
            walk(int(lattice.dst[arc]), words + lattice.arc_words(arc), score + float(scores[arc]))

    walk(0, [], 0.0)
    total = math.log(sum(math.exp(score) for _, score in found))
    return [(words, math.exp(score - total)) for words, score in found]


def _levenshtein(first, second):
    row = list(range(len(second) + 1))
    for i, a in enumerate(first, 1):
        previous, row[0] = row[0], i
        for j, b in enumerate(second, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (a != b))
    return row[-1]


def test_consensus_beats_the_viterbi_path():
    # Paths: "a b" 0.4 (the Viterbi path), "c b" 0.3, "c d" 0.3.
    # Bin 1: a 0.4, c 0.6 -> c; bin 2: b 0.7, d 0.3 -> b. Consensus "c b", confidences 0.6, 0.7.
    # Risk: Lev to "a b" 1 * 0.4 + to "c d" 1 * 0.3 = 0.7 (Viterbi "a b": 0.3 + 2 * 0.3 = 0.9).
    lattice, scores = make_lattice([
        (0, 1, [A], LOG(0.4)), (1, 4, [B], 0.0),
        (0, 2, [C], LOG(0.3)), (2, 4, [B], 0.0),
        (0, 3, [C], LOG(0.3)), (3, 4, [D], 0.0),
        (4, 5, [], 0.0),
    ])
    _, viterbi = best_path(lattice, scores)
    assert viterbi.tolist() == [0, 1, 6]
    result = mbr_decode(lattice, scores)
    assert result.word_ids.tolist() == [C, B]
    torch.testing.assert_close(result.confidences, torch.tensor([0.6, 0.7], dtype=torch.float64))
    assert result.bayes_risk == pytest.approx(0.7, abs=1e-6)  # float32 arc scores
    assert result.rounds == 2  # round 1 starts from "a b" and moves to "c b"; round 2 confirms
    # The confusion network: eps | c .6, a .4 | eps | b .7, d .3 | eps
    assert [[w for w, _ in entries] for entries in result.bins] == [[0], [C, A], [0], [B, D], [0]]
    assert result.bins[3][1][1] == pytest.approx(0.3)


def test_deletions_and_insertions_align_with_epsilon():
    # Paths: "a b c" 0.5, "a c" 0.3 (b deleted), "a x c" 0.2.
    # Bins of "a b c": a 1.0 | b .5, eps .3, x .2 | c 1.0; risk 0.3 + 0.2 = 0.5.
    lattice, scores = make_lattice([
        (0, 1, [A], 0.0),
        (1, 2, [B], LOG(0.5)), (2, 3, [C], 0.0),
        (1, 3, [C], LOG(0.3)),
        (1, 4, [X], LOG(0.2)), (4, 3, [C], 0.0),
        (3, 5, [], 0.0),
    ])
    result = mbr_decode(lattice, scores)
    assert result.word_ids.tolist() == [A, B, C]
    torch.testing.assert_close(result.confidences, torch.tensor([1.0, 0.5, 1.0], dtype=torch.float64))
    assert dict(result.bins[3]) == pytest.approx({B: 0.5, 0: 0.3, X: 0.2})
    assert result.bayes_risk == pytest.approx(0.5, abs=1e-4)  # 1 + delta costs are within 1e-5 each


def test_sausage_risk_equals_brute_force_expected_edit_distance():
    # A confusion-network-shaped lattice: every path aligns position by position, so the
    # recursion is exact: risk = sum over paths of P(path) * Lev(path, consensus).
    rng = random.Random(5)
    arcs, state = [], 0
    for _ in range(4):
        for word in rng.sample([A, B, C, D, X], 3):
            arcs.append((state, state + 1, [word], math.log(rng.uniform(0.1, 1.0))))
        state += 1
    arcs.append((state, state + 1, [], 0.0))
    lattice, scores = make_lattice(arcs)
    result = mbr_decode(lattice, scores)
    expected = sum(p * _levenshtein(words, result.word_ids.tolist()) for words, p in _paths(lattice, scores))
    assert result.bayes_risk == pytest.approx(expected, abs=1e-6)
    # Each consensus word is its bin's most likely word.
    for q, word in enumerate(result.word_ids.tolist()):
        assert result.bins[2 * q + 1][0][0] == word


@pytest.mark.parametrize("seed", range(20))
def test_dominant_path_gives_the_viterbi_words(seed):
    rng = random.Random(seed)
    lattice, scores = random_lattice(rng, max_states=8, vocab=4, final_words=True)
    _, path = best_path(lattice, scores)
    boosted = scores.clone()
    boosted[path] += 40.0  # the Viterbi path takes all the posterior mass
    words = [w for arc in path.tolist() for w in lattice.arc_words(arc)]
    result = mbr_decode(lattice, boosted)
    assert result.word_ids.tolist() == words
    assert bool((result.confidences > 1 - 1e-9).all())


@pytest.mark.parametrize("seed", range(20))
def test_bins_are_distributions(seed):
    # Kaldi's check (sausages.cc, "line 35"): every bin's posteriors sum to one.
    rng = random.Random(100 + seed)
    lattice, scores = random_lattice(rng, max_states=9, vocab=3, final_words=True)
    result = mbr_decode(lattice, scores, scale=0.7)
    for entries in result.bins:
        assert sum(mass for _, mass in entries) == pytest.approx(1.0, abs=1e-9)
    assert result.confidences.numel() == result.word_ids.numel()


def test_multi_word_arcs_equal_their_chains():
    chained, chained_scores = make_lattice([
        (0, 1, [A], LOG(0.6)), (1, 2, [B], 0.0), (0, 2, [C], LOG(0.4)), (2, 3, [], 0.0)])
    packed, packed_scores = make_lattice([(0, 1, [A, B], LOG(0.6)), (0, 1, [C], LOG(0.4)), (1, 2, [], 0.0)])
    first, second = mbr_decode(chained, chained_scores), mbr_decode(packed, packed_scores)
    assert first.word_ids.tolist() == second.word_ids.tolist() == [A, B]
    torch.testing.assert_close(first.confidences, second.confidences)
    assert first.bayes_risk == pytest.approx(second.bayes_risk)


def test_word_times_are_posterior_weighted():
    # Bin 1: a (0 -> 1, ends at 1.0) 0.5 and a (0 -> 2, ends at 1.2) 0.5: a spans 0 .. 1.1.
    # Bin 2: b from 1.0 or 1.2 (mean 1.1) to 2.0.
    lattice, scores = make_lattice([
        (0, 1, [A], LOG(0.5)), (0, 2, [A], LOG(0.5)), (1, 3, [B], 0.0), (2, 3, [B], 0.0), (3, 4, [], 0.0)])
    times = torch.tensor([0.0, 1.0, 1.2, 2.0, 2.0])
    result = mbr_decode(lattice, scores, state_times=times)
    assert result.word_ids.tolist() == [A, B]
    torch.testing.assert_close(result.word_times, torch.tensor([[0.0, 1.1], [1.1, 2.0]], dtype=torch.float64))
    assert mbr_decode(lattice, scores).word_times is None


def test_arc_posteriors_sum_to_one_across_a_cut():
    lattice, scores = make_lattice([
        (0, 1, [A], LOG(0.4)), (1, 4, [B], 0.0), (0, 2, [C], LOG(0.3)), (2, 4, [B], 0.0),
        (0, 3, [C], LOG(0.3)), (3, 4, [D], 0.0), (4, 5, [], 0.0)])
    posteriors = arc_posteriors(lattice, scores)
    torch.testing.assert_close(posteriors, torch.tensor([0.4, 0.4, 0.3, 0.3, 0.3, 0.3, 1.0], dtype=torch.float64))
    flat = arc_posteriors(lattice, scores, scale=0.0)  # scale 0: every path equally likely
    torch.testing.assert_close(flat[:2], torch.tensor([1 / 3, 1 / 3], dtype=torch.float64))


def test_bad_scale_is_a_config_error():
    lattice, scores = make_lattice([(0, 1, [A], 0.0), (1, 2, [], 0.0)])
    with pytest.raises(ConfigError, match="scale"):
        mbr_decode(lattice, scores, scale=0.0)


def _sequential_statistics(graph, reference):
    """The paper's Figures 4 and 5 with plain loops, state by state (reference only).

    Returns (gamma as {(bin, word): mass}, risk); bins are 1-based as in the paper.
    """
    from rescorer.algorithms.mbr_stats import DELTA

    lattice, levels = graph.batch.lattice(0), graph.schedule.levels
    order = sorted(range(lattice.num_states), key=lambda s: (int(levels[s]), s))
    src, dst = lattice.src.tolist(), lattice.dst.tolist()
    words, scores, alpha = graph.words.tolist(), graph.scores.tolist(), graph.alpha.tolist()
    r = [None] + reference.tolist()
    size = len(reference)
    into = {s: [a for a in range(len(src)) if dst[a] == s] for s in order}

    def cost(a, b, penalize=False):
        return 0.0 if a == b else (1.0 + DELTA if penalize else 1.0)

    def arc_row(arc, alpha_dash):
        row, back = [0.0] * (size + 1), [0] * (size + 1)
        row[0] = alpha_dash[src[arc]][0] + cost(words[arc], 0, True)
        for q in range(1, size + 1):
            a1 = alpha_dash[src[arc]][q - 1] + cost(words[arc], r[q])
            a2 = alpha_dash[src[arc]][q] + cost(words[arc], 0, True)
            a3 = row[q - 1] + cost(0, r[q])
            row[q] = min(a1, a2, a3)
            back[q] = 1 if a1 <= a2 and a1 <= a3 else (2 if a2 <= a3 else 3)
        return row, back

    alpha_dash = {s: [0.0] * (size + 1) for s in order}
    for q in range(1, size + 1):
        alpha_dash[0][q] = alpha_dash[0][q - 1] + cost(0, r[q])
    for n in order[1:]:
        for arc in into[n]:
            post = math.exp(alpha[src[arc]] + scores[arc] - alpha[n])
            row, _ = arc_row(arc, alpha_dash)
            for q in range(size + 1):
                alpha_dash[n][q] += post * row[q]
    final = lattice.num_states - 1
    beta_dash = {s: [0.0] * (size + 1) for s in order}
    beta_dash[final][size] = 1.0
    gamma = {}
    for n in reversed(order[1:]):
        for arc in into[n]:
            post = math.exp(alpha[src[arc]] + scores[arc] - alpha[n])
            _, back = arc_row(arc, alpha_dash)
            beta_arc = [0.0] * (size + 1)
            for q in range(size, 0, -1):
                beta_arc[q] += post * beta_dash[n][q]
                if back[q] == 1:
                    beta_dash[src[arc]][q - 1] += beta_arc[q]
                    gamma[(q, words[arc])] = gamma.get((q, words[arc]), 0.0) + beta_arc[q]
                elif back[q] == 2:
                    beta_dash[src[arc]][q] += beta_arc[q]
                else:
                    beta_arc[q - 1] += beta_arc[q]
                    gamma[(q, 0)] = gamma.get((q, 0), 0.0) + beta_arc[q]
            beta_arc[0] += post * beta_dash[n][0]
            beta_dash[src[arc]][0] += beta_arc[0]
    carried = 0.0
    for q in range(size, 0, -1):
        carried += beta_dash[0][q]
        gamma[(q, 0)] = gamma.get((q, 0), 0.0) + carried
    return {key: value for key, value in gamma.items() if value != 0}, alpha_dash[final][size]


@pytest.mark.parametrize("seed", range(15))
def test_vectorised_statistics_equal_the_sequential_recursion(seed):
    from rescorer.algorithms.mbr import _with_epsilons
    from rescorer.algorithms.mbr_graph import word_graph
    from rescorer.algorithms.mbr_stats import statistics

    rng = random.Random(300 + seed)
    lattice, scores = random_lattice(rng, max_states=9, vocab=3, final_words=True)
    graph = word_graph(LatticeBatch.from_lattices([lattice]), scores.double() * 0.8)
    reference = _with_epsilons(torch.tensor([rng.randint(1, 3) for _ in range(rng.randint(0, 4))],
                                            dtype=torch.int64))
    stats = statistics(graph, {0: reference})[0]
    expected, risk = _sequential_statistics(graph, reference)
    got = {(int(b), int(w)): float(v) for b, w, v in zip(stats.bins, stats.words, stats.gamma)}
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-12)
    assert stats.bayes_risk == pytest.approx(risk, abs=1e-12)


def test_a_lattice_without_words_gives_an_empty_hypothesis():
    lattice, scores = make_lattice([(0, 1, [], -1.0), (0, 1, [], -2.0), (1, 2, [], 0.0)])
    result = mbr_decode(lattice, scores, state_times=torch.tensor([0.0, 1.0, 1.0]))
    assert result.word_ids.tolist() == [] and result.confidences.numel() == 0
    assert result.bins == [[(0, pytest.approx(1.0))]]
    assert result.word_times.shape == (0, 2) and result.bayes_risk == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_a_lattice_decodes_the_same_alone_and_inside_a_batch(seed):
    # Batch invariance: padding the hypotheses to the longest one and sweeping the batch's
    # levels together must not change a single float of any lattice's result.
    from rescorer.algorithms.mbr import mbr_decode_batch

    rng = random.Random(500 + seed)
    pairs = [random_lattice(rng, max_states=rng.randint(3, 10), vocab=4, final_words=True)
             for _ in range(5)]
    lattices = [dataclasses.replace(lattice, utt_id=f"u{index}") for index, (lattice, _) in enumerate(pairs)]
    times = [torch.cumsum(torch.rand(lattice.num_states, generator=torch.Generator().manual_seed(index)), 0)
             for index, lattice in enumerate(lattices)]
    batch = LatticeBatch.from_lattices(lattices, state_times=times)
    scores = torch.cat([scores for _, scores in pairs])
    together = mbr_decode_batch(batch, scores, scale=0.6, state_times=batch.state_times)
    for lattice, (_, own), time, result in zip(lattices, pairs, times, together):
        alone = mbr_decode(lattice, own, scale=0.6, state_times=time)
        assert result.word_ids.tolist() == alone.word_ids.tolist()
        assert torch.equal(result.confidences, alone.confidences)
        assert torch.equal(result.word_times, alone.word_times)
        assert result.bins == alone.bins and result.bayes_risk == alone.bayes_risk
        assert result.rounds == alone.rounds


def test_nan_state_times_give_no_word_times_for_that_lattice_only():
    from rescorer.algorithms.mbr import mbr_decode_batch

    first, first_scores = make_lattice([(0, 1, [A], 0.0), (1, 2, [], 0.0)], utt_id="a")
    second, second_scores = make_lattice([(0, 1, [B], 0.0), (1, 2, [], 0.0)], utt_id="b")
    batch = LatticeBatch.from_lattices([first, second], state_times=[
        torch.tensor([0.0, 0.5, 0.5]), torch.tensor([0.0, float("nan"), 1.0])])
    timed, untimed = mbr_decode_batch(batch, torch.cat([first_scores, second_scores]),
                                      state_times=batch.state_times)
    assert timed.word_times.tolist() == [[0.0, 0.5]] and untimed.word_times is None
    assert untimed.word_ids.tolist() == [B]


def test_a_batch_over_the_cell_limit_is_decoded_in_halves_with_the_same_results(monkeypatch):
    from rescorer.algorithms import mbr
    from rescorer.algorithms.mbr import mbr_decode_batch

    rng = random.Random(77)
    pairs = [random_lattice(rng, max_states=8, vocab=4, final_words=True) for _ in range(5)]
    lattices = [dataclasses.replace(lattice, utt_id=f"u{index}") for index, (lattice, _) in enumerate(pairs)]
    times = [torch.arange(lattice.num_states, dtype=torch.float64) for lattice in lattices]
    batch = LatticeBatch.from_lattices(lattices, state_times=times)
    scores = torch.cat([scores for _, scores in pairs])
    whole = mbr_decode_batch(batch, scores, 0.7, batch.state_times)
    calls = []
    original = mbr._halves
    monkeypatch.setattr(mbr, "_halves", lambda *args: calls.append(1) or original(*args))
    monkeypatch.setattr(mbr, "MAX_CELLS", 1)
    halved = mbr_decode_batch(batch, scores, 0.7, batch.state_times)
    assert len(calls) == 4  # 5 -> 2 + 3 -> 1 + 1 + 1 + 2 -> 1 + 1
    for first, second in zip(whole, halved):
        assert first.word_ids.tolist() == second.word_ids.tolist() and first.bins == second.bins
        assert torch.equal(first.word_times, second.word_times)
