"""Time the batched lattice algorithms on the DEV lattices, all 240 in one batch.

Usage: .venv/bin/python bench/algorithms.py [--limit N] [--threads 1] [--max-arcs 2000000]
       [--beams 10,20,none] [--windows 2,4,8] [--device cpu]

Scores are am + ngram (the SLF reader's a + lmscale*l + wdpenalty); LM tokens are the
lattice words, one per word, as for a word-level LM. Each row is one call over the
whole batch (median of --repeats); the n-best row also gives the A* share (the
per-lattice Python search) apart from its batched heuristic.
"""
import argparse
import statistics
import time
from pathlib import Path

import torch

from rescorer.algorithms.best_path import backward_scores, shortest_paths, total_scores
from rescorer.algorithms.history import expand_histories
from rescorer.algorithms.nbest import nbest_distinct
from rescorer.algorithms.oracle import oracle_errors
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.slf import read_slf
from rescorer.lattice.batch import LatticeBatch

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asr-dev"


def timed(repeats, function, *args, **kwargs):
    """(result, median seconds) of ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def read_dev(limit: int):
    references = {line.split()[0]: line.split()[1:]
                  for line in (DEV / "text").read_text().splitlines()}
    lattices, symbols = [], None
    for path in sorted((DEV / "lat").glob("*.slf.gz"))[:limit]:
        (lattice,), symbols = read_slf(path, symbols)
        lattices.append(lattice)
    batch = LatticeBatch.from_lattices(lattices)
    reference_ids = [[symbols.add(word) for word in references[utt]] for utt in batch.utt_ids]
    return batch, reference_ids


class Rows(list):
    """Rows printed as they come (long runs show progress)."""

    def append(self, row) -> None:
        name, seconds, note = row
        print(f"{name:28s} {seconds:9.4f} s  {note}", flush=True)
        super().append(row)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=240)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-arcs", type=int, default=500_000)
    parser.add_argument("--beams", default="10,20",
                        help="'none': no pruning (the whole batch's expansion must fit in memory)")
    parser.add_argument("--windows", default="2,4,8")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    batch, references = read_dev(args.limit)
    batch = batch.to(torch.device(args.device))
    scores = batch.am_scores + batch.ngram_scores
    repeats = args.repeats
    print(f"{batch.num_utts} lattices, {batch.num_arcs:,} arcs, device {args.device}, "
          f"threads {args.threads}, torch {torch.__version__}")
    schedule, seconds = timed(repeats, LevelSchedule.of, batch)
    rows = Rows()
    rows.append(("levels (LevelSchedule)", seconds, f"{schedule.num_levels} levels"))
    rows.append(("best path", timed(repeats, shortest_paths, batch, scores, schedule)[1], ""))
    rows.append(("total log score", timed(repeats, total_scores, batch, scores, True, schedule)[1], ""))
    _, heuristic = timed(repeats, backward_scores, batch, scores, False, schedule)
    _, seconds = timed(1, nbest_distinct, schedule, scores, 100)
    rows.append(("n-best 100", seconds, f"A* (per lattice) {100 * (1 - heuristic / seconds):.0f}%"))
    (errors, _), seconds = timed(repeats, oracle_errors, schedule, references)
    words = sum(len(reference) for reference in references)
    rows.append(("oracle", seconds, f"oracle WER {100 * int(errors.sum()) / words:.2f}%"))
    beams = [None if beam == "none" else float(beam) for beam in args.beams.split(",")]
    for beam in beams:
        pruned = schedule
        if beam is not None:
            (pruned, kept), seconds = timed(repeats, prune_by_beam, schedule, scores, beam)
            rows.append((f"prune beam {beam:g}", seconds,
                         f"kept {100 * kept.numel() / batch.num_arcs:.2f}% of arcs"))
        for window in (int(w) for w in args.windows.split(",")):
            pruned_batch = pruned.batch
            expanded, seconds = timed(1, expand_histories, pruned, pruned_batch.word_splits,
                                      pruned_batch.word_ids, window, 0, 0, args.max_arcs)
            rows.append((f"expand beam {beam} K={window}", seconds,
                         f"{expanded.batch.num_arcs:,} arcs, {len(expanded.over_limit)} over "
                         f"{args.max_arcs:,}, {expanded.histories.shape[0]:,} histories"))


if __name__ == "__main__":
    main()
