"""The WER-versus-scale plot."""
import pytest

from rescorer.outputs.plots import plot_wer_grid


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "wer_grid.png"
    assert plot_wer_grid(path, [0.0, 0.5, 1.0], [30.0, 25.0, 27.5], best_value=0.5)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["wer_grid.png"]
