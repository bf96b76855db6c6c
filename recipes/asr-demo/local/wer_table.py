#!/usr/bin/env python3
"""Print a markdown WER table for several Kaldi-text hypothesis files.

Usage: wer_table.py --refs text NAME=hyp_file [NAME=hyp_file ...]
Utterances missing from a hypothesis file count as all deletions.
"""
import argparse
import sys
from pathlib import Path

import kaldialign

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_onebest import read_text  # noqa: E402


def word_error_rate(references, hypotheses):
    """(errors, reference words) of ``hypotheses`` against ``references`` (dicts of word lists)."""
    errors = words = 0
    for utt_id, reference in references.items():
        errors += kaldialign.edit_distance(reference, hypotheses.get(utt_id, []))["total"]
        words += len(reference)
    return errors, words


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--refs", type=Path, required=True)
    parser.add_argument("systems", nargs="+", help="NAME=FILE (Kaldi text)")
    args = parser.parse_args()
    references = read_text(args.refs)
    print("| system | WER % | errors / words |\n|---|---|---|")
    for system in args.systems:
        name, _, path = system.partition("=")
        if not Path(path).exists():
            print(f"| {name} | (missing: {path}) | |")
            continue
        errors, words = word_error_rate(references, read_text(Path(path)))
        print(f"| {name} | {100 * errors / words:.2f} | {errors} / {words} |")


if __name__ == "__main__":
    main()
