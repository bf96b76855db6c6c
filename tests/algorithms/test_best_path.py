"""Topological levels, Viterbi, forward/backward and total scores, pruning."""
import math
import random

import pytest
import torch

from rescorer.algorithms.best_path import (
    backward_scores, best_path, forward_scores, total_log_score,
)
from rescorer.algorithms.prune import connect, prune_by_beam
from rescorer.algorithms.topsort import topological_levels
from rescorer.errors import ConfigError, LatticeError
from rescorer.lattice.fsavec import Lattice
from lattice_builders import (
    all_paths, logsumexp, make_lattice, path_score, random_lattice,
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


def test_hand_lattice_levels_best_path_and_total():
    lattice, scores = make_lattice(HAND_ARCS)
    assert topological_levels(lattice).tolist() == [0, 1, 2, 3, 4]
    score, arcs = best_path(lattice, scores)
    assert score == -1.5
    assert arcs.tolist() == [0, 3, 4, 5]
    expected = math.log(math.exp(-2.0) + math.exp(-3.0) + math.exp(-1.5))
    assert total_log_score(lattice, scores) == pytest.approx(expected, abs=1e-12)
    assert forward_scores(lattice, scores).tolist() == [0.0, -1.0, -1.5, -1.5, -1.5]
    assert backward_scores(lattice, scores).tolist() == [-1.5, -0.5, 0.0, 0.0, 0.0]


def test_hand_lattice_prune():
    lattice, scores = make_lattice(HAND_ARCS)
    pruned, kept = prune_by_beam(lattice, scores, beam=0.6)  # keeps a b and a e d
    assert kept.tolist() == [0, 2, 3, 4, 5]
    assert pruned.num_states == 5
    pruned, kept = prune_by_beam(lattice, scores, beam=0.4)  # only a e d
    assert kept.tolist() == [0, 3, 4, 5]
    assert pruned.src.tolist() == [0, 1, 2, 3] and pruned.dst.tolist() == [1, 2, 3, 4]
    assert pruned.word_ids.tolist() == [1, 5, 4]
    assert lattice.num_arcs == 6  # input untouched
    with pytest.raises(ConfigError):
        prune_by_beam(lattice, scores, beam=-1.0)


def test_connect_drops_dead_ends_and_unreachable_states():
    # 0 -> 1 -> 4 (final); 1 -> 2 (dead end); 3 -> 4 (3 unreachable)
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (1, 4, [], 0.0), (1, 2, [2], 0.0),
                               (3, 4, [], 0.0)])
    connected, kept = connect(lattice)
    assert kept.tolist() == [0, 1]
    assert connected.num_states == 3
    assert connected.src.tolist() == [0, 1] and connected.dst.tolist() == [1, 2]
    assert connected.labels.tolist() == [1, -1]


def _empty_lattice() -> Lattice:
    none = torch.zeros(0, dtype=torch.int64)
    return Lattice("empty-utt", 2, none, none, none, torch.zeros(1, dtype=torch.int64), none,
                   torch.zeros(0), torch.zeros(0))


@pytest.mark.parametrize("case, arcs, message", [
    ("cycle", [(0, 1, [1], 0.0), (1, 2, [1], 0.0), (2, 1, [1], 0.0), (2, 3, [], 0.0)], "cycle"),
    ("no-path", [(0, 1, [1], 0.0), (2, 3, [], 0.0)], "no path"),
    ("into-start", [(0, 1, [1], 0.0), (1, 0, [1], 0.0), (1, 2, [], 0.0)], "start state"),
])
def test_bad_lattices_raise_with_utterance(case, arcs, message):
    lattice, scores = make_lattice(arcs, utt_id=f"utt-{case}")
    for call in (lambda: topological_levels(lattice), lambda: best_path(lattice, scores),
                 lambda: prune_by_beam(lattice, scores, 1.0)):
        with pytest.raises(LatticeError, match=message) as info:
            call()
        assert info.value.utt_id == f"utt-{case}"
        assert f"utterance utt-{case}" in str(info.value)


def test_empty_lattice_raises():
    with pytest.raises(LatticeError, match="empty lattice") as info:
        topological_levels(_empty_lattice())
    assert info.value.utt_id == "empty-utt"


def test_random_dags_against_brute_force():
    rng = random.Random(1234)
    for _ in range(300):
        lattice, scores = random_lattice(rng)
        paths = all_paths(lattice)
        path_scores = [path_score(p, scores) for p in paths]
        best = max(path_scores)
        levels = topological_levels(lattice)
        assert bool((levels[lattice.src] < levels[lattice.dst]).all())
        score, arcs = best_path(lattice, scores, levels=levels)
        assert score == pytest.approx(best, abs=1e-9)
        assert arcs.tolist() in paths
        assert path_score(arcs.tolist(), scores) == pytest.approx(best, abs=1e-9)
        assert total_log_score(lattice, scores) == pytest.approx(logsumexp(path_scores), abs=1e-9)
        for beam in (0.0, 0.5, 2.0):
            _, kept = prune_by_beam(lattice, scores, beam, levels=levels)
            expected = {a for p, s in zip(paths, path_scores) if s >= best - beam - 1e-9 for a in p}
            assert kept.tolist() == sorted(expected)
