"""Kaldi archives: the shared real samples, exact round trips, specifiers, damaged entries."""
import gzip
import io
import struct
import sys
from pathlib import Path

import pytest
import torch

from rescorer.formats.detect import detect_format, iter_lattices
from rescorer.formats.kaldi_archive import iter_kaldi_archive
from rescorer.formats.kaldi_outputs import write_kaldi_archive
from rescorer.errors import Failure
from rescorer.lattice.fsavec import Lattice

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kaldi-samples"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")
FIELDS = ("num_states", "src", "dst", "labels", "word_splits", "word_ids", "am_scores",
          "ngram_scores", "transition_splits", "transition_ids")

# One CompactLattice by hand. 0 -3-> 1 (costs 1.25, 8, ids 4_4_5), 0 -0-> 1 (0, 2, no ids),
# 1 -6-> 2 (0.5, 3, id 7); state 2 final with (0.25, 1, ids 9), state 1 final with One.
# As a Lattice: + super-final 3; -1 arcs 1->3 (0, 0) and 2->3 (-0.25, -1), in state order.
TEXT = "u1 \n0\t1\t3\t1.25,8,4_4_5\n0\t1\t0\t0,2,\n1\t2\t6\t0.5,3,7\n1\n2\t0.25,1,9\n\n"


def same(first: Lattice, second: Lattice) -> bool:
    return first.utt_id == second.utt_id and all(
        torch.equal(torch.as_tensor(getattr(first, name)), torch.as_tensor(getattr(second, name)))
        for name in FIELDS)


def read(source) -> list:
    items = list(iter_kaldi_archive(source))
    assert not [item for item in items if isinstance(item, Failure)], items
    return items


