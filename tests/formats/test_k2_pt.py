"""k2 as_dict files without k2: hand-built layouts, round trips, ragged aux_labels, bad input."""
import itertools
import os
import pickletools
import random
import sys
import types
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rescorer.errors import Failure, InputFormatError, SymbolError
from rescorer.formats.k2_pt import lattices_to_k2_dict, write_k2
from rescorer.formats.k2_read import _chunks, iter_k2, read_k2_batch, read_k2_chunks
from rescorer.formats.read import concat_batches
from rescorer.formats.torch_pickle import RaggedStandIn, save_torch_dict
from rescorer.lattice.symbols import SymbolTable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "algorithms"))
from lattice_builders import random_lattice  # noqa: E402


def read_k2(path, symbols=None):
    """The lattices of a k2 file, raising its first failure."""
    batch, failures = read_k2_batch(path, symbols)
    if failures:
        raise failures[0].error
    return batch.to_lattices()


def read_k2_extra_scores(path):
    """Per FSA, the arc_extras of the batch read from ``path``."""
    batch, _ = read_k2_batch(path)
    return [batch.arc_extras_of(index) for index in range(batch.num_utts)]


def float_bits(values):
    return torch.tensor(values, dtype=torch.float32).view(torch.int32).tolist()


def two_fsa_dict():
    """FsaVec of two FSAs, written out by hand in k2's 1-D layout.

    FSA 0 (utt "a"): 0 -5-> 1 -(-1)-> 2, scores -1.5, 0.25; lm_scores -0.5, 0
       -> am = [-1.0, 0.25], ngram = [-0.5, 0], words [[5], []]
    FSA 1 (utt "b"): 0 -0-> 1, 0 -7-> 1, 1 -(-1)-> 2, scores -1, -2, -3; lm 0, -1, 0
       -> am = [-1, -1, -3], ngram = [0, -1, 0], words [[], [7], []]
    """
    header = [2, 0, 0, 3, 6, 0, 2, 5]  # num_fsas, 0, row_splits1, row_splits12
    arcs = []
    for (src, dst, label), bits in zip(
        [(0, 1, 5), (1, 2, -1), (0, 1, 0), (0, 1, 7), (1, 2, -1)],
        float_bits([-1.5, 0.25, -1.0, -2.0, -3.0]),
    ):
        arcs += [src, dst, label, bits]
    return {
        "arcs": torch.tensor(header + arcs, dtype=torch.int32),
        "lm_scores": torch.tensor([-0.5, 0.0, 0.0, -1.0, 0.0]),
        "utt_ids": ["a", "b"],
        "labels_version": 0,
    }


def save(tmp_path, content, name="lats.pt"):
    path = tmp_path / name
    torch.save(content, path)
    return path


def test_reads_hand_built_fsa_vec(tmp_path):
    first, second = read_k2(save(tmp_path, two_fsa_dict()))
    assert (first.utt_id, first.num_states, second.utt_id, second.num_states) == ("a", 3, "b", 3)
    assert first.src.tolist() == [0, 1] and first.dst.tolist() == [1, 2]
    assert first.labels.tolist() == [5, -1]
    assert first.word_splits.tolist() == [0, 1, 1] and first.word_ids.tolist() == [5]
    assert first.am_scores.tolist() == [-1.0, 0.25] and first.ngram_scores.tolist() == [-0.5, 0.0]
    assert second.src.tolist() == [0, 0, 1] and second.labels.tolist() == [0, 7, -1]
    assert second.word_splits.tolist() == [0, 0, 1, 1] and second.word_ids.tolist() == [7]
    assert second.am_scores.tolist() == [-1.0, -1.0, -3.0]
    assert second.ngram_scores.tolist() == [0.0, -1.0, 0.0]


