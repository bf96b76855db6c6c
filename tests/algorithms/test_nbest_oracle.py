"""Distinct n-best and lattice oracle against brute force over all paths."""
import random

import pytest

import torch

from lattice_builders import (DEVICES, all_paths, arc_range, batch_of, make_lattice, mixed_batch,
                              path_score, path_words, random_lattice)
from rescorer.algorithms import nbest, oracle
from rescorer.algorithms.topsort import LevelSchedule


def nbest_distinct(lattice, scores, n, **options):
    """The n-best of one lattice alone (a batch of one); raises its failure."""
    (ranked,), failures = nbest.nbest_distinct(LevelSchedule.of(batch_of(lattice)), scores, n,
                                               **options)
    assert not ranked or not failures
    if failures:
        raise failures[0]
    return ranked


def oracle_errors(lattice, reference):
    """(errors, path) of one lattice alone."""
    errors, (path,) = oracle.oracle_errors(LevelSchedule.of(batch_of(lattice)), [reference],
                                           with_paths=True)
    return int(errors[0]), path

# 0 -a:-1---> 1 -b:-1----> 3 -final:0-> 4    paths: 0 2 6  a b  -2.0
# 0 -a:-2.1-> 2 -<eps>:0-> 3                         0 4 6  a e  -1.5  <- best
#             1 -e:-0.5--> 3                         0 5 6  a    -2.25
#             1 -<eps>:-1.25-> 3                     1 3 6  a    -2.1  <- best "a"
# distinct, best first: [a e] -1.5, [a b] -2.0, [a] -2.1 (arcs 1 3 6)
NBEST_ARCS = [
    (0, 1, [1], -1.0),  # 0: a
    (0, 2, [1], -2.1),  # 1: a
    (1, 3, [2], -1.0),  # 2: b
    (2, 3, [], 0.0),  # 3: eps
    (1, 3, [5], -0.5),  # 4: e
    (1, 3, [], -1.25),  # 5: eps
    (3, 4, [], 0.0),  # 6: final
]


def test_hand_lattice_nbest():
    lattice, scores = make_lattice(NBEST_ARCS)
    hypotheses = nbest_distinct(lattice, scores, 10)
    assert [(h.word_ids, h.score) for h in hypotheses] == [
        ((1, 5), -1.5), ((1, 2), -2.0), ((1,), pytest.approx(-2.1, abs=1e-6))]
    assert [h.arc_ids.tolist() for h in hypotheses] == [[0, 4, 6], [0, 2, 6], [1, 3, 6]]
    assert len(nbest_distinct(lattice, scores, 2)) == 2


def test_random_dags_nbest_against_brute_force():
    rng = random.Random(7)
    for _ in range(300):
        lattice, scores = random_lattice(rng, vocab=3)
        best = {}
        for path in all_paths(lattice):
            words, score = path_words(lattice, path), path_score(path, scores)
            best[words] = max(best.get(words, float("-inf")), score)
        expected = sorted(best.values(), reverse=True)
        n = rng.randint(1, 8)
        hypotheses = nbest_distinct(lattice, scores, n)
        assert [h.score for h in hypotheses] == pytest.approx(expected[:n], abs=1e-9)
        assert len({h.word_ids for h in hypotheses}) == len(hypotheses)
        for h in hypotheses:
            assert h.score == pytest.approx(best[h.word_ids], abs=1e-9)
            assert path_words(lattice, h.arc_ids.tolist()) == h.word_ids
            assert path_score(h.arc_ids.tolist(), scores) == pytest.approx(h.score, abs=1e-9)


def test_nbest_pop_limit_fails_only_that_lattice():
    rng = random.Random(3)
    big, big_scores = random_lattice(rng)
    while big.num_arcs < 6:
        big, big_scores = random_lattice(rng)
    small, small_scores = make_lattice([(0, 1, [1], 0.0), (1, 2, [], 0.0)])
    schedule = LevelSchedule.of(batch_of(small, big))
    ranked, failures = nbest.nbest_distinct(schedule, torch.cat([small_scores, big_scores]), 5,
                                            max_pops=3)
    assert list(failures) == [1] and ranked[1] == []
    assert "more than 3 search items" in failures[1].message
    assert failures[1].utt_id == f"{big.utt_id}-1"
    assert [(h.word_ids, h.score) for h in ranked[0]] == [((1,), 0.0)]


def test_hand_lattice_oracle():
    # Paths: "a e", "a b", "a"; reference "a b c": best "a b", 1 deletion.
    lattice, _ = make_lattice(NBEST_ARCS)
    errors, arcs = oracle_errors(lattice, [1, 2, 3])
    assert errors == 1
    assert arcs.tolist() == [0, 2, 6]
    assert oracle_errors(lattice, [])[0] == 1  # "a" is one insertion
    assert oracle_errors(lattice, [7, 7, 7, 7])[0] == 4


def _edit_distance(hypothesis, reference):
    """Levenshtein distance by the textbook full-table DP (kaldialign is not in .venv-k2)."""
    table = [[i + j if i * j == 0 else 0 for j in range(len(reference) + 1)]
             for i in range(len(hypothesis) + 1)]
    for i in range(1, len(hypothesis) + 1):
        for j in range(1, len(reference) + 1):
            table[i][j] = min(table[i - 1][j] + 1, table[i][j - 1] + 1,
                              table[i - 1][j - 1] + (hypothesis[i - 1] != reference[j - 1]))
    return table[-1][-1]


def test_random_dags_oracle_against_brute_force():
    rng = random.Random(11)
    for _ in range(300):
        lattice, _ = random_lattice(rng, vocab=3)
        reference = [rng.randint(1, 4) for _ in range(rng.randint(0, 6))]
        distances = {}
        for path in all_paths(lattice):
            distances[tuple(path)] = _edit_distance(path_words(lattice, path), reference)
        errors, arcs = oracle_errors(lattice, reference)
        assert errors == min(distances.values())
        assert distances[tuple(arcs.tolist())] == errors


@pytest.mark.parametrize("device", DEVICES)
def test_batch_invariance(device):
    """n-best and oracle of a lattice alone and inside 64 mixed ones agree exactly."""
    rng = random.Random(21)
    for _ in range(5):
        lattice, scores = random_lattice(rng, vocab=3)
        mixed, index = mixed_batch(rng, lattice, vocab=3)
        one = LevelSchedule.of(batch_of(lattice, device=device))
        many = LevelSchedule.of(mixed.to(torch.device(device)))
        offset = arc_range(mixed, index).start
        (alone,), _ = nbest.nbest_distinct(one, scores.to(device), 6)
        inside, _ = nbest.nbest_distinct(many, mixed.am_scores.to(device), 6)
        assert [(h.score, h.word_ids, h.arc_ids.tolist()) for h in alone] == [
            (h.score, h.word_ids, (h.arc_ids - offset).tolist()) for h in inside[index]]
        references = [[rng.randint(1, 4) for _ in range(rng.randint(0, 6))]
                      for _ in range(mixed.num_utts)]
        errors_one, (path_one,) = oracle.oracle_errors(one, [references[index]], True)
        errors_many, paths = oracle.oracle_errors(many, references, True)
        assert int(errors_many[index]) == int(errors_one[0])
        assert (paths[index] - offset).tolist() == path_one.tolist()
        for utt in range(mixed.num_utts):  # every lattice of the batch is exact too
            alone_errors, _ = oracle.oracle_errors(
                LevelSchedule.of(batch_of(mixed.lattice(utt))), [references[utt]])
            assert int(errors_many[utt]) == int(alone_errors[0])
