"""Our k2 reader/writer against real k2 1.23.4 (both directions, FsaVec and single Fsa)."""
import subprocess
from pathlib import Path

import pytest
import torch

k2 = pytest.importorskip("k2")

from rescorer.formats.k2_pt import write_k2  # noqa: E402
from rescorer.formats.k2_read import read_k2_batch  # noqa: E402
from rescorer.formats.slf import read_slf  # noqa: E402
from rescorer.lattice.symbols import SymbolTable  # noqa: E402

pytestmark = pytest.mark.k2


def read_k2(path):
    """The lattices of a k2 file, raising its first failure."""
    batch, failures = read_k2_batch(path)
    if failures:
        raise failures[0].error
    return batch.to_lattices()

# src dst label aux_label score: a transducer whose words differ from its labels.
FIRST = """0 1 3 7 -1.5
0 2 0 0 -2.25
1 3 4 0 -0.5
2 3 5 8 -1
3 4 -1 -1 0.125
4
"""
SECOND = """0 1 6 6 -3
1 2 -1 -1 -0.75
2
"""


def k2_vec():
    """A k2 FsaVec of FIRST and SECOND with lm_scores and utt_ids."""
    fsas = [k2.Fsa.from_str(text, acceptor=False) for text in (FIRST, SECOND)]
    vec = k2.create_fsa_vec(fsas)
    vec.lm_scores = torch.tensor([-0.5, -1.0, 0.0, -0.25, 0.0, -1.0, 0.0])
    vec.utt_ids = ["first", "second"]
    return vec


def assert_same_fsa(ours, theirs):
    """Equal arcs (incl. score bits), scores, aux_labels, lm_scores and utt_ids."""
    assert torch.equal(ours.arcs.values(), theirs.arcs.values())
    assert torch.equal(ours.scores, theirs.scores)
    assert torch.equal(ours.aux_labels, theirs.aux_labels)
    assert torch.equal(ours.lm_scores, theirs.lm_scores)
    assert ours.utt_ids == theirs.utt_ids
    assert ours.shape == theirs.shape


def test_k2_written_fsa_vec_reads_identically(tmp_path):
    path = tmp_path / "k2.pt"
    torch.save(k2_vec().as_dict(), path)
    first, second = read_k2(path)
    assert (first.utt_id, first.num_states, second.num_states) == ("first", 5, 3)
    assert first.labels.tolist() == [3, 0, 4, 5, -1]
    assert first.word_ids.tolist() == [7, 8] and first.word_splits.tolist() == [0, 1, 1, 1, 2, 2]
    # am = scores - lm_scores
    assert first.am_scores.tolist() == [-1.0, -1.25, -0.5, -0.75, 0.125]
    assert second.ngram_scores.tolist() == [-1.0, 0.0] and second.am_scores.tolist() == [-2.0, -0.75]


def test_our_file_loads_in_k2_and_equals_the_k2_built_vec(tmp_path):
    source = tmp_path / "k2.pt"
    torch.save(k2_vec().as_dict(), source)
    ours = tmp_path / "ours.pt"
    write_k2(ours, read_k2(source))
    loaded = k2.Fsa.from_dict(torch.load(ours))
    assert_same_fsa(loaded, k2_vec())
    assert "Valid" in loaded[0].properties_str


def test_ragged_aux_labels_written_by_k2(tmp_path):
    fsa = k2.Fsa.from_str(FIRST, acceptor=False)
    fsa.aux_labels = k2.RaggedTensor([[7, 9], [], [4], [8], [-1]])
    path = tmp_path / "ragged.pt"
    torch.save(fsa.as_dict(), path)  # a single Fsa: 2-D arcs
    (lattice,) = read_k2(path)
    assert lattice.utt_id == "ragged" and lattice.num_states == 5
    assert lattice.word_splits.tolist() == [0, 2, 2, 3, 4, 4]
    assert lattice.word_ids.tolist() == [7, 9, 4, 8]
    assert lattice.am_scores.tolist() == fsa.scores.tolist()


def test_ctc_topo_style_lattice_with_ragged_aux_labels(tmp_path):
    # Removing the epsilons (blanks) of a CTC topology makes its aux_labels ragged.
    inverted = k2.remove_epsilon(k2.ctc_topo(3, modified=False))
    assert isinstance(inverted.aux_labels, k2.RaggedTensor)
    vec = k2.create_fsa_vec([inverted, inverted])
    vec.utt_ids = ["a", "b"]
    path = tmp_path / "ctc.pt"
    torch.save(vec.as_dict(), path)
    first, second = read_k2(path)
    row_splits = inverted.aux_labels.shape.row_splits(1).long()
    values = inverted.aux_labels.values.long()
    counts = [int(((values[s:e]) > 0).sum()) for s, e in zip(row_splits[:-1], row_splits[1:])]
    assert first.words_per_arc.tolist() == counts
    assert first.word_ids.tolist() == values[values > 0].tolist()
    assert torch.equal(first.labels, inverted.labels.long())
    assert torch.equal(first.word_ids, second.word_ids)


