"""Throughput, stage shares and WER of ``fprescore rescore`` on the asr-dev lattices.

Every configuration runs in a fresh Python process (so peak RSS is per run)
through the library entry point ``run_rescore``, exactly what the CLI runs.
Prints Markdown tables for docs/results/rescoring.md: speed and sizes; each
stage's share of the timed stages' CPU time (read, prune, expand, score =
the neural LM, search, write; ``time.process_time`` of our processes,
summed over workers, so other load on the machine does not count) with the
non-LM / LM ratio; and WER. Its wall seconds are those of ``run_rescore`` inside a
warm process (no python start, imports or exit): for issue 7's end-to-end wall target
use ``bench/rescore_wall.py``, which times whole ``fprescore rescore`` processes.

Examples::

    # stage shares at K = 2, 4, 8 from SLF and from one k2 file (one process), then
    # the --jobs 2 wall time at K = 4 against the audio duration (target 1/300)
    .venv/bin/python bench/rescore_throughput.py \
        --model 2=exp/ptb-k2/model.pt --model 4=exp/ptb-k4/model.pt --model 8=exp/ptb-k8/model.pt \
        --jobs 1 --both-inputs --wall-jobs 2 --wall-model 4

    # speed at K = 2, 4, 8 plus the n-best(100) comparison at K = 4
    .venv/bin/python bench/rescore_throughput.py \\
        --model 2=exp/ptb-k2/model.pt --model 4=exp/ptb-k4/model.pt --model 8=exp/ptb-k8/model.pt \\
        --beam 8 --nbest-compare 4

    # WER table: add --grid (LM-scale sweep, needs the references); repeat it for a
    # multi-parameter sweep, as with fprescore rescore
    .venv/bin/python bench/rescore_throughput.py --model 4=... --grid 0:10:1
    .venv/bin/python bench/rescore_throughput.py --model 4=... --grid lm=0:4:0.5 --grid wp=-2:2:0.5
"""
import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

from rescorer.rescoring.defaults import DEFAULT_BATCH_SIZE
from rescorer.rescoring.grid import parse_grid
from rescorer.rescoring.timing import STAGES

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asr-dev"


def audio_seconds(data: Path, limit: int) -> float:
    """Total audio duration of the first ``limit`` utterances (audio.tsv)."""
    rows = (data / "audio.tsv").read_text().splitlines()[1:]
    return sum(float(row.split("\t")[4]) for row in rows[:limit])


def peak_rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM``, not ``ru_maxrss``, which Linux carries
    over ``exec`` from the forked parent (so a worker started by a parent that
    converted asr-dev first would report the parent's 750 MB)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker(settings: Dict) -> Dict:
    """One configuration in this process; returns its measurements."""
    import torch

    from rescorer.rescoring.combine import Scales
    from rescorer.rescoring.config import RescoreConfig
    from rescorer.rescoring.pipeline import run_rescore

    data = Path(settings["data"])
    files = sorted((data / "lat").iterdir())[: settings["limit"]]
    words = None
    if settings.get("k2_folder"):  # pre-converted k2 files instead of the SLF files
        files = sorted(Path(settings["k2_folder"]).glob("*.pt"))
        words = Path(settings["k2_folder"]) / "words.txt"
    config = RescoreConfig(
        lattices=files, model=Path(settings["model"]), out=settings["out"], words=words,
        scales=Scales(am=1.0, ngram=settings["ngram_scale"], lm=settings["lm_scale"]),
        beam=settings["beam"], batch_size=settings["batch_size"], threads=settings["threads"],
        jobs=settings["jobs"],
        mode=settings["mode"], nbest=settings["nbest"], max_arcs=settings["max_arcs"],
        grid=parse_grid(settings["grid"]) if settings["grid"] else None, refs=data / "text" if settings["refs"] else None,
    )
    started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    report = run_rescore(config)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)  # workers of --jobs
    cpu = (after.ru_utime - usage.ru_utime) + (after.ru_stime - usage.ru_stime)
    cpu += children.ru_utime + children.ru_stime
    totals = report.totals()
    return {
        "wall_s": wall, "cpu_s": cpu, "stages": {name: report.timings.cpu(name) for name in STAGES},
        "ok": len(report.results), "failed": len(report.failures), **totals,
        "unique_histories": report.unique_histories,
        "tightened_utts": sum(1 for s in report.results.values() if s.tightened),
        "peak_rss_mb": peak_rss_mb(),
        "peak_rss_workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0,
        "threads": torch.get_num_threads(),
        "wer": [(label, stats.errors, stats.ref_words, stats.wer) for label, stats in report.wer_rows],
        "grid": [(" ".join(f"{n}={v:g}" for n, v in zip(report.grid_names, point)), stats.wer)
                 for point, stats in report.grid],
        "best_scale": None if report.best_point is None else
        " ".join(f"{n}={v:g}" for n, v in zip(report.grid_names, report.best_point)),
    }


