#!/usr/bin/env python3
"""Choose speakable sentences from a PTB-style text file (stage 1 of asr-demo).

A line qualifies if it has no ``<unk>`` token, no ``N`` token and no ``$``;
after joining split clitics ("was n't" -> "wasn't") it must have 8-22 words,
all in the pocketsphinx dictionary. This reproduces the DEV set selection
(``shared/data/asr-dev/README.md``): lines 1..1880 of ``ptb.test.txt`` give
dev-0001..dev-0240.

Writes ``text`` (Kaldi: ``UTTID word ...``, lowercase) and ``utt2line``
(``UTTID LINE``, 1-based line of the source file).
"""
import argparse
import re
import sys
from pathlib import Path
from typing import Iterable, List, Optional, Set, Tuple

CLITICS = frozenset(["n't", "'s", "'re", "'ve", "'ll", "'d", "'m"])
MIN_WORDS = 8
MAX_WORDS = 22
_VARIANT = re.compile(r"\(\d+\)$")


def detokenize(tokens: Iterable[str]) -> List[str]:
    """Join the split clitics to the previous token ("company 's" -> "company's").

    Other tokens (e.g. a lone possessive ``'``) are unchanged.
    """
    words: List[str] = []
    for token in tokens:
        if token in CLITICS and words:
            words[-1] += token
        else:
            words.append(token)
    return words


def read_dictionary_words(path: Path) -> Set[str]:
    """Lowercase head words of a CMU-style dictionary; ``word(2)`` counts as ``word``."""
    words = set()
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if fields:
                words.add(_VARIANT.sub("", fields[0]).lower())
    return words


def sentence_words(line: str, dictionary: Set[str]) -> Optional[List[str]]:
    """The lowercase words of a qualifying line, or None if it is skipped."""
    tokens = line.split()
    if "<unk>" in tokens or "N" in tokens or "$" in line:
        return None
    words = [word.lower() for word in detokenize(tokens)]
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        return None
    if any(word not in dictionary for word in words):
        return None
    return words


def select_sentences(
    lines: List[str],
    dictionary: Set[str],
    first_line: int,
    last_line: int,
    num_utts: int,
) -> List[Tuple[int, List[str]]]:
    """The first ``num_utts`` qualifying lines among ``first_line..last_line`` (1-based).

    Returns:
      (line number, words) pairs in file order.
    """
    chosen = []
    for number in range(first_line, min(last_line, len(lines)) + 1):
        words = sentence_words(lines[number - 1], dictionary)
        if words is not None:
            chosen.append((number, words))
            if len(chosen) == num_utts:
                break
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--text", type=Path, required=True, help="PTB-style source text")
    parser.add_argument("--dict", type=Path, required=True, help="cmudict-en-us.dict")
    parser.add_argument("--first-line", type=int, default=1)
    parser.add_argument("--last-line", type=int, default=0, help="0: first half of the file")
    parser.add_argument("--num-utts", type=int, default=100)
    parser.add_argument("--prefix", default="dev", help="utterance ids are PREFIX-0001, ...")
    parser.add_argument("--out-dir", type=Path, required=True)
    args = parser.parse_args()

    lines = args.text.read_text(encoding="utf-8").splitlines()
    last_line = args.last_line or len(lines) // 2
    chosen = select_sentences(
        lines, read_dictionary_words(args.dict), args.first_line, last_line, args.num_utts
    )
    if len(chosen) < args.num_utts:
        print(f"{args.text}: only {len(chosen)} of {args.num_utts} requested lines qualify "
              f"in lines {args.first_line}..{last_line}", file=sys.stderr)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    ids = [f"{args.prefix}-{index + 1:04d}" for index in range(len(chosen))]
    text = "".join(f"{u} {' '.join(words)}\n" for u, (_, words) in zip(ids, chosen))
    utt2line = "".join(f"{u} {number}\n" for u, (number, _) in zip(ids, chosen))
    (args.out_dir / "text").write_text(text, encoding="utf-8")
    (args.out_dir / "utt2line").write_text(utt2line, encoding="utf-8")
    print(f"selected {len(chosen)} sentences from {args.text} lines {args.first_line}..{last_line}")


if __name__ == "__main__":
    main()
