"""End-to-end wall time of ``fprescore rescore`` against the audio duration (issue 7: <= 1/300).

One line, run from the repository root (defaults: asr-dev as one k2 file, K=4 PTB-mini,
``--beam 16 --jobs 2``; each run a fresh ``python -m rescorer rescore`` process, so
python start, imports, model load, worker start, writing and exit all count)::

    .venv/bin/python bench/rescore_wall.py --runs 5

    # other inputs or options: everything after ``--`` goes to ``fprescore rescore``
    .venv/bin/python bench/rescore_wall.py --input ../shared/data/asr-dev/lat --words '' -- --jobs 1

Prints one row per run (wall, CPU seconds of the command and its workers, the
run's own stage CPU seconds from summary.json, the load average before the run),
then min and median wall against 1/300 of the audio. The machine's other jobs
lengthen wall times: compare min-of-N, and read the load column. Every run must
write the same ``onebest.txt`` (checked).
"""
import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "asr-dev"
STAGES = ("read", "prune", "expand", "score", "search", "write")


def _load() -> str:
    """The 1-minute load average (Linux)."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


def _children_cpu() -> float:
    """CPU seconds (user + system) of the waited-for child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_once(command: List[str], out: Path) -> Dict:
    """One ``fprescore rescore`` run: wall and CPU seconds, stage CPU seconds, 1-best digest."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    load, cpu = _load(), _children_cpu()
    started = time.perf_counter()
    result = subprocess.run(command + ["--out", str(out)], env=environment, cwd=ROOT,
                            capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"rescore failed ({result.returncode}):\n{result.stderr[-3000:]}")
    summary = json.loads((out / "summary.json").read_text())["run"]
    digest = hashlib.sha256((out / "onebest.txt").read_bytes()).hexdigest()[:12]
    return {"wall": wall, "cpu": _children_cpu() - cpu, "load": load, "digest": digest,
            "stages": summary["cpu_seconds"], "inside": summary["seconds"]["total"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--input", default="exp/bench/k2/asr-dev.pt",
                        help="lattice file or folder (default: asr-dev converted to one k2 file)")
    parser.add_argument("--words", default="exp/bench/k2/words.txt", help="'' for none (SLF)")
    parser.add_argument("--model", default="exp/bench/ptb-k4/model.pt")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--beam", type=float, default=16.0)
    parser.add_argument("--out", default="/tmp/rescore-wall", help="scratch output folder")
    parser.add_argument("--data", default=str(DATA), help="asr-dev folder (audio.tsv)")
    parser.add_argument("extra", nargs="*", help="after --: more `fprescore rescore` options")
    args = parser.parse_args()
    command = [sys.executable, "-m", "rescorer", "rescore", args.input, "--model", args.model,
               "--beam", f"{args.beam:g}", "--jobs", str(args.jobs), *args.extra]
    if args.words:
        command += ["--words", args.words]
    rows = (Path(args.data) / "audio.tsv").read_text().splitlines()[1:]
    audio = sum(float(row.split("\t")[4]) for row in rows)
    print(f"$ {' '.join(command[1:])}")
    print(f"{os.cpu_count()} CPUs; audio {audio:.1f} s, target 1/300 = {audio / 300:.2f} s\n")
    print("| run | load before | wall s | CPU s | run's own s | " + " | ".join(STAGES) + " | 1-best |")
    print("|---|---:|---:|---:|---:|" + "---:|" * len(STAGES) + "---|")
    runs = []
    for index in range(args.runs):
        run = run_once(command, Path(args.out))
        runs.append(run)
        stages = " | ".join(f"{run['stages'].get(name, 0.0):.2f}" for name in STAGES)
        print(f"| {index + 1} | {run['load']} | {run['wall']:.2f} | {run['cpu']:.2f} "
              f"| {run['inside']:.2f} | {stages} | {run['digest']} |", flush=True)
    walls = sorted(run["wall"] for run in runs)
    same = len({run["digest"] for run in runs}) == 1
    print(f"\nwall min {walls[0]:.2f} s (1/{audio / walls[0]:.0f} of the audio), median "
          f"{statistics.median(walls):.2f} s, max {walls[-1]:.2f} s; target {audio / 300:.2f} s: "
          f"{'met' if walls[0] <= audio / 300 else 'NOT met'} by the min; load now {_load()}; "
          f"onebest.txt {'identical in every run' if same else 'DIFFERS between runs'}")


if __name__ == "__main__":
    main()