def convert_to_k2(data: Path, limit: int, shards: int, folder: Path) -> float:
    """Read the SLF lattices once and write them as ``shards`` k2 files + words.txt.

    Returns:
      Seconds taken (reading and writing).
    """
    from rescorer import read_lattices
    from rescorer.formats.k2_pt import write_k2
    from rescorer.lattice.symbols import SymbolTable

    started = time.perf_counter()
    symbols = SymbolTable()
    lattices = read_lattices(sorted((data / "lat").iterdir())[:limit], symbols).to_lattices()
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        write_k2(folder / f"shard{shard:02d}.pt", lattices[shard::shards])
    symbols.write(folder / "words.txt")
    return time.perf_counter() - started


def run_one(settings: Dict) -> Dict:
    """Run ``worker`` in a fresh interpreter and parse its JSON line."""
    command = [sys.executable, __file__, "--worker", json.dumps(settings)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"worker failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--model", action="append", default=[], metavar="K=PATH",
                        help="a model per history window K (repeatable)")
    parser.add_argument("--data", default=str(DATA), help="the asr-dev folder")
    parser.add_argument("--limit", type=int, default=240, help="first N lattices only")
    parser.add_argument("--beam", type=float, default=8.0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="lattices per work unit")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--max-arcs", type=int, default=500_000)
    parser.add_argument("--ngram-scale", type=float, default=0.5)
    parser.add_argument("--lm-scale", type=float, default=5.0)
    parser.add_argument("--grid", action="append", default=None,
                        help="[NAME=]start:stop:step, repeatable: fprescore rescore's --grid (adds WER)")
    parser.add_argument("--refs", action="store_true", help="compute WER at --lm-scale")
    parser.add_argument("--nbest-compare", type=int, default=None, metavar="K",
                        help="also run --mode nbest --nbest 100 with the K model")
    parser.add_argument("--out", default="/tmp/rescore-bench", help="scratch output folder")
    parser.add_argument("--k2-shards", type=int, default=0, metavar="N",
                        help="convert the SLF lattices to N k2 files first (timed apart) and rescore those")
    parser.add_argument("--k2-folder", default=None, metavar="DIR",
                        help="rescore the k2 files of an earlier conversion (DIR/*.pt and "
                             "DIR/words.txt, e.g. OUT/k2 or exp/bench/k2) instead of converting")
    parser.add_argument("--both-inputs", action="store_true",
                        help="run every model from SLF and from one k2 file (converted first, timed apart)")
    parser.add_argument("--wall-jobs", type=int, default=None, metavar="J",
                        help="finally time a run per input kind with --jobs J (with --wall-model)")
    parser.add_argument("--wall-model", default=None, metavar="K", help="the model K of --wall-jobs")
    parser.add_argument("--json", default=None, help="write all measurements here")
    return parser.parse_args()


