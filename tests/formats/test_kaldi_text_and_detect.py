"""Kaldi text lattices, format detection and per-utterance failures across files."""
from pathlib import Path

import pytest
import torch

from rescorer import read_lattices
from rescorer.errors import Failure, InputFormatError
from rescorer.formats.detect import detect_format, iter_lattices
from rescorer.formats.k2_pt import write_k2
from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")

# Two utterances. u1 (compact): 0 -4-> 1 (graph 1.5, acoustic 10), 0 -0-> 1 (0, 2),
# 1 -5-> 2 (0.5, 3); final state 2 with weight (0.25, 1) and final state 1 (no weight).
#   -> arcs + -1 arcs 1->3 and 2->3 (final weights in state order, as Kaldi keeps them):
#   am = -[10, 2, 3, 0, 1], ngram = -[1.5, 0, 0.5, 0, 0.25]
# u2 (non-compact, 5 columns, olabel = word): 0 -(1:7)-> 1 (2, 4); final 1.
KALDI = """u1
0 1 4 1.5,10,3_4_4
0 1 0 0,2,
1 2 5 0.5,3,7
2 0.25,1,
1

u2
0 1 1 7 2,4
1
"""


def words_file(tmp_path, count=10):
    path = tmp_path / "words.txt"
    path.write_text("".join(f"w{i} {i}\n" if i else "<eps> 0\n" for i in range(count)))
    return path


def test_kaldi_text_by_hand(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text(KALDI)
    first, second = read_lattices(path, SymbolTable.from_file(words_file(tmp_path))).to_lattices()
    assert (first.utt_id, first.num_states, second.utt_id, second.num_states) == ("u1", 4, "u2", 3)
    assert first.src.tolist() == [0, 0, 1, 1, 2] and first.dst.tolist() == [1, 1, 2, 3, 3]
    assert first.labels.tolist() == [4, 0, 5, -1, -1] and first.word_ids.tolist() == [4, 5]
    assert first.am_scores.tolist() == [-10.0, -2.0, -3.0, 0.0, -1.0]
    assert first.ngram_scores.tolist() == [-1.5, 0.0, -0.5, 0.0, -0.25]
    assert second.labels.tolist() == [7, -1] and second.am_scores.tolist() == [-4.0, 0.0]


def test_kaldi_bad_line_fails_only_that_utterance(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text(KALDI.replace("1 2 5 0.5,3,7", "1 2 5 0.5;3"))
    items = list(iter_lattices([path], SymbolTable.from_file(words_file(tmp_path))))
    # per file: the good lattices, then the failures
    assert items[0].utt_id == "u2" and isinstance(items[1], Failure)
    assert str(items[1].error) == (f"{path}: utterance u1: line 4: bad weight '0.5;3' "
                                   "(expected graph_cost,acoustic_cost) in '1 2 5 0.5;3'")


def test_kaldi_ids_beyond_words_txt(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text(KALDI)
    items = list(iter_lattices([path], SymbolTable.from_file(words_file(tmp_path, count=6))))
    assert items[0].utt_id == "u1"  # ids 4, 5 are known
    assert isinstance(items[1], Failure)
    assert "utterance u2: word id 7 is not in" in str(items[1].error)


def test_detection_and_missing_words_for_id_formats(tmp_path):
    kaldi = tmp_path / "a" / "lat.txt"
    kaldi.parent.mkdir()
    kaldi.write_text(KALDI)
    slf = tmp_path / "a" / "b" / "x.lat"
    slf.parent.mkdir()
    slf.write_text("N=2 L=1\nI=0\nI=1 W=hello\nJ=0 S=0 E=1 a=-1 l=-2\n")
    k2 = tmp_path / "k.pt"
    table = SymbolTable.from_file(words_file(tmp_path))
    write_k2(k2, read_lattices(kaldi, table).to_lattices())
    assert [detect_format(p) for p in (kaldi, slf, k2)] == ["kaldi", "slf", "k2"]
    items = list(iter_lattices([tmp_path / "a", k2], SymbolTable()))
    # folder recursion is sorted: a/b/x.lat, then a/lat.txt; then k.pt
    assert items[0].utt_id == "x" and items[0].num_states == 3
    assert [type(i).__name__ for i in items[1:]] == ["Failure", "Failure"]
    assert "Kaldi text lattice with word ids: --words words.txt is required" in str(items[1].error)
    assert str(items[2].error).startswith(f"{k2}: this is a k2 lattice")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(InputFormatError, match="empty file"):
        detect_format(empty)


@needs_data
def test_theanolm_slf_and_kaldi_describe_the_same_lattice():
    # The Kaldi sample's word ids, matched by hand against the SLF words of the same arcs.
    table = SymbolTable.from_file(FIXTURES / "theanolm_words.txt")
    (slf,), _ = read_slf(DATA / "slf-samples/theanolm/lattice.slf", table)
    (kaldi,) = read_lattices(DATA / "slf-samples/theanolm/lattice.lat", table).to_lattices()
    assert (slf.num_states, slf.num_arcs) == (kaldi.num_states, kaldi.num_arcs) == (24, 39)
    assert slf.word_ids.numel() == kaldi.word_ids.numel() == 33
    # Same multiset of (word, acoustic score) over arcs; the Kaldi file orders arcs differently.
    def arcs(lattice):
        words = [tuple(lattice.arc_words(a)) for a in range(lattice.num_arcs)]
        return sorted(zip(words, lattice.am_scores.tolist()))
    assert arcs(slf) == arcs(kaldi)
    # Kaldi graph costs are the raw -l; SLF applies lmscale 12.3 and wdpenalty 0.7.
    slf_to = slf.ngram_scores[slf.labels == table.id("to")]
    kaldi_to = kaldi.ngram_scores[kaldi.labels == table.id("to")]
    assert torch.allclose(slf_to, 12.3 * kaldi_to + 0.7)


@needs_data
def test_read_lattices_grows_one_table_across_slf_files():
    table = SymbolTable()
    batch = read_lattices([DATA / "slf-samples/ami"], table)
    assert batch.num_utts == 8 and table.grown
    assert int(batch.word_ids.max()) == table.max_id
