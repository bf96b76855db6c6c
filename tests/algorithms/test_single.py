"""One-lattice views (``algorithms.single``) agree with brute force and raise per lattice."""
import random

import pytest
import torch

from lattice_builders import all_paths, logsumexp, make_lattice, path_score, random_lattice
from rescorer.algorithms import single
from rescorer.errors import ExpansionLimitError, LatticeError


def test_single_lattice_views_against_brute_force():
    rng = random.Random(404)
    for _ in range(60):
        lattice, scores = random_lattice(rng)
        paths = all_paths(lattice)
        path_scores = [path_score(p, scores) for p in paths]
        best = max(path_scores)
        levels = single.topological_levels(lattice)
        assert bool((levels[lattice.src] < levels[lattice.dst]).all())
        score, arcs = single.best_path(lattice, scores, levels=levels)
        assert score == pytest.approx(best, abs=1e-9) and arcs.tolist() in paths
        assert single.total_log_score(lattice, scores) == pytest.approx(logsumexp(path_scores),
                                                                        abs=1e-9)
        alpha = single.forward_scores(lattice, scores)
        beta = single.backward_scores(lattice, scores)
        assert float(alpha[-1]) == float(beta[0]) == pytest.approx(best, abs=1e-9)
        pruned, kept = single.prune_by_beam(lattice, scores, 1.0)
        expected = {a for p, s in zip(paths, path_scores) if s >= best - 1.0 - 1e-9 for a in p}
        assert kept.tolist() == sorted(expected) and pruned.num_arcs == len(expected)
        order, splits = single.level_schedule(levels, lattice.dst)
        for level in range(len(splits) - 1):
            assert bool((levels[lattice.dst[order[splits[level]:splits[level + 1]]]] == level).all())


def test_single_expansion_raises_its_limit_and_lattice_errors():
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (0, 1, [2], 0.0), (1, 2, [], 0.0)], utt_id="u")
    splits, tokens = torch.tensor([0, 1, 2, 2]), torch.tensor([7, 8])
    expanded = single.expand_histories(lattice, splits, tokens, 2, 100, 101, max_arcs=10)
    assert expanded.lattice.num_states == 4 and expanded.orig_arc.tolist() == [0, 1, 2, 2]
    assert expanded.levels.tolist() == [0, 1, 1, 2]
    with pytest.raises(ExpansionLimitError) as info:
        single.expand_histories(lattice, splits, tokens, 2, 100, 101, max_arcs=3)
    assert info.value.utt_id == "u"
    cyclic, scores = make_lattice([(0, 1, [1], 0.0), (1, 2, [1], 0.0), (2, 1, [1], 0.0),
                                   (2, 3, [], 0.0)], utt_id="loop")
    with pytest.raises(LatticeError, match="cycle") as info:
        single.best_path(cyclic, scores)
    assert info.value.utt_id == "loop"