def main() -> None:
    arguments = parse_arguments()
    if arguments.worker:
        print(json.dumps(worker(json.loads(arguments.worker))))
        return
    grid = arguments.grid
    if grid:
        parse_grid(grid)  # a bad --grid fails here, before any worker starts
    base = {"data": arguments.data, "limit": arguments.limit, "beam": arguments.beam,
            "batch_size": arguments.batch_size, "threads": arguments.threads, "jobs": arguments.jobs,
            "max_arcs": arguments.max_arcs, "ngram_scale": arguments.ngram_scale,
            "lm_scale": arguments.lm_scale, "grid": grid, "refs": bool(grid) or arguments.refs}
    models = dict(item.split("=", 1) for item in arguments.model)
    inputs = {"SLF": None}
    if arguments.k2_folder or arguments.k2_shards or arguments.both_inputs:
        folder = Path(arguments.k2_folder or Path(arguments.out) / "k2")
        if arguments.k2_folder and not (any(folder.glob("*.pt")) and (folder / "words.txt").exists()):
            raise SystemExit(f"--k2-folder {folder}: expected *.pt files and words.txt there")
        if not arguments.k2_folder:
            import torch

            torch.set_num_threads(1)
            shards = arguments.k2_shards or 1
            seconds = convert_to_k2(Path(arguments.data), arguments.limit, shards, folder)
            print(f"converted to {shards} k2 file(s) in {seconds:.1f} s (not counted below)")
        inputs = {"SLF": None, "k2": str(folder)} if arguments.both_inputs else {"k2": str(folder)}
    runs: List[Dict] = []
    for window, model in sorted(models.items(), key=lambda item: int(item[0])):
        for kind, k2_folder in inputs.items():
            settings = {**base, "model": model, "mode": "lattice", "nbest": 10, "k2_folder": k2_folder,
                        "out": f"{arguments.out}/lattice-k{window}-{kind}"}
            runs.append({"name": f"lattice K={window} {kind} jobs={arguments.jobs}", **run_one(settings)})
    if arguments.nbest_compare is not None:
        settings = {**base, "model": models[str(arguments.nbest_compare)], "mode": "nbest",
                    "nbest": 100, "out": f"{arguments.out}/nbest100"}
        runs.append({"name": f"nbest(100) K={arguments.nbest_compare}", **run_one(settings)})
    for kind, k2_folder in inputs.items() if arguments.wall_jobs is not None else ():
        settings = {**base, "model": models[arguments.wall_model], "mode": "lattice", "nbest": 10,
                    "jobs": arguments.wall_jobs, "k2_folder": k2_folder, "out": f"{arguments.out}/wall-{kind}"}
        runs.append({"name": f"lattice K={arguments.wall_model} {kind} jobs={arguments.wall_jobs}",
                     **run_one(settings)})
    seconds = audio_seconds(Path(arguments.data), arguments.limit)
    print_tables(runs, seconds)
    if arguments.json:
        Path(arguments.json).write_text(json.dumps({"audio_s": seconds, "runs": runs}, indent=1))


def print_tables(runs: List[Dict], seconds: float) -> None:
    """Markdown tables: speed and sizes, stage shares, then WER."""
    print(f"\naudio: {seconds:.1f} s; targets 1/100 = {seconds / 100:.2f} s, 1/300 = {seconds / 300:.2f} s\n")
    print("| run | lattices ok/failed | wall s | CPU s | x audio | lattices/s | arcs/s | arcs pruned "
          "| expansion factor | unique histories | beam tightened | peak RSS MB (main / largest worker) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for run in runs:
        factor = run["expanded_arcs"] / max(run["pruned_arcs"], 1) if run["expanded_arcs"] else 0.0
        print(f"| {run['name']} | {run['ok']}/{run['failed']} | {run['wall_s']:.2f} | {run['cpu_s']:.1f} "
              f"| 1/{seconds / run['wall_s']:.0f} | {run['ok'] / run['wall_s']:.1f} "
              f"| {run['arcs'] / run['wall_s']:,.0f} | {run['pruned_arcs']:,} | {factor:.2f} "
              f"| {run['unique_histories']:,} | {run['tightened_utts']} "
              f"| {run['peak_rss_mb']:.0f} / {run['peak_rss_workers_mb']:.0f} |")
    print("\nStage CPU seconds of our processes (share of the timed stages; '-' = not timed "
          "separately):\n")
    print("| run | " + " | ".join(STAGES) + " | non-LM / LM |")
    print("|---|" + "---|" * (len(STAGES) + 1))
    for run in runs:
        stages = run["stages"]
        timed = sum(value for value in stages.values() if value is not None) or 1.0
        cells = ["-" if stages[name] is None else f"{stages[name]:.2f} ({100 * stages[name] / timed:.0f}%)"
                 for name in STAGES]
        lm = stages.get("score") or 0.0
        ratio = f"{(timed - lm) / lm:.2f}x" if lm else "-"
        print(f"| {run['name']} | " + " | ".join(cells) + f" | {ratio} |")
    if any(run["wer"] for run in runs):
        print("\n| run | row | WER % | errors / ref words | best lm_scale |")
        print("|---|---|---|---|---|")
        for run in runs:
            for label, errors, words, wer in run["wer"]:
                print(f"| {run['name']} | {label} | {wer:.2f} | {errors}/{words} | {run['best_scale']} |")
            for point, wer in run["grid"]:
                print(f"| {run['name']} | grid {point} | {wer:.2f} | | |")


if __name__ == "__main__":
    main()
