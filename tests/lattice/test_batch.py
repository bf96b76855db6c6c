"""LatticeBatch: concatenation, selection and the k2 dict layout are lossless."""
import random
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "algorithms"))
from lattice_builders import random_lattice  # noqa: E402

from rescorer.lattice.batch import LatticeBatch  # noqa: E402


def _lattices(count: int, seed: int = 0):
    rng = random.Random(seed)
    lattices = []
    for index in range(count):
        lattice, _ = random_lattice(rng)
        lattices.append(type(lattice)(**{**lattice.__dict__, "utt_id": f"u{index}"}))
    return lattices


def _assert_same(left, right):
    assert left.utt_id == right.utt_id and left.num_states == right.num_states
    for name in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores"):
        assert torch.equal(getattr(left, name), getattr(right, name)), name


def test_from_lattices_round_trips_and_uses_global_states():
    lattices = _lattices(6)
    batch = LatticeBatch.from_lattices(lattices)
    batch.validate()
    assert batch.num_utts == 6 and batch.num_arcs == sum(lat.num_arcs for lat in lattices)
    assert batch.state_splits.tolist()[-1] == sum(lat.num_states for lat in lattices)
    for index, lattice in enumerate(lattices):
        _assert_same(batch.lattice(index), lattice)
    arc_utt = batch.arc_utt
    assert bool((batch.src >= batch.state_splits[arc_utt]).all())
    assert bool((batch.dst < batch.state_splits[arc_utt + 1]).all())
    assert torch.equal(batch.final_states, batch.state_splits[1:] - 1)


def test_select_equals_batch_of_selected():
    lattices = _lattices(7, seed=3)
    extras = {"nnlm_scores": [torch.arange(lat.num_arcs, dtype=torch.float32) for lat in lattices]}
    batch = LatticeBatch.from_lattices(lattices, extras)
    picked = batch.select([5, 0, 3])
    expected = LatticeBatch.from_lattices([lattices[i] for i in (5, 0, 3)],
                                          {"nnlm_scores": [extras["nnlm_scores"][i] for i in (5, 0, 3)]})
    assert picked.utt_ids == ["u5", "u0", "u3"]
    for name in ("state_splits", "arc_splits", "src", "dst", "labels", "word_splits", "word_ids",
                 "am_scores", "ngram_scores"):
        assert torch.equal(getattr(picked, name), getattr(expected, name)), name
    assert torch.equal(picked.arc_extras["nnlm_scores"], expected.arc_extras["nnlm_scores"])


def test_k2_dict_round_trip_keeps_lattices_up_to_arc_order():
    lattices = _lattices(5, seed=7)
    batch = LatticeBatch.from_lattices(lattices)
    again = LatticeBatch.from_k2_dict(batch.to_k2_dict())
    assert again.utt_ids == batch.utt_ids
    assert torch.equal(again.state_splits, batch.state_splits)
    for index, lattice in enumerate(lattices):
        back = again.lattice(index)
        order = torch.sort(lattice.src, stable=True).indices
        assert torch.equal(back.src, lattice.src[order]) and torch.equal(back.dst, lattice.dst[order])
        assert torch.allclose(back.am_scores, lattice.am_scores[order])


def _with_transitions(lattice, seed):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.randint(0, 4, (lattice.num_arcs,), generator=generator)
    splits = torch.zeros(lattice.num_arcs + 1, dtype=torch.int64)
    splits[1:] = torch.cumsum(counts, 0)
    ids = torch.randint(1, 500, (int(splits[-1]),), generator=generator)
    return replace(lattice, transition_splits=splits, transition_ids=ids)


def test_transition_ids_follow_their_arcs_through_select_and_lattice():
    lattices = [_with_transitions(lattice, index) for index, lattice in enumerate(_lattices(5, 11))]
    batch = LatticeBatch.from_lattices(lattices)
    for position, index in enumerate((4, 1, 2)):
        back = batch.select([4, 1, 2]).lattice(position)
        assert torch.equal(back.transition_splits, lattices[index].transition_splits)
        assert torch.equal(back.transition_ids, lattices[index].transition_ids)
    arcs = torch.tensor([3, 0, 3])
    splits, ids = batch.arc_transitions(arcs)
    expected = [batch.transition_ids[int(batch.transition_splits[a]):int(batch.transition_splits[a + 1])]
                for a in arcs.tolist()]
    assert torch.equal(ids, torch.cat(expected))
    assert (splits[1:] - splits[:-1]).tolist() == [e.numel() for e in expected]
    assert LatticeBatch.from_lattices(_lattices(2)).transition_splits is None


def test_state_times_follow_their_states_through_select_and_concat():
    from rescorer.formats.read import concat_batches

    lattices = _lattices(5, seed=11)
    times = [torch.arange(lat.num_states, dtype=torch.float64) + 100 * index
             for index, lat in enumerate(lattices)]
    batch = LatticeBatch.from_lattices(lattices, state_times=times)
    assert torch.equal(batch.state_times, torch.cat(times))
    picked = batch.select([4, 1])
    assert torch.equal(picked.state_times, torch.cat([times[4], times[1]]))
    joined = concat_batches([batch.select([0, 2]), batch.select([3])])
    assert torch.equal(joined.state_times, torch.cat([times[0], times[2], times[3]]))
    assert concat_batches([batch.select([0]), LatticeBatch.from_lattices(lattices[1:2])]).state_times is None
    assert LatticeBatch.from_lattices(lattices).state_times is None