def test_single_fsa_with_int_aux_labels_and_no_lm_scores(tmp_path):
    # 0 -3/aux 9-> 1 -(-1)-> 2; no lm_scores: am = scores, ngram = 0; utt id = file stem
    arcs = torch.tensor([[0, 1, 3, float_bits([-2.0])[0]], [1, 2, -1, 0]], dtype=torch.int32)
    path = save(tmp_path, {"arcs": arcs, "aux_labels": torch.tensor([9, -1], dtype=torch.int32)},
                "utt42.pt")
    (lattice,) = read_k2(path)
    assert lattice.utt_id == "utt42" and lattice.num_states == 3
    assert lattice.word_ids.tolist() == [9] and lattice.labels.tolist() == [3, -1]
    assert lattice.am_scores.tolist() == [-2.0, 0.0] and lattice.ngram_scores.tolist() == [0.0, 0.0]


def test_writer_produces_the_same_layout_and_round_trips(tmp_path):
    lattices = read_k2(save(tmp_path, two_fsa_dict()))
    content = lattices_to_k2_dict(lattices, {"nnlm_scores": [torch.tensor([1.0, 2.0]),
                                                             torch.tensor([3.0, 4.0, 5.0])]})
    expected = two_fsa_dict()
    assert torch.equal(content["arcs"], expected["arcs"])  # scores = am + ngram exactly
    assert torch.equal(content["lm_scores"], expected["lm_scores"])
    assert content["utt_ids"] == ["a", "b"] and "aux_labels" not in content  # words == labels
    assert content["nnlm_scores"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0]
    out = tmp_path / "sub" / "out.pt"
    write_k2(out, lattices)
    for original, copy in zip(lattices, read_k2(out)):
        for field in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores"):
            assert torch.equal(getattr(original, field), getattr(copy, field)), field
    assert [p.name for p in out.parent.iterdir()] == ["out.pt"]  # no temporary left


def test_writer_adds_aux_labels_when_words_differ_from_labels(tmp_path):
    content = two_fsa_dict()
    content["aux_labels"] = torch.tensor([8, -1, 0, 4, -1], dtype=torch.int32)
    lattices = read_k2(save(tmp_path, content))
    assert [l.word_ids.tolist() for l in lattices] == [[8], [4]]
    written = lattices_to_k2_dict(lattices)
    assert written["aux_labels"].tolist() == [8, -1, 0, 4, -1]


class FakeRaggedTensor:
    """Pickles like k2's ``_k2.ragged.RaggedTensor`` (same global name, same state)."""

    def __init__(self, row_splits, values):
        self.parts = (torch.tensor(row_splits, dtype=torch.int32), "row_ids1",
                      torch.tensor(values, dtype=torch.int32))

    def __getstate__(self):
        return self.parts


@pytest.fixture
def fake_k2(monkeypatch):
    """A stand-in ``_k2.ragged`` module so that torch.save writes k2's global name."""
    package, ragged = types.ModuleType("_k2"), types.ModuleType("_k2.ragged")
    FakeRaggedTensor.__module__, FakeRaggedTensor.__qualname__ = "_k2.ragged", "RaggedTensor"
    ragged.RaggedTensor = FakeRaggedTensor
    package.ragged = ragged
    monkeypatch.setitem(sys.modules, "_k2", package)
    monkeypatch.setitem(sys.modules, "_k2.ragged", ragged)
    yield FakeRaggedTensor
    FakeRaggedTensor.__module__, FakeRaggedTensor.__qualname__ = __name__, "FakeRaggedTensor"


def test_ragged_aux_labels_are_read_without_k2(tmp_path, fake_k2):
    # arcs: [a: 2 words 11 12] [b: none] [c: 13, -1 dropped] [d: -1]
    content = two_fsa_dict()
    content["aux_labels"] = fake_k2([0, 2, 2, 4, 5, 5], [11, 12, 13, -1, -1])
    path = save(tmp_path, content)
    del sys.modules["_k2.ragged"], sys.modules["_k2"]  # reading must not need the module
    first, second = read_k2(path)
    assert first.word_splits.tolist() == [0, 2, 2] and first.word_ids.tolist() == [11, 12]
    assert second.word_splits.tolist() == [0, 1, 1, 1] and second.word_ids.tolist() == [13]


