"""torchrun DDP on CPU (gloo, 2 processes) matches a single process with the same global batch.

The DDP run also reads its training text as two files through a glob (one
corpus, the same cache content), and writes mid-epoch checkpoints, which gather
both ranks' RNG states and carries to rank 0. A third run is killed (the whole
job, SIGKILL) mid-epoch and resumed: it equals the uninterrupted DDP run bitwise
(with dropout 0, so this checks positions and carries; per-rank RNG restoring
is the same code the single-process resume test checks with dropout).

Not bitwise: each process averages its own rows' loss and DDP all-reduces the
gradients, so the float sums run in a different order than in one process.
With dropout 0 (dropout masks are drawn per process) the results agree to
float32 rounding; we allow a relative 1e-5 on perplexities and 1e-5 on weights.
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

from training_builders import make_corpus

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = Path(sys.executable).parent / "torchrun"


def run(command, out: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    return json.loads((out / "log.jsonl").read_text().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.skipif(not TORCHRUN.exists(), reason="torchrun is not installed beside python")
@pytest.mark.skipif(
    int(torch.__version__.split(".")[0]) < 2 and sys.version_info >= (3, 11),
    reason="torch 1.13's torchrun itself fails on Python 3.11 (elastic launcher; fixed in torch 2.0)",
)
def test_two_process_gloo_run_matches_single_process(tmp_path):
    train, valid, test = make_corpus(tmp_path)
    options = [
        "train", "--train", str(train), "--valid", str(valid), "--test", str(test), "--embed", "16", "--hidden", "16",
        "--batch-size", "8", "--bptt", "12", "--epochs", "2", "--iterations", "2", "--lr", "0.01",
        "--device", "cpu", "--threads", "1",
    ]
    single = run([sys.executable, "-m", "rescorer", *options, "--out", str(tmp_path / "one")], tmp_path / "one")
    lines = train.read_text().splitlines(keepends=True)
    (tmp_path / "part-1.txt").write_text("".join(lines[:100]))
    (tmp_path / "part-2.txt").write_text("".join(lines[100:]))
    options[options.index(str(train))] = str(tmp_path / "part-*.txt")
    ddp_command = [str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "rescorer"]
    double = run([*ddp_command, *options, "--out", str(tmp_path / "two"), "--save-every-steps", "7"], tmp_path / "two")
    assert double["epochs_run"] == single["epochs_run"] == 2
    for key in ("train_ppl", "valid_ppl", "test_ppl"):
        assert double[key] == pytest.approx(single[key], rel=1e-5)
    assert single["test_ppl"] < 8.0  # it did learn
    one = safe_torch_load(tmp_path / "one" / "model.pt")["model"]
    two = safe_torch_load(tmp_path / "two" / "model.pt")["model"]
    for name in one:
        assert torch.allclose(one[name], two[name], rtol=0, atol=1e-5), name
    training = safe_torch_load(tmp_path / "two" / "last.pt")["training"]
    assert training["world_size"] == 2 and len(training["ranks"]) == 2
    assert not torch.equal(training["ranks"][0]["rng"]["cpu"], training["ranks"][1]["rng"]["cpu"])
    # Only rank 0 wrote files.
    assert sorted(path.name for path in (tmp_path / "two").iterdir()) == ["cache", "last.pt", "log.jsonl", "model.pt"]

    # The whole job killed with -9 mid-epoch, resumed with the same 2 processes: bitwise the same run.
    resumed = tmp_path / "three"
    command = [*ddp_command, *options, "--out", str(resumed), "--save-every-steps", "7"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    job = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    while not (resumed / "last.pt").exists() and job.poll() is None:
        time.sleep(0.01)
    os.killpg(job.pid, signal.SIGKILL)  # torchrun and both workers
    job.wait(timeout=60)
    position = safe_torch_load(resumed / "last.pt")["training"]["ranks"][1]["position"]
    assert position is not None and position["step"] % 7 == 0, "killed at an epoch end"
    again = run([*command, "--resume"], resumed)
    assert again == double
    final = safe_torch_load(resumed / "model.pt")["model"]
    for name in two:
        assert torch.equal(final[name], two[name]), name
