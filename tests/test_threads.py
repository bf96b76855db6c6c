"""The public entry points run the lattice engine with one torch thread and restore the caller's."""
from pathlib import Path

import pytest
import torch

import rescorer
from rescorer.algorithms import topsort
from rescorer.formats import read
from rescorer.threads import torch_threads

DEMO = Path(__file__).resolve().parents[1] / "lattices" / "demo-lattices.pt"
WORDS = DEMO.parent / "words.txt"


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_torch_threads_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError):
        with torch_threads(1):
            assert torch.get_num_threads() == 1
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 2


def test_reading_and_best_paths_run_single_threaded(two_threads, monkeypatch):
    seen = []
    original_read, original_kahn = read.read_file, topsort._kahn
    monkeypatch.setattr(read, "read_file", lambda *args: seen.append(torch.get_num_threads())
                        or original_read(*args))
    monkeypatch.setattr(topsort, "_kahn", lambda batch: seen.append(torch.get_num_threads())
                        or original_kahn(batch))
    batch = rescorer.read_lattices(DEMO, WORDS)
    scores, _, _ = rescorer.shortest_paths(batch, batch.am_scores.double())
    totals = rescorer.total_scores(batch, batch.am_scores.double())
    assert scores.shape == totals.shape == (batch.num_utts,)
    assert seen and set(seen) == {1}  # the reader and each schedule ran with one thread
    assert torch.get_num_threads() == 2  # and the caller's setting is back
