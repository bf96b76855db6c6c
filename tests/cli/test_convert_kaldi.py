"""``fprescore convert --to kaldi`` and Kaldi specifiers as inputs, through CliRunner."""
import gzip
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.errors import EXIT_ERROR
from rescorer.formats.kaldi_archive import iter_kaldi_archive
from rescorer.lattice.symbols import SymbolTable

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kaldi-samples"
needs_data = pytest.mark.skipif(not SAMPLES.is_dir(), reason="shared data not available")
runner = CliRunner()
SLF = "UTTERANCE=utt1\nN=3 L=2\nI=0\nI=1 W=hello\nI=2 W=world\nJ=0 S=0 E=1 a=-1.5 l=-2\nJ=1 S=1 E=2 a=-0.5 l=-1\n"
FIELDS = ("num_states", "src", "dst", "labels", "word_ids", "am_scores", "ngram_scores",
          "transition_splits", "transition_ids")


@pytest.fixture(scope="module")
def words(tmp_path_factory):
    top = max(int(lat.word_ids.max()) for lat in iter_kaldi_archive(SAMPLES / "lat.1.ark"))
    path = tmp_path_factory.mktemp("words") / "words.txt"
    path.write_text("<eps> 0\n" + "".join(f"w{i} {i}\n" for i in range(1, top + 1)))
    return path


def same_lattices(first, second):
    return len(first) == len(second) and all(
        a.utt_id == b.utt_id and all(torch.equal(torch.as_tensor(getattr(a, name)),
                                                 torch.as_tensor(getattr(b, name)))
                                     for name in FIELDS)
        for a, b in zip(first, second))


@needs_data
def test_kaldi_to_kaldi_text_and_gzip_keep_everything(words, tmp_path):
    original = list(iter_kaldi_archive(SAMPLES / "lat.1.ark"))
    text, zipped = tmp_path / "lat.txt", tmp_path / "lat.2.gz"
    for spec in (f"ark,t:{text}", str(zipped)):
        result = runner.invoke(app, ["convert", f"ark:{SAMPLES / 'lat.1.ark'}", "--words",
                                     str(words), "--to", "kaldi", "--out", spec])
        assert result.exit_code == 0, result.output
        assert f"wrote 10 lattice(s) to {spec}" in " ".join(result.stdout.split())
    assert text.read_text().startswith("CVTE201703_00030_165722_1175 \n0\t1\t")
    assert gzip.decompress(zipped.read_bytes())[:4] == b"CVTE"
    assert same_lattices(original, list(iter_kaldi_archive(text)))
    assert same_lattices(original, list(iter_kaldi_archive(zipped)))


@needs_data
def test_ark_dash_writes_the_archive_to_stdout_and_the_summary_to_stderr(words, tmp_path):
    result = runner.invoke(app, ["convert", str(SAMPLES / "lat.1.ark"), "--words", str(words),
                                 "--to", "kaldi", "--out", "ark:-"])
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == (SAMPLES / "lat.1.ark").read_bytes().replace(
        b"\x03\x00\x81\x0a\x01", b"\x03\x00\x00\x00\x00")  # all but the property bits
    assert "wrote 10 lattice(s) to ark:-" in result.stderr


def test_slf_to_kaldi_writes_ids_of_the_grown_table(tmp_path):
    (tmp_path / "a.slf").write_text(SLF)
    out = tmp_path / "lat.ark"
    command = ["convert", str(tmp_path / "a.slf"), "--to", "kaldi", "--out", f"ark:| gzip -c > {out}"]
    refused = runner.invoke(app, command)  # a pipe has no folder for the grown words.txt
    assert refused.exit_code == EXIT_ERROR and "--words-out" in refused.output
    result = runner.invoke(app, command + ["--words-out", str(tmp_path / "words.txt")])
    assert result.exit_code == 0, result.output
    table = SymbolTable.from_file(tmp_path / "words.txt")
    (lattice,) = iter_kaldi_archive(out)
    assert [table.word(i) for i in lattice.word_ids.tolist()] == ["hello", "world"]
    assert lattice.am_scores.tolist() == [-1.5, -0.5, 0.0]  # plus the final weight's -1 arc


def test_key_with_a_space_is_one_clear_error(tmp_path):
    (tmp_path / "a.slf").write_text(SLF.replace("utt1", '"utt 1"'))
    out = tmp_path / "lat.ark"
    result = runner.invoke(app, ["convert", str(tmp_path / "a.slf"), "--to", "kaldi",
                                 "--out", str(out)])
    assert result.exit_code == EXIT_ERROR and not out.exists()
    assert "utterance id 'utt 1' cannot be a Kaldi key" in " ".join(result.output.split())


def test_bad_specifier_option_is_one_clear_error(tmp_path):
    (tmp_path / "a.slf").write_text(SLF)
    result = runner.invoke(app, ["convert", str(tmp_path / "a.slf"), "--to", "kaldi",
                                 "--out", f"ark,zz:{tmp_path / 'x.ark'}"])
    assert result.exit_code == EXIT_ERROR
    assert "unknown option 'zz'" in " ".join(result.output.split())
