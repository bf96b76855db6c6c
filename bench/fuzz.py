"""Long fuzz campaigns over every reader path (tests/fuzz runs a short one in the suite).

Usage: .venv/bin/python bench/fuzz.py --count 100000 --seed 1 --jobs 1 --out exp/fuzz

Prints and writes OUT/summary.json: inputs tried, parsed, rejected (RescorerError),
crashed (other exceptions, hangs past --time-cap, dead workers) by signature, the
slowest input, the largest peak-RSS growth of a worker, wall and CPU seconds.
One reproducer per crash signature lies in OUT/crashes/ (the input file and a
.json with seed, index, mutations and traceback). See tests/fuzz/harness.py.
"""
import argparse
import json
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "fuzz"))
import harness  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("exp/fuzz"))
    parser.add_argument("--time-cap", type=int, default=10, help="seconds per input")
    parser.add_argument("--memory-cap-mb", type=int, default=1024,
                        help="address space a worker may add per input set, MiB")
    parser.add_argument("--small", action="store_true", help="only the test suite's seeds")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new inputs after this (summary.json says how far it got)")
    args = parser.parse_args()
    seeds = harness.make_seeds(args.out / "seeds", small=args.small)
    started, last = time.perf_counter(), [0.0]

    def summary(counts: harness.Counts, finished: bool) -> dict:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        result = {
            "finished": finished,
            "args": {key: str(value) for key, value in vars(args).items()},
            "seeds": [{"name": s.name, "kind": s.kind, "bytes": len(s.data)} for s in seeds],
            **harness.counts_dict(counts),
            "wall_s": round(time.perf_counter() - started, 1),
            "finished_workers_cpu_s": round(children.ru_utime + children.ru_stime, 1),
        }
        (args.out / "summary.json").write_text(json.dumps(result, indent=1) + "\n")
        return result

    def progress(counts: harness.Counts) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            summary(counts, False)
            print(f"{counts.tried:,} tried, {counts.parsed:,} parsed, {counts.rejected:,} "
                  f"rejected, {counts.crashed:,} crashed", flush=True)

    max_seconds = None if args.max_minutes is None else 60 * args.max_minutes
    counts = harness.run_campaign(seeds, args.count, args.seed, args.out, jobs=args.jobs,
                                  time_cap=args.time_cap, memory_cap_mb=args.memory_cap_mb,
                                  progress=progress, max_seconds=max_seconds)
    print(json.dumps(summary(counts, True), indent=1))


if __name__ == "__main__":
    main()