def test_single_fsa_with_tensor_aux_labels(tmp_path):
    fsa = k2.Fsa.from_str(SECOND, acceptor=False)
    path = tmp_path / "one.pt"
    torch.save(fsa.as_dict(), path)
    (lattice,) = read_k2(path)
    assert lattice.labels.tolist() == [6, -1] and lattice.word_ids.tolist() == [6]
    write_k2(tmp_path / "back.pt", [lattice])
    back = k2.Fsa.from_dict(torch.load(tmp_path / "back.pt"))
    assert torch.equal(back[0].arcs.values(), fsa.arcs.values())
    assert back.utt_ids == ["one"]


def test_real_lattices_convert_to_k2_and_back(tmp_path, shared_data):
    symbols = SymbolTable()
    paths = [shared_data / "asr-dev/lat/dev-0001.slf.gz", shared_data / "asr-dev/lat/dev-0002.slf.gz",
             *sorted((shared_data / "slf-samples/ami").glob("*.lat.gz"))[:2]]
    lattices = [read_slf(path, symbols)[0][0] for path in paths]
    ours = tmp_path / "real.pt"
    write_k2(ours, lattices)
    fsa = k2.Fsa.from_dict(torch.load(ours))
    assert fsa.shape[0] == 4 and fsa.utt_ids == [l.utt_id for l in lattices]
    for index, lattice in enumerate(read_k2(ours)):
        one = fsa[index]
        assert "Valid" in one.properties_str and "Acyclic" in one.properties_str
        assert torch.equal(one.scores, lattice.am_scores + lattice.ngram_scores)
        assert torch.equal(one.lm_scores, lattice.ngram_scores)
        assert torch.equal(one.labels.long(), lattice.labels)
    # k2's own save of the loaded vec reads back identically in ours (arcs in k2's
    # order: sorted by source state)
    again = tmp_path / "again.pt"
    torch.save(fsa.as_dict(), again)
    for original, copy in zip(read_k2(ours), read_k2(again)):
        for field in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores"):
            assert torch.equal(getattr(original, field), getattr(copy, field)), field


def assert_ragged_equal(ragged, row_splits, values):
    assert isinstance(ragged, k2.RaggedTensor) and ragged.num_axes == 2
    assert ragged.shape.row_splits(1).tolist() == row_splits
    assert ragged.values.dtype == torch.int32 and ragged.values.tolist() == values


def test_arcs_with_several_words_load_in_k2_as_ragged_aux_labels(tmp_path):
    fsa = k2.Fsa.from_str(FIRST, acceptor=False)
    fsa.aux_labels = k2.RaggedTensor([[7, 9], [], [4], [8, 6, 5], [-1]])
    source = tmp_path / "k2.pt"
    torch.save(fsa.as_dict(), source)
    ours = tmp_path / "ours.pt"
    write_k2(ours, read_k2(source))
    loaded = k2.Fsa.from_dict(torch.load(ours))
    assert_ragged_equal(loaded.aux_labels, [0, 2, 2, 3, 6, 7], [7, 9, 4, 8, 6, 5, -1])
    assert torch.equal(loaded.arcs.values(), fsa.arcs.values())
    assert "Valid" in loaded[0].properties_str
    # k2 uses the ragged labels: the best path's words are the aux labels on it
    best = k2.shortest_path(loaded, use_double_scores=True)
    assert best.aux_labels.values.tolist() == [7, 9, 4, -1]  # 0 -> 1 -> 3 -> 4: -1.5-0.5+0.125
    # and our reader gets the same lattice back from k2's own save of it
    again = tmp_path / "again.pt"
    torch.save(loaded.as_dict(), again)
    (mine,), (theirs,) = read_k2(ours), read_k2(again)
    assert mine.word_splits.tolist() == theirs.word_splits.tolist() == [0, 2, 2, 3, 6, 6]
    assert torch.equal(mine.word_ids, theirs.word_ids)


MAIN_PYTHON = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "python"
WRITE_IN_MAIN_ENV = """
import sys, torch
from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.fsavec import Lattice
lattice = Lattice(utt_id="u", num_states=3, src=torch.tensor([0, 0, 1]), dst=torch.tensor([1, 1, 2]),
                  labels=torch.tensor([3, 0, -1]), word_splits=torch.tensor([0, 2, 5, 5]),
                  word_ids=torch.tensor([3, 4, 5, 6, 7]), am_scores=torch.tensor([-1.0, -2.0, 0.0]),
                  ngram_scores=torch.tensor([-0.5, 0.0, 0.0]))
write_k2(sys.argv[1], [lattice])
print(torch.__version__)
"""


@pytest.mark.skipif(not MAIN_PYTHON.exists(), reason="main .venv not built")
def test_file_written_by_the_main_env_torch_loads_in_k2(tmp_path):
    path = tmp_path / "main.pt"
    done = subprocess.run([str(MAIN_PYTHON), "-c", WRITE_IN_MAIN_ENV, str(path)],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert done.stdout.split(".")[0] != torch.__version__.split(".")[0]  # 2.x wrote, 1.x reads
    loaded = k2.Fsa.from_dict(torch.load(path))
    assert loaded.utt_ids == ["u"] and loaded.lm_scores.tolist() == [-0.5, 0.0, 0.0]
    assert_ragged_equal(loaded.aux_labels, [0, 2, 5, 6], [3, 4, 5, 6, 7, -1])
    assert loaded.scores.tolist() == [-1.5, -2.0, 0.0]
