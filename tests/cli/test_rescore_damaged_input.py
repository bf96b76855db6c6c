"""Issue 8 item 1: a damaged gzip file among good ones is one listed failure, exit code 3."""
import gzip
import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.data.vocab import WordVocabulary
from rescorer.errors import EXIT_PARTIAL
from rescorer.formats.k2_pt import write_k2

runner = CliRunner()
_spec = importlib.util.spec_from_file_location(
    "rescoring_builders", Path(__file__).resolve().parents[1] / "rescoring" / "rescoring_builders.py")
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)


def damaged(path: Path, kind: str) -> Path:
    data = bytearray(gzip.compress(b"VERSION=1.0\nN=2 L=1\nI=0\nI=1\nJ=0 S=0 E=1 a=0 l=0\n" * 40))
    if kind == "flipped":
        for index in range(10, 18):
            data[index] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("kind", ["flipped", "truncated"])
def test_damaged_gzip_is_one_failure_and_the_rest_is_rescored(tmp_path, jobs, kind):
    vocabulary = WordVocabulary(builders.LM_WORDS)
    model = builders.save_model(tmp_path / "model.pt",
                                builders.tiny_model(vocabulary.size, iterations=2), vocabulary)
    words = tmp_path / "words.txt"
    builders.symbol_table().write(words)
    folder = tmp_path / "lats"
    folder.mkdir()
    write_k2(folder / "a.pt", [builders.tiny_lattice("utt1")])
    damaged(folder / "b.slf.gz", kind)
    write_k2(folder / "c.pt", [builders.tiny_lattice("utt2")])
    result = runner.invoke(app, ["rescore", str(folder), "--model", str(model), "--words",
                                 str(words), "--out", str(tmp_path / "out"), "--jobs", jobs])
    assert result.exit_code == EXIT_PARTIAL, result.output
    assert "Traceback" not in result.output and "b.slf.gz" in result.stderr
    onebest = (tmp_path / "out" / "onebest.txt").read_text().split("\n")
    assert [line.split()[0] for line in onebest if line] == ["utt1", "utt2"]