def test_text_entry_by_hand(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(TEXT)
    (lattice,) = read(path)
    assert lattice.transition_ids is not None and lattice.num_states == 4
    assert lattice.src.tolist() == [0, 0, 1, 1, 2] and lattice.dst.tolist() == [1, 1, 2, 3, 3]
    assert lattice.labels.tolist() == [3, 0, 6, -1, -1]
    assert lattice.am_scores.tolist() == [-8.0, -2.0, -3.0, 0.0, -1.0]
    assert lattice.ngram_scores.tolist() == [-1.25, 0.0, -0.5, 0.0, -0.25]
    assert lattice.transition_splits.tolist() == [0, 3, 3, 4, 4, 5]
    assert lattice.transition_ids.tolist() == [4, 4, 5, 7, 9]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_writing_the_hand_entry_gives_kaldis_text_back(tmp_path):
    (lattice,) = read(_write(tmp_path / "a.txt", TEXT))
    write_kaldi_archive(f"ark,t:{tmp_path / 'b.txt'}", [lattice])
    assert (tmp_path / "b.txt").read_text() == TEXT  # tabs, weight-One lines, final lines


def test_several_final_arcs_from_one_state_and_multiword_arcs_round_trip_as_paths(tmp_path):
    # 0 -[1 2]-> 1, 1 -(-1)-> 2 twice (scores -1 and -2): Kaldi needs a chain and a new state.
    lattice = Lattice(utt_id="m", num_states=3, src=torch.tensor([0, 1, 1]),
                      dst=torch.tensor([1, 2, 2]), labels=torch.tensor([5, -1, -1]),
                      word_splits=torch.tensor([0, 2, 2, 2]), word_ids=torch.tensor([1, 2]),
                      am_scores=torch.tensor([-4.0, -1.0, -2.0]),
                      ngram_scores=torch.tensor([-0.5, 0.0, -0.25]))
    write_kaldi_archive(tmp_path / "m.ark", [lattice])
    (back,) = read(tmp_path / "m.ark")
    # Kaldi states: 0, 1, then 2 (extra final of weight One), 3 (inside the chain);
    # arcs 0 -1-> 3 (weight), 3 -2-> 1 (One), 1 -0-> 2 (-2's weight); finals 1 (-1's), 2 (One).
    assert back.num_states == 5 and back.word_ids.tolist() == [1, 2]
    assert sorted(zip(back.src.tolist(), back.dst.tolist(), back.labels.tolist(),
                      back.am_scores.tolist(), back.ngram_scores.tolist())) == [
        (0, 3, 1, -4.0, -0.5), (1, 2, 0, -2.0, -0.25), (1, 4, -1, -1.0, 0.0),
        (2, 4, -1, 0.0, 0.0), (3, 1, 2, 0.0, 0.0)]


@needs_data
def test_shared_samples_read_without_error():
    binary, text = read(DATA / "lat.1.ark"), read(DATA / "lat.txt.ark")
    assert len(binary) == 10 and all(lat.utt_id.startswith("CVTE201703_00030_") for lat in binary)
    assert [lat.num_arcs for lat in binary[:3]] == [268, 237, 132]  # arcs + one -1 arc per final
    # 2,553 lines: 2,144 arcs and 409 final states, each final weight a -1 arc
    assert text[0].utt_id == "test" and int((text[0].labels != -1).sum()) == 2144
    assert text[0].num_arcs == 2553
    assert detect_format(DATA / "lat.1.ark") == detect_format(DATA / "lat.txt.ark") == "kaldi"


@needs_data
@pytest.mark.parametrize("name", ["lat.1.ark", "lat.txt.ark"])
def test_binary_text_binary_round_trip_is_exact(tmp_path, name):
    original = read(DATA / name)
    write_kaldi_archive(f"ark,t:{tmp_path / 'lat.txt'}", original)
    write_kaldi_archive(f"ark:{tmp_path / 'lat.ark'}", read(tmp_path / "lat.txt"))
    again = read(tmp_path / "lat.ark")
    assert len(again) == len(original) and all(map(same, original, again))


@needs_data
def test_binary_rewrite_is_byte_identical_but_for_the_property_bits(tmp_path):
    write_kaldi_archive(tmp_path / "lat.ark", read(DATA / "lat.1.ark"))
    ours, kaldi = (tmp_path / "lat.ark").read_bytes(), (DATA / "lat.1.ark").read_bytes()
    assert len(ours) == len(kaldi)
    differ = [i for i in range(len(ours)) if ours[i] != kaldi[i]]
    key = len("CVTE201703_00030_165722_1175 ")
    properties = key + 4 + 10 + 20 + 8  # magic, "vector", "compactlattice44", version, flags
    # Each entry differs only in its uint64 properties (we claim kExpanded|kMutable only:
    # Kaldi's 0x10a810003 has bytes 03 00 81 0a 01, ours 03 00 00 00 00).
    assert differ[:3] == [properties + 2, properties + 3, properties + 4]
    assert len(differ) <= 3 * 10


@needs_data
def test_every_specifier_form(tmp_path, monkeypatch):
    expected = read(DATA / "lat.1.ark")
    gz = tmp_path / "lat.1.gz"
    gz.write_bytes(gzip.compress((DATA / "lat.1.ark").read_bytes()))
    forms = {"file": str(gz), "ark": f"ark:{DATA / 'lat.1.ark'}",
             "pipe": f"ark:gunzip -c {gz}|", "options": f"ark,s,cs:{gz}"}
    for form, spec in forms.items():
        assert all(map(same, expected, read(spec))), form
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((DATA / "lat.1.ark").read_bytes())))
    assert all(map(same, expected, read("ark:-")))
    # scp with byte offsets (as `lattice-copy ark,scp:` writes them), listed out of order
    data = (DATA / "lat.1.ark").read_bytes()
    offsets = {lat.utt_id: data.index(lat.utt_id.encode() + b" ") + len(lat.utt_id) + 1
               for lat in expected}
    scp = tmp_path / "lat.scp"
    scp.write_text("".join(f"{key} {DATA / 'lat.1.ark'}:{offset}\n"
                           for key, offset in reversed(offsets.items())))
    assert all(map(same, expected[::-1], read(f"scp:{scp}")))


def test_ark_stdin_and_text_scp_with_offsets(tmp_path, monkeypatch):
    archive = tmp_path / "two.txt"
    archive.write_text(TEXT + TEXT.replace("u1", "u2"))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(archive.read_bytes())))
    assert [lat.utt_id for lat in read("ark:-")] == ["u1", "u2"]
    scp = tmp_path / "two.scp"
    scp.write_text(f"u2 {archive}:{len(TEXT) + 3}\n")  # after "u2 ", at the newline
    (lattice,) = read(f"scp:{scp}")
    assert lattice.utt_id == "u2" and lattice.num_arcs == 5


def test_specifiers_go_through_iter_lattices(tmp_path):
    archive = _write(tmp_path / "a.txt", TEXT)
    words = tmp_path / "words.txt"
    words.write_text("".join(f"w{i} {i}\n" if i else "<eps> 0\n" for i in range(8)))
    from rescorer.lattice.symbols import SymbolTable
    (lattice,) = iter_lattices([f"ark:cat {archive} |"], SymbolTable.from_file(words))
    assert lattice.utt_id == "u1"


