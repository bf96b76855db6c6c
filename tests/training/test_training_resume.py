"""A run killed with SIGKILL and resumed equals the uninterrupted run, bitwise on CPU.

Killed at an epoch end (``last.pt`` of every epoch) and mid-epoch
(``--save-every-steps``, ``last.pt`` holding the data position, the solver carry
and the RNG states).
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from rescorer.formats.torch_pickle import safe_torch_load

from training_builders import write_corpus

REPO = Path(__file__).resolve().parents[2]


def train_process(corpus, out: Path, *extra: str) -> subprocess.Popen:
    train, valid, test = corpus
    command = [
        sys.executable, "-m", "rescorer", "train", "--train", str(train), "--valid", str(valid), "--test", str(test),
        "--out", str(out), "--embed", "16", "--hidden", "16", "--batch-size", "8", "--bptt", "12", "--epochs", "3",
        "--dropout", "0.2", "--iterations", "2", "--seed", "5", "--device", "cpu", "--threads", "1", *extra,
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()


def ppls(out: Path):
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [(record.get("train_ppl"), record.get("valid_ppl"), record.get("test_ppl")) for record in records]


def kill_at_first_checkpoint(corpus, out: Path, *extra: str) -> dict:
    """Start a run, SIGKILL it once last.pt exists; returns last.pt's training entry."""
    killed = train_process(corpus, out, *extra)
    last = out / "last.pt"
    while not last.exists() and killed.poll() is None:
        time.sleep(0.01)
    killed.send_signal(signal.SIGKILL)
    killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    return safe_torch_load(last)["training"]


def assert_same_run(out: Path, reference: Path) -> None:
    assert ppls(out) == ppls(reference)
    full = safe_torch_load(reference / "model.pt")["model"]
    resumed = safe_torch_load(out / "model.pt")["model"]
    assert full.keys() == resumed.keys()
    for name in full:
        assert torch.equal(full[name], resumed[name]), name


@pytest.mark.slow
def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tmp_path):
    corpus = tuple(write_corpus(tmp_path / name, count, seed) for name, count, seed in
                   (("train.txt", 2000, 1), ("valid.txt", 40, 2), ("test.txt", 40, 3)))
    finish(train_process(corpus, tmp_path / "full"))

    training = kill_at_first_checkpoint(corpus, tmp_path / "killed")
    assert training["epoch"] < 3, "the run ended before it could be killed; make its epochs longer"
    finish(train_process(corpus, tmp_path / "killed", "--resume"))
    assert_same_run(tmp_path / "killed", tmp_path / "full")

    # Mid-epoch: every 10 of the epoch's 167 steps.
    training = kill_at_first_checkpoint(corpus, tmp_path / "mid", "--save-every-steps", "10")
    position = training["ranks"][0]["position"]
    assert position is not None and position["step"] % 10 == 0, "killed at an epoch end; make epochs longer"
    assert training["epoch"] < 3
    finish(train_process(corpus, tmp_path / "mid", "--resume", "--save-every-steps", "10"))
    assert_same_run(tmp_path / "mid", tmp_path / "full")
