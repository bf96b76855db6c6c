"""Kaldi lattice reading speed, arcs/s: binary and text archives, today's reader vs older ones.

Usage: .venv/bin/python bench/kaldi_read_speed.py [--copies 100] [--repeats 3] [--baseline REV]

The inputs are the shared real samples (../shared/data/kaldi-samples: 10 binary
CompactLattices, one text CompactLattice) repeated ``--copies`` times under distinct
keys, written to a temporary folder as a binary archive, a text archive (the same
lattices, ``ark,t``), and the gzipped binary archive. "baseline" rows are ``iter_kaldi_archive`` of ``--baseline`` (``git archive REV
rescorer``, run in a subprocess on the same files; default 5100d1f, the last
revision before the vectorised text parser), so today's and the previous reader
are timed side by side in one run. Arcs count the Kaldi arcs plus one per final
state (the -1 arcs of the resulting lattices). Reported: best of ``--repeats``
runs, CPU process time and wall time, and the load average before and after.
Results are in docs/results/kaldi.md.
"""
import argparse
from dataclasses import replace
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / ".." / "shared" / "data" / "kaldi-samples"


def build_inputs(folder: Path, copies: int) -> dict:
    from rescorer.formats.kaldi_archive import iter_kaldi_archive
    from rescorer.formats.kaldi_outputs import write_kaldi_archive

    originals = list(iter_kaldi_archive(SAMPLES / "lat.1.ark")) + list(
        iter_kaldi_archive(SAMPLES / "lat.txt.ark"))
    lattices = []
    for copy in range(copies):
        for lattice in originals:
            lattices.append(replace(lattice, utt_id=f"{lattice.utt_id}-{copy}"))
    paths = {"binary": folder / "lat.ark", "text": folder / "lat.txt", "binary.gz": folder / "lat.gz"}
    write_kaldi_archive(f"ark:{paths['binary']}", lattices)
    write_kaldi_archive(f"ark,t:{paths['text']}", lattices)
    write_kaldi_archive(f"ark:{paths['binary.gz']}", lattices)
    return paths


def timed(read, path, repeats: int):
    best = None
    for _ in range(repeats):
        cpu, wall = time.process_time(), time.perf_counter()
        items = list(read(path))
        run = (time.process_time() - cpu, time.perf_counter() - wall)
        best = run if best is None or run[0] < best[0] else best
    failures = [item for item in items if not hasattr(item, "num_arcs")]
    if failures:
        sys.exit(f"{path}: {len(failures)} lattices failed: {failures[0].error}")
    return len(items), sum(item.num_arcs for item in items), best


BASELINE_CHILD = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
import torch
torch.set_num_threads(1)
from rescorer.formats.kaldi_archive import iter_kaldi_archive
best = None
for _ in range(int(sys.argv[3])):
    cpu, wall = time.process_time(), time.perf_counter()
    items = list(iter_kaldi_archive(sys.argv[2]))
    run = (time.process_time() - cpu, time.perf_counter() - wall)
    best = run if best is None or run[0] < best[0] else best
print(json.dumps({"count": len(items), "arcs": sum(item.num_arcs for item in items), "best": best}))
"""


def baseline_code(revision: str, folder: Path) -> Path:
    """``rescorer`` of ``revision`` unpacked under ``folder``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "rescorer"],
                             check=True, capture_output=True).stdout
    (folder / "baseline.tar").write_bytes(archive)
    code = folder / "baseline"
    with tarfile.open(folder / "baseline.tar") as tar:
        tar.extractall(code)
    return code


def timed_baseline(code: Path, path: Path, repeats: int):
    out = subprocess.run([sys.executable, "-c", BASELINE_CHILD, str(code), str(path), str(repeats)],
                         check=True, capture_output=True, text=True).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["count"], result["arcs"], tuple(result["best"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--baseline", default="5100d1f")
    args = parser.parse_args()
    print("load before:", os.getloadavg())
    torch.set_num_threads(1)
    from rescorer.formats.kaldi_archive import iter_kaldi_archive

    with tempfile.TemporaryDirectory() as folder:
        paths = build_inputs(Path(folder), args.copies)
        code = baseline_code(args.baseline, Path(folder))
        rows = []
        for name, path in paths.items():
            rows.append((f"today's reader, {name}", iter_kaldi_archive, path))
            rows.append((f"baseline {args.baseline}, {name}", code, path))
        print("| reader, archive | MB | lattices | arcs | CPU s | wall s | arcs/s (CPU) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, read, path in rows:
            count, arcs, (cpu, wall) = timed_baseline(read, path, args.repeats) \
                if isinstance(read, Path) else timed(read, path, args.repeats)
            size = path.stat().st_size / 1e6
            print(f"| {label} | {size:.1f} | {count} | {arcs:,} | {cpu:.2f} | {wall:.2f} | "
                  f"{arcs / cpu:,.0f} |")
    print("load after:", os.getloadavg())


if __name__ == "__main__":
    main()
