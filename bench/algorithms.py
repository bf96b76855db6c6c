"""Time the lattice algorithms on the DEV lattices (docs/results/algorithms.md).

Usage: .venv/bin/python bench/algorithms.py [--limit N] [--threads 1] [--max-arcs 2000000]

Scores are am + ngram (the SLF reader's a + lmscale*l + wdpenalty); LM tokens are the
lattice words, one per word, as for a word-level LM.
"""
import argparse
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.progress import track
from rich.table import Table

from rescorer.algorithms.best_path import best_path, total_log_score
from rescorer.algorithms.history import expand_histories
from rescorer.algorithms.nbest import nbest_distinct
from rescorer.algorithms.oracle import oracle_errors
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import topological_levels
from rescorer.errors import ExpansionLimitError
from rescorer.formats.slf import read_slf

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asr-dev"


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def measure(path, references, symbols, args, rows):
    (lattice,), symbols = read_slf(path, symbols)
    scores = lattice.am_scores + lattice.ngram_scores
    levels, seconds = timed(topological_levels, lattice)
    rows.setdefault(("topsort", "-", "-"), []).append((seconds, None, None, None))
    _, seconds = timed(best_path, lattice, scores, levels=levels)
    rows.setdefault(("best path", "-", "-"), []).append((seconds, None, None, None))
    _, seconds = timed(total_log_score, lattice, scores, levels=levels)
    rows.setdefault(("total log score", "-", "-"), []).append((seconds, None, None, None))
    _, seconds = timed(nbest_distinct, lattice, scores, 100, levels=levels)
    rows.setdefault(("n-best 100", "-", "-"), []).append((seconds, None, None, None))
    reference = [symbols.add(word) for word in references[lattice.utt_id]]
    (errors, _), seconds = timed(oracle_errors, lattice, reference, levels=levels)
    rows.setdefault(("oracle", "-", "-"), []).append((seconds, errors, len(reference), None))
    bos = int(lattice.word_ids.max()) + 1
    for beam in args.beams:
        if beam is None:
            pruned, pruned_levels = lattice, levels
        else:
            (pruned, _), seconds = timed(prune_by_beam, lattice, scores, beam, levels=levels)
            rows.setdefault(("prune", beam, "-"), []).append(
                (seconds, pruned.num_arcs / lattice.num_arcs, None, None))
            pruned_levels = None
        for window in args.windows:
            try:
                expanded, seconds = timed(expand_histories, pruned, pruned.word_splits,
                                          pruned.word_ids, window, bos, bos, args.max_arcs,
                                          levels=pruned_levels)
            except ExpansionLimitError:
                rows.setdefault(("expand", beam, window), []).append((None, None, None, None))
                continue
            rows.setdefault(("expand", beam, window), []).append(
                (seconds, expanded.lattice.num_arcs / pruned.num_arcs,
                 expanded.histories.shape[0], pruned.num_arcs))
    return symbols, lattice.num_arcs


def summarise(rows, console):
    table = Table(title="lattice algorithms on DEV (per lattice)")
    for column in ("step", "beam", "window", "ok", "mean s", "median s", "max s",
                   "arcs in (mean)", "exp. factor mean / median / max", "histories mean / max"):
        table.add_column(column)
    for (step, beam, window), values in rows.items():
        done = [v for v in values if v[0] is not None]
        times = [v[0] for v in done]
        factor = histories = arcs_in = ""
        if step == "expand" and done:
            factors = [v[1] for v in done]
            factor = (f"{statistics.mean(factors):.1f} / {statistics.median(factors):.1f} / "
                      f"{max(factors):.1f}")
            histories = f"{statistics.mean(v[2] for v in done):.0f} / {max(v[2] for v in done)}"
            arcs_in = f"{statistics.mean(v[3] for v in done):.0f}"
        if step == "prune":
            factor = f"kept {100 * statistics.mean(v[1] for v in done):.2f}% of arcs"
        if step == "oracle":
            factor = f"oracle WER {100 * sum(v[1] for v in done) / sum(v[2] for v in done):.2f}%"
        table.add_row(step, str(beam if beam is not None else "none"), str(window),
                      f"{len(done)}/{len(values)}",
                      f"{statistics.mean(times):.4f}" if times else "",
                      f"{statistics.median(times):.4f}" if times else "",
                      f"{max(times):.4f}" if times else "", arcs_in, factor, histories)
    console.print(table)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--max-arcs", type=int, default=2_000_000)
    parser.add_argument("--beams", default="10,20,50,100,none", help="'none': no pruning")
    parser.add_argument("--windows", default="2,4,8")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.beams = [None if b == "none" else float(b) for b in args.beams.split(",")]
    args.windows = [int(w) for w in args.windows.split(",")]
    references = {}
    for line in (DEV / "text").read_text().splitlines():
        utt_id, *words = line.split()
        references[utt_id] = words
    paths = sorted((DEV / "lat").glob("*.slf.gz"))[: args.limit]
    rows, symbols, arcs = {}, None, []
    start = time.perf_counter()
    for path in track(paths, description="lattices"):
        symbols, num_arcs = measure(path, references, symbols, args, rows)
        arcs.append(num_arcs)
    console = Console(width=200)
    console.print(f"{len(paths)} lattices, arcs mean {statistics.mean(arcs):.0f}, "
                  f"threads {args.threads}, max arcs {args.max_arcs}, beams {args.beams}, "
                  f"windows {args.windows}, "
                  f"wall {time.perf_counter() - start:.1f} s")
    summarise(rows, console)


if __name__ == "__main__":
    main()
