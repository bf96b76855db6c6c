#!/usr/bin/env python3
"""Check that the lattices + the rescorer's reader reproduce the decoder's 1-best.

Plain Viterbi over each lattice with the fixed first-pass scores
(am + ngram, i.e. a + lmscale*l + wdpenalty for SLF) through the project's own
readers (``rescorer.formats``) and ``rescorer.algorithms.best_path``; counts
utterances whose word string equals the decoder's ``hyp()`` and prints WERs.
"""
import argparse
from pathlib import Path
from typing import Dict, List

import kaldialign

from rescorer import read_lattices
from rescorer.algorithms.best_path import shortest_paths
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable


def read_text(path: Path) -> Dict[str, List[str]]:
    """Kaldi text as utt_id -> words."""
    table = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        fields = line.split()
        if fields:
            table[fields[0]] = fields[1:]
    return table


def errors(reference: List[str], hypothesis: List[str]) -> int:
    """Edit distance (substitutions + deletions + insertions)."""
    return kaldialign.edit_distance(reference, hypothesis)["total"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("lattices", type=Path, nargs="+", help="k2 .pt file(s) or SLF files/folders")
    parser.add_argument("--words", type=Path, default=None)
    parser.add_argument("--onebest", type=Path, required=True)
    parser.add_argument("--text", type=Path, required=True)
    args = parser.parse_args()

    symbols = SymbolTable.from_file(args.words) if args.words else SymbolTable()
    lattices = read_lattices(args.lattices, symbols).to_lattices()
    decoder, references = read_text(args.onebest), read_text(args.text)
    agree = viterbi_errors = decoder_errors = reference_words = 0
    for lattice in lattices:
        _, _, arcs = shortest_paths(LatticeBatch.from_lattices([lattice]),
                                    lattice.am_scores + lattice.ngram_scores)
        splits = lattice.word_splits.tolist()
        ids = [lattice.word_ids[splits[a]:splits[a + 1]].tolist() for a in arcs.tolist()]
        words = [symbols.word(i) for group in ids for i in group]
        reference = references[lattice.utt_id]
        agree += words == decoder[lattice.utt_id]
        viterbi_errors += errors(reference, words)
        decoder_errors += errors(reference, decoder[lattice.utt_id])
        reference_words += len(reference)
    count = len(lattices)
    print(f"Viterbi 1-best equals the decoder's hyp() in {agree}/{count} utterances; "
          f"WER Viterbi {100 * viterbi_errors / reference_words:.2f}% "
          f"({viterbi_errors}/{reference_words}), decoder "
          f"{100 * decoder_errors / reference_words:.2f}% ({decoder_errors}/{reference_words})")


if __name__ == "__main__":
    main()
