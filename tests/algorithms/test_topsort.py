"""The two level schedules: k2-style state batches and Kahn's algorithm give the same sweeps."""
import random

import pytest
import torch

from rescorer.algorithms.best_path import backward_scores, forward_scores, shortest_paths
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule, _kahn, _state_batches
from lattice_builders import DEVICES, batch_of, make_lattice, random_lattice


def _both(batch):
    """(state-batch schedule, Kahn schedule) of a problem-free batch."""
    found = _state_batches(batch)
    assert found is not None
    fast, problems = LevelSchedule._of_levels(batch, found)
    kahn, kahn_problems = LevelSchedule._of_levels(batch, _kahn(batch))
    assert not problems and not kahn_problems
    return fast, kahn


@pytest.mark.parametrize("device", DEVICES)
def test_state_batches_are_runs_of_states_and_sweep_like_kahn(device):
    rng = random.Random(5)
    for _ in range(60):
        lattices = [random_lattice(rng, max_states=10, by_source=True)[0]
                    for _ in range(rng.randint(1, 6))]
        batch = batch_of(*lattices, device=device)
        fast, kahn = _both(batch)
        levels = fast.levels
        assert bool((levels[batch.src] < levels[batch.dst]).all())
        same_lattice = batch.state_utt[1:] == batch.state_utt[:-1]
        assert bool((levels[1:] >= levels[:-1])[same_lattice].all())  # runs, in state order
        assert torch.equal(torch.sort(fast.order).values, torch.arange(batch.num_arcs, device=device))
        assert torch.equal(fast.order_dst, batch.dst[fast.order])
        for src, states in zip(fast.src, fast.states):  # grouped by source, in states order
            assert torch.equal(torch.unique_consecutive(src), states[torch.isin(states, src)])
        assert fast.num_levels >= kahn.num_levels
        scores = batch.am_scores
        for backward in (forward_scores, backward_scores):
            assert torch.equal(backward(batch, scores, False, fast), backward(batch, scores, False, kahn))
            assert torch.allclose(backward(batch, scores, True, fast), backward(batch, scores, True, kahn),
                                  rtol=1e-13, atol=1e-13)
        for one, other in zip(shortest_paths(batch, scores, fast), shortest_paths(batch, scores, kahn)):
            assert torch.equal(one, other)
        assert torch.equal(prune_by_beam(fast, scores, 1.5)[1], prune_by_beam(kahn, scores, 1.5)[1])


def test_state_batches_decline_what_they_cannot_schedule():
    shuffled, _ = make_lattice([(1, 2, [1], 0.0), (0, 1, [2], 0.0), (2, 3, [], 0.0)])
    downward, _ = make_lattice([(0, 2, [1], 0.0), (1, 3, [], 0.0), (2, 1, [2], 0.0)])
    unentered, _ = make_lattice([(0, 2, [1], 0.0), (1, 2, [2], 0.0), (2, 3, [], 0.0)])
    for lattice in (shuffled, downward, unentered):
        batch = batch_of(lattice)
        assert _state_batches(batch) is None
        schedule = LevelSchedule.of(batch)  # Kahn's levels instead
        assert bool((schedule.levels[batch.src] < schedule.levels[batch.dst]).all())
    sorted_ok, _ = make_lattice([(0, 1, [1], 0.0), (0, 2, [2], 0.0), (1, 3, [], 0.0),
                                 (2, 3, [], 0.0)])
    found = _state_batches(batch_of(sorted_ok))
    assert found is not None and found.levels.tolist() == [0, 1, 1, 2]
