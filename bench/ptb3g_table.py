"""Issue 12's results table on asr-dev-ptb3g: n-gram, neural LM, interpolation, 2-D grid, MBR.

Every row is one ``fprescore rescore`` run (the real CLI, ``--jobs`` workers)
whose ``summary.json`` gives the WER and the CPU seconds; the decoder's row is
its ``onebest`` scored with the same WER code. The first pass is the SLF
header's own score (lmscale 9.5, wdpenalty -0.629606) with the exact trigram
``lm/ptbvalid-3g.arpa`` (``--ngram-source arpa``); every neural row adds a
PTB-mini LM trained on the same ``ptb.valid.txt``. Settings are tuned on the
set itself (the issue's protocol), by ``--grid``.

Usage (models from bench/lm_mini.sh or the PTB-mini protocol in docs/results/lm_mini.md):
  .venv/bin/python bench/ptb3g_table.py --model K4=exp/ptb-mini-k4/model.pt \\
      --model K8=exp/ptb-mini-k8/model.pt --model seq=exp/ptb-mini-seq/model.pt:4 \\
      [--beam 16] [--jobs 2] [--out exp/ptb3g-table]
(``NAME=PATH:N`` runs a sequential model with ``--history-approx N``.)
Prints a markdown table (WER, errors, ins/del/sub, CPU s, ratio to plain lattice mode)
and writes OUT/table.json.
"""
import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / ".." / "shared" / "data" / "asr-dev-ptb3g"
ARPA = DATA / "lm" / "ptbvalid-3g.arpa"
FIRST_PASS = ["--ngram-lm", str(ARPA), "--ngram-source", "arpa", "--ngram-scale", "9.5"]
WDPENALTY = "-0.629606"
LM_GRID = "lm-scale=0:10:1"
WP_GRID = "word-penalty=-2:2:0.5"
LAMBDA_GRID = "lambda=0.1:0.9:0.1"


def rescore(out: Path, model: Path, options: List[str], args) -> Dict:
    """Run one rescore; return its summary.json (a failed run stops the script)."""
    command = [sys.executable, "-m", "rescorer", "rescore", str(DATA / "lat"), "--model", str(model),
               "--refs", str(DATA / "text"), "--out", str(out), "--beam", str(args.beam),
               "--jobs", str(args.jobs), *options]
    print("+", " ".join(command[2:]), file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise SystemExit(f"rescore failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads((out / "summary.json").read_text())


def rescored_row(summary: Dict, system: str) -> Dict:
    """The rescored WER row of a run (the first row whose system does not say first pass/oracle)."""
    rows = [row for row in summary["wer"] if row["system"].startswith("rescored")]
    row = dict(rows[0])
    row["system"] = system
    row["cpu_s"] = sum(value for value in summary["run"]["cpu_seconds"].values() if value)
    row["point"] = summary.get("best_point")
    return row


def first_pass_row(summary: Dict, system: str) -> Dict:
    row = dict(next(row for row in summary["wer"] if row["system"].startswith("first pass")))
    row.update(system=system, cpu_s=None, point=None)
    return row


def decoder_row() -> Dict:
    from rescorer.outputs.text import read_transcripts
    from rescorer.outputs.wer import compute_wer

    stats = compute_wer(read_transcripts(DATA / "text"), read_transcripts(DATA / "onebest"))
    return {"system": "decoder 1-best", "wer": stats.wer, "errors": stats.errors,
            "insertions": stats.insertions, "deletions": stats.deletions,
            "substitutions": stats.substitutions, "cpu_s": None, "point": None}


def model_rows(name: str, model: Path, approx: Optional[int], args, base: Dict) -> List[Dict]:
    """Log-linear, interpolated, interpolated + 2-D grid, + MBR for one neural LM."""
    extra = [] if approx is None else ["--history-approx", str(approx)]
    out = Path(args.out) / name
    plain = rescore(out / "plain", model, extra + ["--grid", LM_GRID], args)
    rows = [rescored_row(plain, f"{name}: plain lattice mode (lattice l, lm-scale grid)")]
    loglinear = rescore(out / "loglinear", model, extra + FIRST_PASS + [
        "--word-penalty", WDPENALTY, "--grid", LM_GRID, "--grid", WP_GRID], args)
    rows.append(rescored_row(loglinear, f"{name}: exact trigram + neural LM, log-linear, 2-D grid"))
    interpolated = rescore(out / "interpolated", model, extra + FIRST_PASS + [
        "--word-penalty", WDPENALTY, "--lm-scale", "9.5", "--interpolate", "0.5"], args)
    rows.append(rescored_row(interpolated, f"{name}: interpolated, λ=0.5"))
    grid = rescore(out / "interpolated-grid", model, extra + FIRST_PASS + [
        "--lm-scale", "9.5", "--interpolate", "0.5", "--grid", LAMBDA_GRID, "--grid", WP_GRID], args)
    rows.append(rescored_row(grid, f"{name}: interpolated + 2-D grid (λ × word penalty)"))
    point = grid["best_point"]
    mbr = rescore(out / "interpolated-mbr", model, extra + FIRST_PASS + [
        "--lm-scale", "9.5", "--interpolate", str(point["lambda"]),
        "--word-penalty", str(point["word-penalty"]), "--decode", "mbr",
        "--mbr-scale", str(args.mbr_scale)], args)
    rows.append(rescored_row(mbr, f"{name}: the same + MBR (scale {args.mbr_scale:g})"))
    plain_cpu = rows[0]["cpu_s"]
    for row in rows:
        row["ratio"] = row["cpu_s"] / plain_cpu if plain_cpu else None
    base.setdefault("lattice", first_pass_row(plain, "lattice 1-best (fixed l)"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", required=True, help="NAME=PATH[:HISTORY_APPROX]")
    parser.add_argument("--beam", type=float, default=16.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--mbr-scale", type=float, default=1 / 9.5)
    parser.add_argument("--out", default="exp/ptb3g-table")
    args = parser.parse_args()
    base: Dict[str, Dict] = {}
    first = args.model[0].split("=", 1)[1].split(":")[0]
    exact = rescore(Path(args.out) / "exact-arpa", Path(first), FIRST_PASS + [
        "--word-penalty", WDPENALTY, "--lm-scale", "0"], args)
    rows = [decoder_row(), None, rescored_row(exact, "exact trigram first pass (lm-scale 0)")]
    for spec in args.model:
        name, target = spec.split("=", 1)
        path, _, approx = target.partition(":")
        rows.extend(model_rows(name, Path(path), int(approx) if approx else None, args, base))
    rows[1] = base["lattice"]
    decoder_errors = rows[0]["errors"]
    print("| system | WER | errors (ins/del/sub) | vs decoder | best point | CPU s | × plain |")
    print("|---|---:|---:|---:|---|---:|---:|")
    for row in rows:
        change = 100 * (row["errors"] - decoder_errors) / decoder_errors
        cpu = "" if row.get("cpu_s") is None else f"{row['cpu_s']:.1f}"
        ratio = "" if row.get("ratio") is None else f"{row['ratio']:.2f}"
        point = "" if not row.get("point") else ", ".join(f"{k}={v:g}" for k, v in row["point"].items())
        print(f"| {row['system']} | {row['wer']:.2f}% | {row['errors']} ({row['insertions']}/"
              f"{row['deletions']}/{row['substitutions']}) | {change:+.1f}% | {point} | {cpu} | {ratio} |")
    (Path(args.out) / "table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
