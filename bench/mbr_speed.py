"""MBR decoding speed on rescored lattices: per lattice (the old way) against batched.

Input: the ``lattices.pt`` of ``fprescore rescore --write-lattices`` (the expanded
lattices with their ``nnlm_scores``). Every lattice is decoded on
``total = am + ngram + lm_scale * nnlm`` (the defaults of ``rescore`` with
``--lm-scale``), posterior scale ``--mbr-scale``:

* ``--per-lattice``: ``mbr_decode`` on each lattice alone, as
  ``bench/ngram_mbr_ptb3g.py`` did; runs with any version of the package
  (``PYTHONPATH=/path/to/older/checkout`` measures that one);
* otherwise ``mbr_decode_batch`` on work units of ``--batch-size`` lattices, as
  ``rescore --decode mbr`` runs it.

Prints CPU and wall seconds (one torch thread), the load average, and a digest of
the consensus words and confidences so that two runs can be compared.

Usage: PYTHONPATH=. python bench/mbr_speed.py OUT/lattices.pt [--mbr-scale 0.105] [--lm-scale 1]
       [--batch-size 16] [--per-lattice] [--repeat 3]
"""
import argparse
import hashlib
import os
import time

import torch

from rescorer.lattice.batch import LatticeBatch


def decode(batch: LatticeBatch, totals: torch.Tensor, scale: float, per_lattice: bool, size: int):
    """(word ids, confidences) of every lattice's consensus."""
    bounds = batch.arc_splits.tolist()
    if per_lattice:
        from rescorer.algorithms.mbr import mbr_decode

        found = [mbr_decode(batch.lattice(u), totals[bounds[u]:bounds[u + 1]], scale)
                 for u in range(batch.num_utts)]
    else:
        from rescorer.algorithms.mbr import mbr_decode_batch

        found = []
        for start in range(0, batch.num_utts, size):
            indices = list(range(start, min(start + size, batch.num_utts)))
            arcs = torch.cat([torch.arange(bounds[u], bounds[u + 1]) for u in indices])
            found += mbr_decode_batch(batch.select(indices), totals[arcs], scale)
    return [(result.word_ids.tolist(), result.confidences.tolist()) for result in found]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lattices")
    parser.add_argument("--mbr-scale", type=float, default=0.105263)
    parser.add_argument("--lm-scale", type=float, default=1.0)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--per-lattice", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    batch = LatticeBatch.from_k2_dict(torch.load(args.lattices))
    totals = (batch.am_scores.double() + batch.ngram_scores.double()
              + args.lm_scale * batch.arc_extras["nnlm_scores"].double())
    best_cpu = best_wall = float("inf")
    for _ in range(args.repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        results = decode(batch, totals, args.mbr_scale, args.per_lattice, args.batch_size)
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    digest = hashlib.sha1(repr([(words, [round(c, 9) for c in conf]) for words, conf in results])
                          .encode()).hexdigest()[:12]
    how = "per lattice" if args.per_lattice else f"batched by {args.batch_size}"
    print(f"{batch.num_utts} lattices, {batch.num_arcs} arcs, {how}: best of {args.repeat}: "
          f"{best_cpu:.2f} s CPU, {best_wall:.2f} s wall; load {os.getloadavg()[0]:.2f}; "
          f"words+confidences digest {digest}")


if __name__ == "__main__":
    main()
