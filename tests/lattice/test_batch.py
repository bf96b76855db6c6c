"""LatticeBatch: concatenation, selection and the k2 dict layout are lossless."""
import random
import sys
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