def pickled_globals(path):
    """(module, name) of every GLOBAL opcode in a zip torch file's data.pkl."""
    with zipfile.ZipFile(path) as archive:
        data = archive.read(next(n for n in archive.namelist() if n.endswith("data.pkl")))
    return {tuple(arg.split(" ")) for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


def test_arcs_with_several_words_are_written_as_k2_ragged(tmp_path, fake_k2):
    content = two_fsa_dict()
    # arc words [11 12] [] | [] [13 14 15] []; the final arcs get -1 appended
    content["aux_labels"] = fake_k2([0, 2, 3, 3, 6, 7], [11, 12, -1, 13, 14, 15, -1])
    path = save(tmp_path, content)
    del sys.modules["_k2.ragged"], sys.modules["_k2"]
    lattices = read_k2(path)
    written = lattices_to_k2_dict(lattices)["aux_labels"]
    assert isinstance(written, RaggedStandIn)
    row_splits, name, values = written.state
    assert (row_splits.dtype, values.dtype, name) == (torch.int32, torch.int32, "row_ids1")
    assert row_splits.tolist() == [0, 2, 3, 3, 6, 7]
    assert values.tolist() == [11, 12, -1, 13, 14, 15, -1]
    out = tmp_path / "ours.pt"
    write_k2(out, lattices)
    # the same globals k2's own file has, and no name of ours
    assert pickled_globals(out) == pickled_globals(path) == {
        ("torch._utils", "_rebuild_tensor_v2"), ("torch", "IntStorage"),
        ("torch", "FloatStorage"), ("collections", "OrderedDict"), ("_k2.ragged", "RaggedTensor")}
    for original, copy in zip(lattices, read_k2(out)):
        for field in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores"):
            assert torch.equal(getattr(original, field), getattr(copy, field)), field


def test_k2_loading_our_ragged_file_gets_k2s_class_and_state(tmp_path, fake_k2, monkeypatch):
    # What torch.load in a k2 environment does: import _k2.ragged.RaggedTensor, __setstate__.
    monkeypatch.setattr(fake_k2, "__setstate__", lambda self, state: setattr(self, "parts", state),
                        raising=False)
    first, second = read_k2(save(tmp_path, two_fsa_dict()))
    two_words = first.__class__(**{**first.__dict__, "word_splits": torch.tensor([0, 2, 2]),
                                   "word_ids": torch.tensor([5, 6])})
    out = tmp_path / "ours.pt"
    write_k2(out, [two_words, second])
    loaded = torch.load(out, weights_only=False)["aux_labels"]
    assert type(loaded) is fake_k2
    assert loaded.parts[0].tolist() == [0, 2, 3, 3, 4, 5] and loaded.parts[1] == "row_ids1"
    assert loaded.parts[2].tolist() == [5, 6, -1, 7, -1]


def test_other_globals_are_refused_even_next_to_ragged(tmp_path, fake_k2):
    content = two_fsa_dict()
    content["aux_labels"] = fake_k2([0, 1, 1, 1, 2, 2], [5, 7])
    content["zz_evil"] = types.SimpleNamespace(x=1)
    path = save(tmp_path, content)
    with pytest.raises(InputFormatError, match=r"lats.pt: cannot load.*refusing to load global types"):
        read_k2(path)


def test_evil_global_alone_is_refused(tmp_path):
    path = save(tmp_path, {"arcs": two_fsa_dict()["arcs"], "x": os.getcwd})
    with pytest.raises(InputFormatError, match="lats.pt: cannot load as a torch file"):
        read_k2(path)


@pytest.mark.parametrize("cut", [10, 200, -30])
def test_truncated_file_names_it(tmp_path, cut):
    path = save(tmp_path, two_fsa_dict())
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(InputFormatError, match=f"{path}: cannot load as a torch file"):
        read_k2(path)


def test_garbage_and_non_dict(tmp_path):
    garbage = tmp_path / "g.pt"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(InputFormatError, match="g.pt: cannot load"):
        read_k2(garbage)
    with pytest.raises(InputFormatError, match="expected a dict saved with torch.save, got list"):
        read_k2(save(tmp_path, [1, 2]))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: d.update(arcs=d["arcs"].float()), "'arcs' is torch.float32 tensor of rank 1"),
        (lambda d: d.update(arcs=d["arcs"][:-3]), "17 arc values (expected 4 x 5; truncated?)"),
        (lambda d: d["arcs"].__setitem__(0, 99), "99 FSAs need a header of 202 values (got 28 in all)"),
        (lambda d: d["arcs"].__setitem__(4, 1), "row_splits1 [0, 3, 1] is not non-decreasing"),
        (lambda d: d.update(utt_ids=["a"]), "'utt_ids' has 1 entries (expected one per FSA, 2)"),
        (lambda d: d.update(lm_scores=torch.zeros(4)), "'lm_scores' is (4,)"),
        (lambda d: d.update(aux_labels=torch.zeros(2)), "'aux_labels' is a torch.float32 tensor"),
    ],
)
def test_malformed_files_raise_with_the_problem(tmp_path, change, message):
    content = two_fsa_dict()
    change(content)
    with pytest.raises(InputFormatError) as caught:
        read_k2(save(tmp_path, content))
    assert str(caught.value).startswith(str(tmp_path / "lats.pt"))
    assert message in str(caught.value)


