"""Topological levels, Viterbi, forward/backward and total scores, pruning, on batches."""
import math
import random

import pytest
import torch

from rescorer.algorithms.best_path import (
    backward_scores, forward_scores, shortest_paths, total_scores,
)
from rescorer.algorithms.prune import connect, prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule, topological_levels
from rescorer.errors import ConfigError, LatticeError
from rescorer.lattice.fsavec import Lattice
from lattice_builders import (
    DEVICES, all_paths, arc_range, batch_of, logsumexp, make_lattice, mixed_batch, path_score,
    random_lattice,
)

# 0 -a:-1-> 1 -b:-1-> 3 -(-1):0-> 4       paths: a b   = -2.0
# 0 -c:-3-> 2 -d:0--> 3                           c d   = -3.0
#           1 -e:-0.5-> 2                         a e d = -1.5  <- best
HAND_ARCS = [
    (0, 1, [1], -1.0),  # arc 0: a
    (0, 2, [3], -3.0),  # arc 1: c
    (1, 3, [2], -1.0),  # arc 2: b
    (1, 2, [5], -0.5),  # arc 3: e
    (2, 3, [4], 0.0),  # arc 4: d
    (3, 4, [], 0.0),  # arc 5: final
]


@pytest.mark.parametrize("device", DEVICES)
def test_hand_lattice_levels_best_path_and_total(device):
    lattice, scores = make_lattice(HAND_ARCS)
    batch, scores = batch_of(lattice, device=device), scores.to(device)
    levels, problems = topological_levels(batch)
    assert levels.tolist() == [0, 1, 2, 3, 4] and problems == {}
    best, splits, arcs = shortest_paths(batch, scores)
    assert best.dtype == torch.float64 and best.tolist() == [-1.5]
    assert splits.tolist() == [0, 4] and arcs.tolist() == [0, 3, 4, 5]
    expected = math.log(math.exp(-2.0) + math.exp(-3.0) + math.exp(-1.5))
    assert float(total_scores(batch, scores)[0]) == pytest.approx(expected, abs=1e-12)
    assert total_scores(batch, scores, log_semiring=False).tolist() == [-1.5]
    assert forward_scores(batch, scores).tolist() == [0.0, -1.0, -1.5, -1.5, -1.5]
    assert backward_scores(batch, scores).tolist() == [-1.5, -0.5, 0.0, 0.0, 0.0]


def test_hand_lattice_prune():
    lattice, scores = make_lattice(HAND_ARCS)
    schedule = LevelSchedule.of(batch_of(lattice))
    pruned, kept = prune_by_beam(schedule, scores, beam=0.6)  # keeps a b and a e d
    assert kept.tolist() == [0, 2, 3, 4, 5]
    assert pruned.batch.num_states == 5
    pruned, kept = prune_by_beam(schedule, scores, beam=0.4)  # only a e d
    assert kept.tolist() == [0, 3, 4, 5]
    assert pruned.batch.src.tolist() == [0, 1, 2, 3] and pruned.batch.dst.tolist() == [1, 2, 3, 4]
    assert pruned.batch.word_ids.tolist() == [1, 5, 4]
    assert schedule.batch.num_arcs == 6  # input untouched
    with pytest.raises(ConfigError):
        prune_by_beam(schedule, scores, beam=-1.0)


def test_per_lattice_beams():
    lattice, scores = make_lattice(HAND_ARCS)
    schedule = LevelSchedule.of(batch_of(lattice, lattice))
    pruned, kept = prune_by_beam(schedule, torch.cat([scores, scores]),
                                 torch.tensor([0.6, 0.4]))
    assert kept.tolist() == [0, 2, 3, 4, 5] + [6 + a for a in (0, 3, 4, 5)]
    assert pruned.batch.arc_splits.tolist() == [0, 5, 9]
    assert pruned.batch.state_splits.tolist() == [0, 5, 10]


def test_connect_drops_dead_ends_and_unreachable_states():
    # 0 -> 1 -> 4 (final); 1 -> 2 (dead end); 3 -> 4 (3 unreachable)
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (1, 4, [], 0.0), (1, 2, [2], 0.0),
                               (3, 4, [], 0.0)])
    good, _ = make_lattice(HAND_ARCS)
    connected, kept = connect(LevelSchedule.of(batch_of(good, lattice)))
    assert kept.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]
    batch = connected.batch
    assert batch.state_splits.tolist() == [0, 5, 8]
    assert batch.src.tolist()[6:] == [5, 6] and batch.dst.tolist()[6:] == [6, 7]
    assert batch.labels.tolist()[6:] == [1, -1]


def _empty_lattice() -> Lattice:
    none = torch.zeros(0, dtype=torch.int64)
    return Lattice("empty-utt", 2, none, none, none, torch.zeros(1, dtype=torch.int64), none,
                   torch.zeros(0), torch.zeros(0))


BAD = [
    ("cycle", [(0, 1, [1], 0.0), (1, 2, [1], 0.0), (2, 1, [1], 0.0), (2, 3, [], 0.0)], "cycle"),
    ("no-path", [(0, 1, [1], 0.0), (2, 3, [], 0.0)], "no path"),
    ("into-start", [(0, 1, [1], 0.0), (1, 0, [1], 0.0), (1, 2, [], 0.0)], "start state"),
]


