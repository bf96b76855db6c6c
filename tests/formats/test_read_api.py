"""The public reading API: ``rescorer.read_lattices`` and ``rescorer.read_batch``."""
import dataclasses
import subprocess
import sys

import pytest
import torch

import rescorer
from rescorer.errors import InputFormatError, RescorerError, SymbolError
from rescorer.formats.k2_pt import write_k2
from rescorer.formats.read import concat_batches
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable

# 0 -hello-> 1 -world-> 2: the link into the end node carries a real word, so a
# super-final state 3 is added: arcs 0->1 hello, 1->2 world, 2->3 (-1).
SLF = "UTTERANCE={utt}\nN=3 L=2\nI=0\nI=1 W=hello\nI=2 W=world\n" \
      "J=0 S=0 E=1 a=-1.5 l=-2\nJ=1 S=1 E=2 a=-0.5 l=-1\n"
KALDI = "k1\n0 1 1 1.5,10,\n1 2 2 0.5,3,\n2\n\n"  # words 1 = hello, 2 = world


def words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("<eps> 0\nhello 1\nworld 2\n")
    return path


def test_import_rescorer_stays_cheap():
    code = "import sys, rescorer; print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    assert rescorer.read_lattices.__module__ == "rescorer.formats.read"
    assert rescorer.LatticeBatch is LatticeBatch


def test_mixed_formats_into_one_batch_in_file_order(tmp_path):
    words = words_file(tmp_path)
    (tmp_path / "a.slf").write_text(SLF.format(utt="s1"))
    (tmp_path / "b.txt").write_text(KALDI)
    kaldi = rescorer.read_lattices(tmp_path / "b.txt", words).lattice(0)
    write_k2(tmp_path / "c.pt", [dataclasses.replace(kaldi, utt_id="k2")])
    batch = rescorer.read_lattices([tmp_path / "a.slf", tmp_path / "b.txt", tmp_path / "c.pt"],
                                   words)
    assert batch.utt_ids == ["s1", "k1", "k2"]
    assert batch.state_splits.tolist() == [0, 4, 8, 12]  # 3 states + super-final / + new final
    assert batch.arc_splits.tolist() == [0, 3, 6, 9]
    assert batch.src.tolist() == [0, 1, 2, 4, 5, 6, 8, 9, 10]  # batch-global states
    assert batch.word_ids.tolist() == [1, 2, 1, 2, 1, 2]
    assert batch.am_scores.tolist() == [-1.5, -0.5, 0.0, -10.0, -3.0, 0.0, -10.0, -3.0, 0.0]
    batch.validate()


def test_read_lattices_raises_only_rescorer_errors(tmp_path):
    (tmp_path / "bad.slf").write_text(SLF.format(utt="u").replace("L=2", "L=3"))
    with pytest.raises(InputFormatError, match="bad.slf: utterance u: line 2: L=3 but 2 link"):
        rescorer.read_lattices(tmp_path / "bad.slf")
    (tmp_path / "x.txt").write_text(KALDI)
    with pytest.raises(SymbolError, match="--words words.txt is required"):
        rescorer.read_lattices(tmp_path / "x.txt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFormatError, match="no lattices found"):
        rescorer.read_lattices(tmp_path / "empty")
    with pytest.raises(InputFormatError, match="missing.slf: cannot read"):
        rescorer.read_lattices(tmp_path / "missing.slf")
    with pytest.raises(SymbolError, match="cannot read the symbol table"):
        rescorer.read_lattices(tmp_path / "bad.slf", tmp_path / "no-words.txt")


def test_read_batch_lists_failures_and_keeps_the_rest(tmp_path):
    (tmp_path / "a.slf").write_text(SLF.format(utt="u1"))
    (tmp_path / "b.slf").write_text(SLF.format(utt="u2").replace("a=-0.5", "a=nan"))
    (tmp_path / "c.slf").write_text(SLF.format(utt="u1"))  # repeated id
    (tmp_path / "d.slf").write_text(SLF.format(utt="u3"))
    table = SymbolTable()
    result = rescorer.read_batch([tmp_path], table)
    assert result.batch.utt_ids == ["u1", "u3"] and result.symbols is table
    assert [p.name for p in result.paths] == ["a.slf", "d.slf"]
    problems = {f.path.name: str(f.error) for f in result.failures}
    assert problems.keys() == {"b.slf", "c.slf"}
    assert "utterance u2: arc 1 has a non-finite score" in problems["b.slf"]
    assert f"utterance u1: utterance id appears twice (first in {tmp_path / 'a.slf'}" \
        in problems["c.slf"]
    assert all(isinstance(f.error, RescorerError) for f in result.failures)
    assert list(table) == ["<eps>", "hello", "world"]


def test_concat_batches_renumbers_states_arcs_and_words(tmp_path):
    (tmp_path / "a.slf").write_text(SLF.format(utt="a"))
    one = rescorer.read_lattices(tmp_path / "a.slf", SymbolTable())
    two = LatticeBatch.from_lattices([dataclasses.replace(one.lattice(0), utt_id="b")])
    joined = concat_batches([one, two])
    assert joined.utt_ids == ["a", "b"]
    assert joined.state_splits.tolist() == [0, 4, 8] and joined.word_splits.tolist() == \
        [0, 1, 2, 2, 3, 4, 4]
    assert torch.equal(joined.dst[3:], one.dst + 4)
    joined.validate()