def test_one_bad_fsa_is_a_failure_and_the_other_is_read(tmp_path):
    content = two_fsa_dict()
    content["arcs"][8 + 2] = 4  # FSA "a": first arc's label 5 -> 4, fine
    content["arcs"][8 + 4 + 2] = 3  # FSA "a": the arc into the final state loses its -1
    items = list(iter_k2(save(tmp_path, content)))  # the good lattices first, then failures
    assert isinstance(items[1], Failure) and items[1].utt_id == "a"
    assert "utterance a: arc 1 has label 3 and destination 2" in str(items[1].error)
    assert items[0].utt_id == "b"


def test_symbols_must_cover_the_word_ids(tmp_path):
    path = save(tmp_path, two_fsa_dict())
    table = SymbolTable()
    for word in "abcdefg":
        table.add(word)  # ids 1..7 cover 5 and 7
    assert len(read_k2(path, table)) == 2
    small = SymbolTable()
    small.add("x")
    with pytest.raises(SymbolError, match="lats.pt: utterance a: word id 5 is not in the symbol table"):
        read_k2(path, small)


def test_extra_scores_are_read_per_fsa_aligned_with_the_arcs(tmp_path):
    first, second = read_k2(save(tmp_path, two_fsa_dict()))
    # FSA "b" with its arcs out of source order: the writer sorts them, extras with them
    shuffled = second.__class__(**{**second.__dict__, **{
        name: getattr(second, name)[[2, 0, 1]]
        for name in ("src", "dst", "labels", "am_scores", "ngram_scores")},
        "word_splits": torch.tensor([0, 0, 0, 1])})  # word 7 stays on the label-7 arc
    out = tmp_path / "rescored.pt"
    write_k2(out, [first, shuffled], {"nnlm_scores": [torch.tensor([-1.0, -2.0]),
                                                      torch.tensor([-30.0, -10.0, -20.0])]})
    extras = read_k2_extra_scores(out)
    lattices = read_k2(out)
    assert [sorted(extra) for extra in extras] == [["nnlm_scores"], ["nnlm_scores"]]
    assert extras[0]["nnlm_scores"].tolist() == [-1.0, -2.0]
    # arcs now in src order: 0-0->1 (was index 1), 0-7->1 (index 2), 1-(-1)->2 (index 0)
    assert lattices[1].labels.tolist() == [0, 7, -1]
    assert extras[1]["nnlm_scores"].tolist() == [-10.0, -20.0, -30.0]
    assert extras[1]["nnlm_scores"].dtype == torch.float32


