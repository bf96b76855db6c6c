"""Oracle WER and arcs kept after beam pruning of the DEV lattices (docs/results/algorithms.md).

Usage: .venv/bin/python bench/oracle_beams.py   (single-threaded torch)
"""
from pathlib import Path

import torch

from rescorer.algorithms.oracle import oracle_errors
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.topsort import topological_levels
from rescorer.formats.slf import read_slf

DEV = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "asr-dev"
BEAMS = (5.0, 10.0, 20.0, 30.0, 50.0, 100.0)


def main():
    torch.set_num_threads(1)
    references = {line.split()[0]: line.split()[1:]
                  for line in (DEV / "text").read_text().splitlines()}
    errors = {beam: 0 for beam in BEAMS}
    kept = {beam: 0 for beam in BEAMS}
    words = arcs = lattices = 0
    symbols = None
    for path in sorted((DEV / "lat").glob("*.slf.gz")):
        (lattice,), symbols = read_slf(path, symbols)
        reference = [symbols.add(word) for word in references[lattice.utt_id]]
        words, arcs, lattices = words + len(reference), arcs + lattice.num_arcs, lattices + 1
        scores = lattice.am_scores + lattice.ngram_scores
        levels = topological_levels(lattice)
        for beam in BEAMS:
            pruned, _ = prune_by_beam(lattice, scores, beam, levels=levels)
            errors[beam] += oracle_errors(pruned, reference)[0]
            kept[beam] += pruned.num_arcs
    for beam in BEAMS:
        print(f"beam {beam:5.0f}: arcs kept {kept[beam] / lattices:8.1f} per lattice "
              f"({100 * kept[beam] / arcs:.2f}%), oracle WER {100 * errors[beam] / words:.2f}% "
              f"({errors[beam]}/{words})")


if __name__ == "__main__":
    main()