@needs_data
def test_damaged_binary_entry_is_skipped_with_file_key_and_offset(tmp_path):
    data = bytearray((DATA / "lat.1.ark").read_bytes())
    keys = [lat.utt_id for lat in read(DATA / "lat.1.ark")]
    third = data.index(keys[2].encode())
    body = third + len(keys[2]) + 1 + 74  # key, space, header
    data[body + 4:body + 12] = b"\xff" * 8  # state 0: a negative id count, a garbage arc count
    path = tmp_path / "bad.ark"
    path.write_bytes(bytes(data))
    items = list(iter_kaldi_archive(path))
    assert [item.utt_id for item in items] == keys
    failure = items[2]
    assert isinstance(failure, Failure)
    assert str(failure.error).startswith(f"{path}: utterance {keys[2]}: byte {third}: ")
    assert all(item.transition_ids is not None for item in items[:2] + items[3:])


@pytest.mark.parametrize("field, values", [
    ("transition id", (6, 6, 0.5, 3.0, 1, -7)),  # the text reader rejects these too
    ("label", (-6, 6, 0.5, 3.0, 1, 7)),
])
def test_negative_labels_and_transition_ids_in_a_binary_entry_are_a_failure(tmp_path, field, values):
    (lattice,) = read(_write(tmp_path / "a.txt", TEXT))
    write_kaldi_archive(f"ark:{tmp_path / 'b.ark'}", [lattice])
    data = (tmp_path / "b.ark").read_bytes()
    arc = struct.pack("<iiffii", 6, 6, 0.5, 3.0, 1, 7)  # arc 1 -> 2: word 6, weight 0.5,3,[7]
    assert data.count(arc) == 1
    (tmp_path / "b.ark").write_bytes(data.replace(arc, struct.pack("<iiffii", *values)))
    (failure,) = iter_kaldi_archive(tmp_path / "b.ark")
    assert isinstance(failure, Failure) and failure.utt_id == "u1"
    assert f"negative {field}" in str(failure.error)


@needs_data
def test_truncated_binary_archive_fails_only_the_last_entry(tmp_path):
    data = (DATA / "lat.1.ark").read_bytes()
    path = tmp_path / "cut.ark"
    path.write_bytes(data[:-100])
    items = list(iter_kaldi_archive(path))
    assert all(item.transition_ids is not None for item in items[:9])
    assert isinstance(items[9], Failure) and "truncated or corrupt FST" in str(items[9].error)


@pytest.mark.parametrize("num_states, message", [
    (2**31 - 1, "header declares 2147483647 states but only"),
    (2**40, "header declares 1099511627776 states (expected 0..2147483647)"),
])
def test_huge_declared_state_count_is_rejected_before_allocating(tmp_path, num_states, message):
    header = (struct.pack("<i", 2125659606) + struct.pack("<i", 6) + b"vector"
              + struct.pack("<i", 16) + b"compactlattice44"
              + struct.pack("<iiQqqq", 2, 0, 3, 0, num_states, 0))
    path = tmp_path / "huge.ark"
    path.write_bytes(b"k1 " + header + b"\x00" * 64)
    (failure,) = iter_kaldi_archive(path)
    assert isinstance(failure, Failure) and failure.utt_id == "k1"
    assert message in str(failure.error) and f"{path}: utterance k1: byte 0: " in str(failure.error)


def test_missing_file_and_failing_command_are_one_failure_each(tmp_path):
    (missing,) = iter_kaldi_archive(f"ark:{tmp_path / 'nope.ark'}")
    assert isinstance(missing, Failure) and "cannot read" in str(missing.error)
    (failed,) = iter_kaldi_archive("ark:exit 3 |")
    assert isinstance(failed, Failure)
    assert str(failed.error) == "exit 3: the command exited with status 3"


@needs_data
def test_stopping_early_on_a_pipe_ends_the_command_quietly():
    items = iter_kaldi_archive(f"ark:cat {DATA / 'lat.1.ark'} {DATA / 'lat.1.ark'} |")
    first = next(items)
    items.close()  # e.g. --strict at the first failure: no RuntimeError, no hang
    assert first.utt_id == "CVTE201703_00030_165722_1175"
