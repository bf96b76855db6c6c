"""Kaldi lattice reading speed, arcs/s: binary and text archives, new reader vs the old text one.

Usage: .venv/bin/python bench/kaldi_read_speed.py [--copies 100] [--repeats 3] [--legacy COMMIT]

The inputs are the shared real samples (../shared/data/kaldi-samples: 10 binary
CompactLattices, one text CompactLattice) repeated ``--copies`` times under distinct
keys, written to a temporary folder as a binary archive, a text archive (the same
lattices, ``ark,t``), and the gzipped binary archive. "old text reader" is
rescorer/formats/kaldi_text.py as of ``--legacy`` (the text reader before the
Kaldi archive work; loaded with ``git show``), run on the text archive. Arcs count
the Kaldi arcs plus one per final state (the -1 arcs of the resulting lattices).
Reported: best of ``--repeats`` runs, CPU process time and wall time. Results
are in docs/results/kaldi.md.
"""
import argparse
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / ".." / "shared" / "data" / "kaldi-samples"
LEGACY_COMMIT = "0ddfc3c"


def legacy_reader(commit: str):
    """The old ``iter_kaldi_text`` from git history, or None when git cannot show it."""
    try:
        source = subprocess.run(["git", "show", f"{commit}:rescorer/formats/kaldi_text.py"],
                                cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("legacy_kaldi_text")
    exec(compile(source, "legacy_kaldi_text.py", "exec"), module.__dict__)
    return module.iter_kaldi_text


def build_inputs(folder: Path, copies: int) -> dict:
    from rescorer.formats.kaldi_archive import iter_kaldi_archive
    from rescorer.formats.kaldi_lattice import KaldiLattice
    from rescorer.formats.kaldi_outputs import write_kaldi_archive

    originals = list(iter_kaldi_archive(SAMPLES / "lat.1.ark")) + list(
        iter_kaldi_archive(SAMPLES / "lat.txt.ark"))
    lattices = []
    for copy in range(copies):
        for lattice in originals:
            renamed = KaldiLattice.with_transitions(
                lattice, lattice.transition_splits, lattice.transition_ids)
            object.__setattr__(renamed, "utt_id", f"{lattice.utt_id}-{copy}")
            lattices.append(renamed)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--legacy", default=LEGACY_COMMIT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    from rescorer.formats.kaldi_archive import iter_kaldi_archive

    with tempfile.TemporaryDirectory() as folder:
        paths = build_inputs(Path(folder), args.copies)
        rows = [(f"new reader, {name}", iter_kaldi_archive, path) for name, path in paths.items()]
        legacy = legacy_reader(args.legacy)
        if legacy is not None:
            rows.append((f"old text reader ({args.legacy}), text", legacy, paths["text"]))
        print(f"| reader, archive | MB | lattices | arcs | CPU s | wall s | arcs/s (CPU) |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for label, read, path in rows:
            count, arcs, (cpu, wall) = timed(read, path, args.repeats)
            size = path.stat().st_size / 1e6
            print(f"| {label} | {size:.1f} | {count} | {arcs:,} | {cpu:.2f} | {wall:.2f} | "
                  f"{arcs / cpu:,.0f} |")


if __name__ == "__main__":
    main()