def test_no_extra_scores_and_non_arc_entries_are_skipped(tmp_path):
    content = two_fsa_dict()
    content["tokens"] = torch.arange(5, dtype=torch.int32)  # not float
    content["per_fsa"] = torch.zeros(2)  # not one per arc
    assert read_k2_extra_scores(save(tmp_path, content)) == [{}, {}]


def test_reading_in_chunks_gives_the_lattices_and_failures_of_one_batch(tmp_path):
    rng = random.Random(4)
    lattices = []
    for index in range(30):
        lattice, _ = random_lattice(rng, max_states=9)  # 0-2 words per arc: ragged aux_labels
        lattices.append(replace(lattice, utt_id=f"u{index}"))
    extras = {name: [torch.rand(lattice.num_arcs) for lattice in lattices]
              for name in ("nnlm_scores", "cold_scores")}  # not in sorted order
    content = lattices_to_k2_dict(lattices, extras)
    assert isinstance(content["aux_labels"], RaggedStandIn)
    header = 2 + 2 * (len(lattices) + 1)
    for arc in (0, 57, 58, 140):  # break a few lattices: a label that is not -1 into the final
        content["arcs"][header + 4 * arc + 2] = -7
    content["arcs"][2 + 25:3 + len(lattices)] += 1000  # lattice 24 claims 1000 more states
    path = tmp_path / "lats.pt"
    with open(path, "wb") as handle:
        save_torch_dict(content, handle)  # the ragged aux_labels as k2's class
    batch, failures = read_k2_batch(path)
    assert batch.num_utts == len(lattices) - len(failures)
    failed = [int(failure.utt_id[1:]) for failure in failures]
    assert failed == sorted(failed) and len(failed) >= 3  # in file order, oversized ones too
    assert "claims 1" in str(failures[failed.index(24)].error)
    whole = [(lattice, batch.arc_extras_of(index)) for index, lattice in enumerate(batch.to_lattices())]
    for max_arcs in (1, 17, 60, 10**9):
        chunks, chunk_failures = read_k2_chunks(path, max_arcs=max_arcs)
        assert (len(chunks) == 1) == (max_arcs == 10**9)
        parts = [(lattice, chunk.arc_extras_of(index)) for chunk in chunks
                 for index, lattice in enumerate(chunk.to_lattices())]
        assert [str(f.error) for f in chunk_failures] == [str(f.error) for f in failures]
        assert len(parts) == len(whole)
        for (mine, my_extras), (theirs, their_extras) in zip(parts, whole):
            assert mine.utt_id == theirs.utt_id and mine.num_states == theirs.num_states
            for name in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores",
                         "ngram_scores"):
                assert torch.equal(getattr(mine, name), getattr(theirs, name)), name
            assert list(my_extras) == ["nnlm_scores", "cold_scores"]
            assert all(torch.equal(my_extras[name], their_extras[name]) for name in my_extras)
        assert list(concat_batches(chunks).arc_extras) == ["nnlm_scores", "cold_scores"]
    assert [item.utt_id for item in iter_k2(path)] == (
        [lattice.utt_id for lattice, _ in whole] + [failure.utt_id for failure in failures])


@pytest.mark.parametrize("max_arcs", [1, 4, 5, 9, 100])
def test_chunks_are_greedy_consecutive_and_within_the_limit(max_arcs):
    arc_counts = [3, 2, 4, 0, 5, 1, 1]
    arc_splits = torch.tensor([0] + list(itertools.accumulate(arc_counts)))
    ranges = list(_chunks(arc_splits, max_arcs))
    assert [first for first, _ in ranges] == [0] + [last for _, last in ranges[:-1]]
    assert ranges[-1][1] == len(arc_counts)
    for first, last in ranges:
        size = sum(arc_counts[first:last])
        assert last > first and (size <= max_arcs or last - first == 1)
        assert last == len(arc_counts) or size + arc_counts[last] > max_arcs  # as full as it can be