@pytest.mark.parametrize("case, arcs, message", BAD)
def test_bad_lattices_raise_with_utterance(case, arcs, message):
    lattice, scores = make_lattice(arcs, utt_id=f"utt-{case}")
    batch = batch_of(lattice)
    for call in (lambda: LevelSchedule.of(batch), lambda: shortest_paths(batch, scores),
                 lambda: total_scores(batch, scores)):
        with pytest.raises(LatticeError, match=message) as info:
            call()
        assert info.value.utt_id == f"utt-{case}-0"
        assert f"utterance utt-{case}-0" in str(info.value)


def test_problems_are_reported_per_lattice_and_the_rest_still_works():
    good, scores = make_lattice(HAND_ARCS)
    bad = [make_lattice(arcs, utt_id=case)[0] for case, arcs, _ in BAD]
    batch = batch_of(good, bad[0], _empty_lattice(), good, bad[1], bad[2])
    _, problems = topological_levels(batch)
    assert sorted(problems) == [1, 2, 4, 5]
    assert "cycle (state 1" in problems[1].message and "empty lattice" in problems[2].message
    assert "no path" in problems[4].message and "arc 1 enters" in problems[5].message
    assert problems[2].utt_id == "empty-utt-2"
    clean = batch.select([0, 3])
    best, splits, arcs = shortest_paths(clean, torch.cat([scores, scores]))
    assert best.tolist() == [-1.5, -1.5] and (arcs - 6 * (arcs >= 6)).tolist() == [0, 3, 4, 5] * 2


@pytest.mark.parametrize("device", DEVICES)
def test_random_dags_against_brute_force(device):
    rng = random.Random(1234)
    for _ in range(150):
        lattice, scores = random_lattice(rng)
        paths = all_paths(lattice)
        path_scores = [path_score(p, scores) for p in paths]
        best = max(path_scores)
        batch = batch_of(lattice, device=device)
        schedule = LevelSchedule.of(batch)
        levels = schedule.levels
        assert bool((levels[batch.src] < levels[batch.dst]).all())
        score, _, arcs = shortest_paths(batch, scores.to(device), schedule)
        assert float(score[0]) == pytest.approx(best, abs=1e-9)
        assert arcs.tolist() in paths
        assert path_score(arcs.tolist(), scores) == pytest.approx(best, abs=1e-9)
        total = float(total_scores(batch, scores.to(device), schedule=schedule)[0])
        assert total == pytest.approx(logsumexp(path_scores), abs=1e-9)
        for beam in (0.0, 0.5, 2.0):
            _, kept = prune_by_beam(schedule, scores.to(device), beam)
            expected = {a for p, s in zip(paths, path_scores) if s >= best - beam - 1e-9 for a in p}
            assert kept.tolist() == sorted(expected)


@pytest.mark.parametrize("by_source", [False, True], ids=["kahn", "state-batches"])
@pytest.mark.parametrize("device", DEVICES)
def test_batch_invariance(device, by_source):
    """A lattice alone and inside 64 mixed ones: same scores, same arcs, same pruning."""
    rng = random.Random(77)
    for _ in range(10):
        lattice, _ = random_lattice(rng, max_states=9, by_source=by_source)
        alone = batch_of(lattice, device=device)
        mixed, index = mixed_batch(rng, lattice, max_states=12, by_source=by_source)
        mixed = mixed.to(torch.device(device))
        own, offset = arc_range(mixed, index), int(mixed.arc_splits[index])
        state_offset = int(mixed.state_splits[index])
        states = slice(state_offset, int(mixed.state_splits[index + 1]))
        one, many = LevelSchedule.of(alone), LevelSchedule.of(mixed)
        scores_one, scores_many = alone.am_scores, mixed.am_scores
        assert torch.equal(one.levels, many.levels[states])
        best1, _, arcs1 = shortest_paths(alone, scores_one, one)
        best64, splits64, arcs64 = shortest_paths(mixed, scores_many, many)
        assert float(best64[index]) == float(best1[0])
        path = arcs64[int(splits64[index]):int(splits64[index + 1])] - offset
        assert torch.equal(path, arcs1)
        for log in (False, True):
            total1 = total_scores(alone, scores_one, log, one)
            total64 = total_scores(mixed, scores_many, log, many)
            assert float(total64[index]) == pytest.approx(float(total1[0]), rel=1e-14, abs=1e-14)
            beta1 = backward_scores(alone, scores_one, log, one)
            beta64 = backward_scores(mixed, scores_many, log, many)[states]
            assert torch.allclose(beta64, beta1, rtol=1e-14, atol=1e-14)
        _, kept1 = prune_by_beam(one, scores_one, 1.0)
        _, kept64 = prune_by_beam(many, scores_many, 1.0)
        mine = kept64[(kept64 >= own.start) & (kept64 < own.stop)] - offset
        assert torch.equal(mine, kept1)


def test_total_log_score_past_float64_range_of_path_counts():
    # 10 parallel zero-score arcs per step, 310 steps: 1e310 paths (more than float64
    # holds), total log score 310 * log(10) = 713.8; next to a small lattice.
    steps = 310
    arcs = [(step, step + 1, [1], 0.0) for step in range(steps) for _ in range(10)]
    big, big_scores = make_lattice(arcs + [(steps, steps + 1, [], 0.0)])
    small, small_scores = make_lattice(HAND_ARCS)
    batch = batch_of(small, big)
    totals = total_scores(batch, torch.cat([small_scores, big_scores]))
    assert float(totals[1]) == pytest.approx(steps * math.log(10.0), rel=1e-12)
    expected = math.log(math.exp(-2.0) + math.exp(-3.0) + math.exp(-1.5))
    assert float(totals[0]) == pytest.approx(expected, abs=1e-12)
