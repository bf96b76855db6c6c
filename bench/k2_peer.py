"""Our batched engine against real k2 on the same lattices, side by side, one torch thread.

Usage (in the pinned env, with a k2 file made by ``fprescore convert ... --to k2``)::

    fprescore convert ../shared/data/asr-dev/lat --to k2 -o exp/engine/asr-dev.pt
    .venv-k2/bin/python bench/k2_peer.py exp/engine/asr-dev.pt [--repeats 9] [--device cpu]

Times, for ours and for k2, in ``--repeats`` back-to-back pairs (min over the
pairs, and the spread of the per-pair ratios): reading the file into a batch;
the best path (float64 scores, tropical) and the total log score (float64,
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
from typing import Callable, Dict, List, Tuple

import torch

from rescorer.algorithms.best_path import shortest_paths, total_scores
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.torch_pickle import load_torch_dict
from rescorer.lattice.batch import LatticeBatch


def _seconds(function: Callable[[], object]) -> Tuple[float, object]:
    """(seconds, result) of one call of ``function``."""
    start = time.perf_counter()
    result = function()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def _pairs(ours: Callable[[], Callable[[], object]], theirs: Callable[[], Callable[[], object]],
           repeats: int) -> Dict[str, object]:
    """Time ours and k2 in ``repeats`` back-to-back pairs (alternating who goes first).

    Each argument builds, untimed, the zero-argument call to time (k2's needs a
    freshly read Fsa per call). Both tools see the same load within a pair, so
    the min of each over the pairs, and each pair's ratio, are what the
    machine's other jobs disturb least.
    """
    times: Dict[str, List[float]] = {"ours": [], "k2": []}
    result = None
    for repeat in range(repeats):
        order = ("ours", "k2") if repeat % 2 == 0 else ("k2", "ours")
        for name in order:
            seconds, value = _seconds((ours if name == "ours" else theirs)())
            times[name].append(seconds)
            if name == "ours":
                result = value
    ratios = sorted(mine / peer for mine, peer in zip(times["ours"], times["k2"]))
    return {"ours": min(times["ours"]), "k2": min(times["k2"]), "ratios": ratios, "result": result}


def _load() -> str:
    """The 1-minute load average (Linux), for the printout."""
    try:
        return Path("/proc/loadavg").read_text().split()[0]
    except OSError:
        return "?"


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
    parser.add_argument("--repeats", type=int, default=9)
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

    load_before = _load()
    batch = ours_read()
    scores = batch.am_scores + batch.ngram_scores  # k2's float32 scores
    schedule = LevelSchedule.of(batch)  # for the "topology cached" rows
    rows = [
        ("read file into a batch", _pairs(lambda: ours_read, lambda: k2_read, args.repeats)),
        ("best path (tropical, float64)", _pairs(
            lambda: _bind(shortest_paths, batch, scores),
            lambda: _bind(k2.shortest_path, k2_read(), use_double_scores=True), args.repeats)),
        ("total log score (float64)", _pairs(
            lambda: _bind(total_scores, batch, scores),
            lambda: _bind(k2_read().get_tot_scores, use_double_scores=True, log_semiring=True),
            args.repeats)),
        # Topology computed once (ours: the LevelSchedule the engine shares across every
        # algorithm of a batch; k2: the state batches and arc indexes it caches on the Fsa).
        ("best path, topology cached", _pairs(
            lambda: _bind(shortest_paths, batch, scores, schedule),
            lambda: _bind(k2.shortest_path, _topology_cached(k2_read()), use_double_scores=True),
            args.repeats)),
        ("total log score, topology cached", _pairs(
            lambda: _bind(total_scores, batch, scores, True, schedule),
            lambda: _bind(_topology_cached(k2_read()).get_tot_scores, use_double_scores=True,
                          log_semiring=True), args.repeats)),
    ]
    levels = min(_seconds(lambda: LevelSchedule.of(batch))[0] for _ in range(args.repeats))
    best = rows[1][1]["result"][0]
    totals = rows[2][1]["result"]
    k2_paths = k2.shortest_path(k2_read(), use_double_scores=True)
    k2_best_scores = k2_paths.get_tot_scores(use_double_scores=True, log_semiring=False)
    k2_totals = k2_read().get_tot_scores(use_double_scores=True, log_semiring=True)
    best_gap = float((best.cpu() - k2_best_scores.cpu()).abs().max())
    total_gap = float((totals.cpu() - k2_totals.cpu()).abs().max())
    print(f"{batch.num_utts} lattices, {batch.num_arcs:,} arcs, {batch.num_states:,} states, "
          f"device {device}, torch {torch.__version__}, k2 {getattr(k2, '__dev_version__', '?')}, "
          f"1 thread, {args.repeats} back-to-back pairs, load {load_before} -> {_load()}")
    print(f"{'operation':34s} {'ours s':>8s} {'k2 s':>8s} {'ratio':>6s}  pair ratios: min  median  max")
    for name, row in rows:
        ratios = row["ratios"]
        print(f"{name:34s} {row['ours']:8.4f} {row['k2']:8.4f} {row['ours'] / row['k2']:6.2f}"
              f"  {ratios[0]:17.2f} {statistics.median(ratios):7.2f} {ratios[-1]:5.2f}")
    print("(seconds: min over the pairs; ratio: min ours / min k2; "
          f"ours: LevelSchedule alone {levels:.4f} s, inside the two from-scratch rows)")
    print(f"max |ours - k2|: best path {best_gap:.2e}, total log score {total_gap:.2e}")


if __name__ == "__main__":
    main()
