"""Our batched engine against real k2 on the same lattices, side by side, one torch thread.

Usage (in the pinned env, with a k2 file made by ``fprescore convert ... --to k2``)::

    fprescore convert ../shared/data/asr-dev/lat --to k2 -o exp/engine/asr-dev.pt
    .venv-k2/bin/python bench/k2_peer.py exp/engine/asr-dev.pt [--repeats 5] [--device cpu]

Times, for ours and for k2 (median of ``--repeats`` runs): reading the file into
a batch; the best path (float64 scores, tropical) and the total log score (float64,
log semiring), each from scratch (k2: a freshly read Fsa, so its state batches
are computed in the call; ours: the ``LevelSchedule`` is built in the call) and
with the topology already computed (k2's cached state batches and arc indexes;
ours: one ``LevelSchedule`` reused, as the engine shares it across a batch's
algorithms). Prints ours/k2 ratios and the largest score differences.
"""
import argparse
import statistics
import time
from pathlib import Path

import torch

from rescorer.algorithms.best_path import shortest_paths, total_scores
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.torch_pickle import load_torch_dict
from rescorer.lattice.batch import LatticeBatch


def _median_seconds(function, repeats: int, setup: bool = False):
    """(median seconds, last result) of ``repeats`` calls of ``function``.

    With ``setup``, ``function`` returns a zero-argument callable (built untimed)
    and only that callable is timed.
    """
    times, result = [], None
    for _ in range(repeats):
        timed = function() if setup else function
        start = time.perf_counter()
        result = timed()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _bind(function, *args, **kwargs):
    return lambda: function(*args, **kwargs)


def _topology_cached(fsa):
    """The Fsa with k2's cached topology (state batches, arc indexes) already computed."""
    fsa._get_state_batches()
    fsa._get_dest_states()
    fsa._get_incoming_arcs()
    fsa._get_entering_arc_batches()
    fsa._get_leaving_arc_batches()
    return fsa


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("k2_file", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import k2  # the peer; only this script needs it

    device = torch.device(args.device)

    def ours_read():  # safe unpickler + validation of every lattice
        return LatticeBatch.from_k2_dict(load_torch_dict(args.k2_file), args.k2_file).to(device)

    def k2_read():
        content = torch.load(args.k2_file)
        return k2.Fsa.from_dict({key: value.to(device) for key, value in content.items()
                                 if key != "utt_ids"})

    batch = ours_read()
    scores = batch.am_scores + batch.ngram_scores  # k2's float32 scores
    rows = [("read file into a batch", _median_seconds(ours_read, args.repeats)[0],
             _median_seconds(k2_read, args.repeats)[0])]
    ours_levels, _ = _median_seconds(lambda: LevelSchedule.of(batch), args.repeats)
    ours_best, (best, _, _) = _median_seconds(lambda: shortest_paths(batch, scores), args.repeats)
    fresh = [k2_read() for _ in range(args.repeats)]
    k2_best, k2_paths = _median_seconds(
        lambda: k2.shortest_path(fresh.pop(), use_double_scores=True), args.repeats)
    rows.append(("best path (tropical, float64)", ours_best, k2_best))
    ours_total, totals = _median_seconds(lambda: total_scores(batch, scores), args.repeats)
    fresh = [k2_read() for _ in range(args.repeats)]
    k2_total, k2_totals = _median_seconds(
        lambda: fresh.pop().get_tot_scores(use_double_scores=True, log_semiring=True), args.repeats)
    rows.append(("total log score (float64)", ours_total, k2_total))
    # Topology computed once (ours: the LevelSchedule the engine shares across every
    # algorithm of a batch; k2: the state batches and arc indexes it caches on the Fsa).
    schedule = LevelSchedule.of(batch)
    rows.append(("best path, topology cached",
                 _median_seconds(lambda: shortest_paths(batch, scores, schedule), args.repeats)[0],
                 _median_seconds(lambda: _bind(k2.shortest_path, _topology_cached(k2_read()),
                                               use_double_scores=True),
                                 args.repeats, setup=True)[0]))
    rows.append(("total log score, topology cached",
                 _median_seconds(lambda: total_scores(batch, scores, True, schedule),
                                 args.repeats)[0],
                 _median_seconds(lambda: _bind(_topology_cached(k2_read()).get_tot_scores,
                                               use_double_scores=True, log_semiring=True),
                                 args.repeats, setup=True)[0]))
    k2_best_scores = k2_paths.get_tot_scores(use_double_scores=True, log_semiring=False)
    best_gap = float((best.cpu() - k2_best_scores.cpu()).abs().max())
    total_gap = float((totals.cpu() - k2_totals.cpu()).abs().max())
    print(f"{batch.num_utts} lattices, {batch.num_arcs:,} arcs, {batch.num_states:,} states, "
          f"device {device}, torch {torch.__version__}, k2 {getattr(k2, '__dev_version__', '?')}, 1 thread")
    print(f"{'operation':34s} {'ours s':>9s} {'k2 s':>9s} {'ours/k2':>8s}")
    for name, ours, theirs in rows:
        print(f"{name:34s} {ours:9.4f} {theirs:9.4f} {ours / theirs:8.2f}")
    print(f"(ours: LevelSchedule alone {ours_levels:.4f} s, included in the first two score rows)")
    print(f"max |ours - k2|: best path {best_gap:.2e}, total log score {total_gap:.2e}")


if __name__ == "__main__":
    main()
