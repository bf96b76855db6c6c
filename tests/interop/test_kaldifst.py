"""``kaldifst`` (PyPI, the k2 project's OpenFst/Kaldi binding) as the reference for the binary layout.

kaldifst installs cleanly from PyPI (it is in the ``test`` extra), so these tests run
in the main environment; they skip where it is missing.
"""
from pathlib import Path

import pytest
import torch

from rescorer.formats.kaldi_archive import iter_kaldi_archive, read_kaldi_fst
from rescorer.formats.kaldi_lattice import lattice_to_fst
from rescorer.formats.kaldi_outputs import write_kaldi_fst

kaldifst = pytest.importorskip("kaldifst")
from kaldifst.lib._kaldifst import _ArcIteratorLattice  # noqa: E402 (after the skip)

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kaldi-samples"


def kaldifst_arcs(fst):
    """Every arc as (state, ilabel, olabel, graph, acoustic, nextstate), and the finals."""
    arcs, finals = [], []
    for state in range(fst.num_states):
        iterator = _ArcIteratorLattice(fst, state)
        while not iterator.done:
            arc = iterator.value
            arcs.append((state, arc.ilabel, arc.olabel, arc.weight.value1, arc.weight.value2,
                         arc.nextstate))
            iterator.next()
        final = fst.final(state)
        if final.value1 != float("inf"):
            finals.append((state, final.value1, final.value2))
    return arcs, finals


def our_arcs(fst):
    """The same tuples from a ``KaldiFst``."""
    rows = zip(fst.src.tolist(), fst.ilabel.tolist(), fst.olabel.tolist(), fst.graph.tolist(),
               fst.acoustic.tolist(), fst.dst.tolist())
    finals = [(state, fst.final_graph[state].item(), fst.final_acoustic[state].item())
              for state in fst.is_final.nonzero().flatten().tolist()]
    return list(rows), finals


@pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared data not available")
def test_lattices_written_by_fprescore_load_in_kaldifst_identically(tmp_path):
    for lattice in list(iter_kaldi_archive(SAMPLES / "lat.1.ark"))[:4]:
        path = tmp_path / f"{lattice.utt_id}.fst"
        write_kaldi_fst(path, lattice, compact=False)  # kaldifst reads Lattice (lattice4)
        reference = kaldifst.Lattice.read(str(path))
        expected = lattice_to_fst(lattice, compact=False)
        assert (reference.num_states, reference.start) == (expected.num_states, 0)
        assert kaldifst_arcs(reference) == our_arcs(expected)  # float32 values, exactly
        # every transition id of the CompactLattice is one input label of the Lattice
        assert sorted(label for _, label, *_ in kaldifst_arcs(reference)[0] if label) == sorted(
            lattice.transition_ids.tolist())


def test_lattice_written_by_kaldifst_loads_in_fprescore_identically(tmp_path):
    weight = kaldifst.LatticeWeight
    fst = kaldifst.Lattice()
    states = [fst.add_state() for _ in range(4)]
    fst.start = states[0]
    # 0 -(tid 11 : word 5)-> 1 -(12 : 0)-> 2, 0 -(13 : 6)-> 2, 2 -(0 : 7)-> 3; finals 2 and 3
    for src, ilabel, olabel, graph, acoustic, dst in [
            (0, 11, 5, 1.5, 10.25, 1), (1, 12, 0, 0.0, 0.1, 2), (0, 13, 6, 2.0, 3.0, 2),
            (2, 0, 7, 0.3, 0.0, 3)]:
        fst.add_arc(src, kaldifst.LatticeArc(ilabel, olabel, weight(graph, acoustic), dst))
    fst.set_final(2, weight(0.5, 0.25))
    fst.set_final(3, weight(0.0, 0.0))
    path = tmp_path / "ref.fst"
    assert fst.write(str(path))
    lattice = read_kaldi_fst(path, "ref")
    f32 = lambda values: torch.tensor(values, dtype=torch.float32).tolist()  # noqa: E731
    assert lattice.num_states == 5  # Kaldi's 4 plus the one final state
    assert lattice.src.tolist() == [0, 0, 1, 2, 2, 3] and lattice.dst.tolist() == [1, 2, 2, 3, 4, 4]
    assert lattice.labels.tolist() == [5, 6, 0, 7, -1, -1]
    assert lattice.ngram_scores.tolist() == f32([-1.5, -2.0, 0.0, -0.3, -0.5, 0.0])
    assert lattice.am_scores.tolist() == f32([-10.25, -3.0, -0.1, 0.0, -0.25, 0.0])
    assert lattice.transition_splits.tolist() == [0, 1, 2, 3, 3, 3, 3]
    assert lattice.transition_ids.tolist() == [11, 13, 12]
    # and it converts back to kaldifst's arcs exactly
    assert our_arcs(lattice_to_fst(lattice, compact=False)) == kaldifst_arcs(fst)
