"""State times for the CTM: Kaldi transition counts, frame-synchronous k2 lattices, expansions."""
import sys
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "algorithms"))
from lattice_builders import make_lattice  # noqa: E402
from rescorer.algorithms.topsort import LevelSchedule  # noqa: E402
from rescorer.formats.k2_pt import write_k2  # noqa: E402
from rescorer.lattice.batch import LatticeBatch  # noqa: E402
from rescorer.rescoring.times import K2_NOT_SYNCHRONOUS, expanded_state_times, lattice_state_times  # noqa: E402

NAN = float("nan")


def _kaldi_batch(frames_per_lattice):
    """Two-path lattices 0 -a-> 1 -> 2, 0 -b-> 1: the arcs' frame counts as given."""
    lattices = []
    for index, frames in enumerate(frames_per_lattice):
        lattice, _ = make_lattice([(0, 1, [1], 0.0), (0, 1, [2], 0.0), (1, 2, [], 0.0)], utt_id=f"k{index}")
        counts = torch.tensor(frames, dtype=torch.int64)
        splits = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
        lattices.append(replace(lattice, transition_splits=splits,
                                transition_ids=torch.arange(1, int(splits[-1]) + 1)))
    return LatticeBatch.from_lattices(lattices)


def test_kaldi_times_are_frame_counts_and_inconsistent_lattices_get_none():
    batch = _kaldi_batch([[30, 30, 0], [30, 20, 2]])  # the second: 30 vs 20 frames into state 1
    times, notes = lattice_state_times(LevelSchedule.of(batch), [None, None], 0.01)
    assert times[:3].tolist() == [0.0, 0.3, 0.3]
    assert bool(times[3:].isnan().all())
    assert list(notes) == [1] and "inconsistent frame counts" in notes[1]


def test_k2_times_need_a_frame_synchronous_lattice(tmp_path):
    synchronous, _ = make_lattice([(0, 1, [1], 0.0), (0, 2, [2], 0.0), (1, 3, [], 0.0), (2, 3, [1], 0.0),
                                   (3, 4, [], 0.0)], utt_id="sync")
    ragged, _ = make_lattice([(0, 1, [1], 0.0), (1, 2, [2], 0.0), (0, 2, [2], 0.0), (2, 3, [], 0.0)],
                             utt_id="ragged")
    batch = LatticeBatch.from_lattices([synchronous, ragged])
    schedule = LevelSchedule.of(batch)
    times, notes = lattice_state_times(schedule, [None, None], 0.04)
    assert times[:5].tolist() == [0.0, 0.04, 0.04, 0.08, 0.12]
    assert bool(times[5:].isnan().all()) and notes == {1: K2_NOT_SYNCHRONOUS}
    k2_file, slf_file = tmp_path / "a.pt", tmp_path / "a.slf"
    write_k2(k2_file, [synchronous])
    slf_file.write_text("VERSION=1.0\n")
    times, notes = lattice_state_times(schedule, [k2_file, slf_file], 0.04)
    assert times[:5].tolist() == [0.0, 0.04, 0.04, 0.08, 0.12] and notes == {}  # an SLF file: no times
    assert bool(times[5:].isnan().all())


def test_slf_times_are_kept_and_expanded_states_take_their_arcs_times():
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (0, 1, [2], 0.0), (1, 2, [3], 0.0), (2, 3, [], 0.0)])
    batch = LatticeBatch.from_lattices([lattice], state_times=[torch.tensor([0.0, 0.5, 0.9, 0.9], dtype=torch.float64)])
    times, notes = lattice_state_times(LevelSchedule.of(batch), [None], 0.01)
    assert times.tolist() == [0.0, 0.5, 0.9, 0.9] and notes == {}
    # An expansion by the first word: state 1 splits into 1a (after word 1) and 1b (after word 2).
    expanded, _ = make_lattice([(0, 1, [1], 0.0), (0, 2, [2], 0.0), (1, 3, [3], 0.0), (2, 4, [3], 0.0),
                                (3, 5, [], 0.0), (4, 5, [], 0.0)])
    copies = torch.tensor([0, 1, 2, 2, 3, 3])  # the input arc each expanded arc copies
    got = expanded_state_times(batch, times, LatticeBatch.from_lattices([expanded]), copies)
    assert got.tolist() == [0.0, 0.5, 0.5, 0.9, 0.9, 0.9]
