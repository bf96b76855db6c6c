"""CTM lines: start, duration, word, confidence; atomic sorted file."""
import pytest
import torch

from rescorer.outputs.ctm import ctm_lines, write_ctm


def test_lines_and_file(tmp_path):
    times = torch.tensor([[0.0, 0.5], [0.5, 1.25]], dtype=torch.float64)
    lines = ctm_lines("u1", ["hello", "world"], times, torch.tensor([0.9, 0.25]))
    assert lines == ["u1 1 0.000 0.500 hello 0.9000", "u1 1 0.500 0.750 world 0.2500"]
    path = tmp_path / "out" / "hyp.ctm"
    write_ctm(path, {"u2": (["x"], torch.tensor([[1.0, 2.0]]), torch.tensor([1.0])),
                     "u1": (["hello"], times[:1], torch.tensor([0.5]))})
    assert path.read_text() == "u1 1 0.000 0.500 hello 0.5000\nu2 1 1.000 1.000 x 1.0000\n"


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="u1: 2 words, 1 times"):
        ctm_lines("u1", ["a", "b"], torch.zeros(1, 2), torch.zeros(1))
