"""Reading speed of today's readers against a baseline revision, side by side in one run.

Usage: .venv/bin/python bench/read_speed.py [--baseline REV] [--rounds 5] [--limit N]

For each input set (asr-dev's SLF files, slf-samples' SLF files, asr-dev as one k2
file) every round reads the whole set once with the baseline's code (``git archive
REV rescorer``, so the old reader stays importable only here) and once with the
working tree's, each in a fresh process with one torch thread, alternating, and
reports the minimum over the rounds of the CPU and wall seconds, and arcs/s. A third
read per round uses the working tree without its compiled SLF block parser (the
numpy route that a build without a C compiler uses). A baseline with ``setup.py`` gets
its compiled parser built, so both sides take the same route (printed). The timed read
starts after the readers are imported (``rescorer.read_lattices`` imports them lazily;
that import is printed apart).
Both call ``rescorer.read_lattices`` (the baseline must have it: 5100d1f is the
last revision before the vectorised text readers). The load average (``uptime``)
is printed before and after. Results: docs/results/readers.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data"

CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from rescorer.lattice.symbols import SymbolTable
kind, paths, words = sys.argv[2], sys.argv[3].split("\n"), sys.argv[4] or None
table = SymbolTable.from_file(words) if words else SymbolTable()
import rescorer
started = time.process_time()
read_lattices = rescorer.read_lattices  # imports the readers (compiled afresh: no .pyc here)
imports = time.process_time() - started
try:
    import rescorer.formats.slf_columns as columns
except ImportError:  # a baseline before the bulk SLF reader
    columns = None
if kind == "numpy route":
    columns._slf_block = None
compiled = getattr(columns, "_slf_block", None) is not None
wall, cpu = time.perf_counter(), time.process_time()
batch = read_lattices(paths, table)
print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall,
                  "utts": batch.num_utts, "arcs": batch.num_arcs, "compiled": compiled,
                  "imports": imports}))
"""


def measure(code: Path, kind: str, paths, words) -> dict:
    """One read of ``paths`` by the code under ``code`` in a fresh process."""
    out = subprocess.run([sys.executable, "-c", CHILD, str(code), kind,
                          "\n".join(map(str, paths)), str(words or "")],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def extract_baseline(revision: str, folder: Path, tar_path: Path) -> None:
    """``rescorer/`` of ``revision`` into ``folder``, its compiled SLF block parser built
    (as an install builds it) when the revision has one, so both sides run the same route."""
    has_setup = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{revision}:setup.py"],
                               capture_output=True).returncode == 0
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "rescorer"]
                             + (["setup.py"] if has_setup else []),
                             check=True, capture_output=True).stdout
    tar_path.write_bytes(archive)
    with tarfile.open(tar_path) as tar:
        tar.extractall(folder)
    if has_setup:
        subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=folder,
                       check=True, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="5100d1f", help="git revision of the old readers")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=None, help="asr-dev files to read")
    args = parser.parse_args()
    print("load before:", os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "baseline"
        old.mkdir()
        extract_baseline(args.baseline, old, Path(tmp) / "old.tar")
        asr_dev = sorted((DATA / "asr-dev" / "lat").iterdir())[:args.limit]
        samples = sorted((DATA / "slf-samples" / "ami").iterdir()) + \
            [DATA / "slf-samples" / "theanolm" / "lattice.slf"]
        k2_file, words = Path(tmp) / "asr-dev.pt", Path(tmp) / "words.txt"
        subprocess.run([sys.executable, "-m", "rescorer", "convert", *map(str, asr_dev), "--to",
                        "k2", "--out", str(k2_file), "--words-out", str(words)],
                       check=True, capture_output=True, cwd=ROOT)
        sets = [("asr-dev SLF (gz)", asr_dev, None), ("slf-samples SLF", samples, None),
                ("asr-dev as one k2 file", [k2_file], words)]
        rows = []
        for name, paths, table in sets:
            runs = {"baseline": [], "current": [], "numpy route": []}
            for _ in range(args.rounds):
                runs["baseline"].append(measure(old, "baseline", paths, table))
                runs["current"].append(measure(ROOT, "current", paths, table))
                runs["numpy route"].append(measure(ROOT, "numpy route", paths, table))
            rows.append((name, len(paths), runs))
    print("load after:", os.getloadavg())
    print(f"baseline {args.baseline}, {args.rounds} rounds, minimum of each, 1 torch thread")
    compiled = {kind: rows[0][2][kind][0]["compiled"] for kind in ("baseline", "current")}
    print("compiled SLF block parser:", ", ".join(f"{kind} {'yes' if on else 'no'}"
                                                  for kind, on in compiled.items()))
    imports = {kind: min(run["imports"] for _, _, runs in rows for run in runs[kind])
               for kind in ("baseline", "current")}
    print("importing the readers (not in the table), min CPU s:",
          ", ".join(f"{kind} {seconds:.3f}" for kind, seconds in imports.items()))
    print("| input | files | arcs | baseline CPU s | current CPU s | baseline arcs/s (CPU) "
          "| current arcs/s (CPU) | CPU speed-up | baseline wall s | current wall s "
          "| current, numpy route CPU s | compiled / numpy route |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, files, runs in rows:
        best = {kind: {key: min(run[key] for run in values) for key in ("cpu", "wall")}
               for kind, values in runs.items()}
        arcs = runs["current"][0]["arcs"]
        assert arcs == runs["baseline"][0]["arcs"] == runs["numpy route"][0]["arcs"], \
            "the readers read different arcs"
        old_cpu, new_cpu = best["baseline"]["cpu"], best["current"]["cpu"]
        numpy_cpu = best["numpy route"]["cpu"]
        print(f"| {name} | {files} | {arcs:,} | {old_cpu:.2f} | {new_cpu:.2f} | "
              f"{arcs / old_cpu:,.0f} | {arcs / new_cpu:,.0f} | {old_cpu / new_cpu:.2f}x | "
              f"{best['baseline']['wall']:.2f} | {best['current']['wall']:.2f} | "
              f"{numpy_cpu:.2f} | {numpy_cpu / new_cpu:.2f}x |")


if __name__ == "__main__":
    main()
