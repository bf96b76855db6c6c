"""Oracle WER and arcs kept after beam pruning of the DEV lattices (docs/results/algorithms.md).

Usage: .venv/bin/python bench/oracle_beams.py   (single-threaded torch; all 240 lattices
pruned and scored against their references as one batch per beam)
"""
from pathlib import Path

import torch

from rescorer.algorithms.oracle import oracle_errors
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.formats.slf import read_slf
from rescorer.lattice.batch import LatticeBatch

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asr-dev"
BEAMS = (5.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def main():
    torch.set_num_threads(1)
    references = {line.split()[0]: line.split()[1:]
                  for line in (DEV / "text").read_text().splitlines()}
    lattices, symbols = [], None
    for path in sorted((DEV / "lat").glob("*.slf.gz")):
        (lattice,), symbols = read_slf(path, symbols)
        lattices.append(lattice)
    batch = LatticeBatch.from_lattices(lattices)
    reference_ids = [[symbols.add(word) for word in references[utt_id]] for utt_id in batch.utt_ids]
    words = sum(len(reference) for reference in reference_ids)
    schedule = LevelSchedule.of(batch)
    scores = batch.am_scores + batch.ngram_scores
    for beam in BEAMS:
        pruned, kept = prune_by_beam(schedule, scores, beam)
        errors = int(oracle_errors(pruned, reference_ids)[0].sum())
        print(f"beam {beam:5.0f}: arcs kept {kept.numel() / batch.num_utts:8.1f} per lattice "
              f"({100 * kept.numel() / batch.num_arcs:.2f}%), oracle WER {100 * errors / words:.2f}% "
              f"({errors}/{words})")


if __name__ == "__main__":
    main()
