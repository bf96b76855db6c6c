"""Text corpora: PTB (Mikolov), WikiText-2 (tokenized) and plain one-sentence-per-line text.

All three share one reader: a line is a sentence of whitespace-separated
words, blank lines are skipped, and the caller appends ``<eos>`` when it
builds the token stream. PTB lines start with a space and end with " \\n";
WikiText-2 has `` = Title = `` heading lines (kept as sentences) and blank
lines (skipped).

Examples:
    >>> files = corpus_files("ptb", Path("data/ptb"))
    >>> sorted(files)
    ['test', 'train', 'valid']
    >>> files["train"].name
    'ptb.train.txt'
"""
from pathlib import Path
from typing import Dict, List, Tuple

from rescorer.errors import ConfigError, InputFormatError

SPLITS = ("train", "valid", "test")

# For each corpus, candidate file names per split, first existing one wins.
CORPUS_FILE_NAMES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "ptb": {split: (f"ptb.{split}.txt",) for split in SPLITS},
    "wikitext2": {split: (f"wiki.{split}.tokens", f"{split}.txt") for split in SPLITS},
}


def corpus_files(corpus: str, data_dir: Path) -> Dict[str, Path]:
    """Locate the train/valid/test files of a known corpus in ``data_dir``.

    Args:
      corpus:
        "ptb" or "wikitext2".
      data_dir:
        Folder holding the files (as written by ``fprescore data download``).

    Returns:
      A dict split -> path for every split whose file exists.

    Raises:
      ConfigError: for an unknown corpus.
      InputFormatError: if the training file is missing.
    """
    if corpus not in CORPUS_FILE_NAMES:
        raise ConfigError(f"unknown corpus (expected one of {sorted(CORPUS_FILE_NAMES)}, got {corpus!r})")
    found = {}
    for split, names in CORPUS_FILE_NAMES[corpus].items():
        for name in names:
            if (Path(data_dir) / name).is_file():
                found[split] = Path(data_dir) / name
                break
    if "train" not in found:
        expected = " or ".join(CORPUS_FILE_NAMES[corpus]["train"])
        raise InputFormatError(
            f"no {corpus} training file (expected {expected}; run `fprescore data download {corpus}`)",
            path=data_dir,
        )
    return found


def read_sentences(path: Path) -> List[List[str]]:
    """Read one sentence per line, words separated by whitespace; skip blank lines.

    Args:
      path:
        A UTF-8 text file (PTB, WikiText-2 or plain).

    Returns:
      The sentences, each a non-empty list of words (no ``<eos>``).

    Raises:
      InputFormatError: naming the file (and line) if it is missing, not
        UTF-8, or holds no words.
    """
    path = Path(path)
    sentences = []
    try:
        with open(path, "rb") as handle:
            # Decode line by line so an encoding error names its line.
            for line_number, raw in enumerate(handle, start=1):
                words = raw.decode("utf-8").split()
                if words:
                    sentences.append(words)
    except FileNotFoundError as error:
        raise InputFormatError("file not found (expected a text file, one sentence per line)", path=path) from error
    except UnicodeDecodeError as error:
        raise InputFormatError(
            f"not UTF-8 text ({error.reason} at byte {error.start} of the line)",
            path=path,
            where=f"line {line_number}",
        ) from error
    except OSError as error:
        raise InputFormatError(f"cannot read ({error.strerror})", path=path) from error
    if not sentences:
        raise InputFormatError("no words (expected one sentence per line)", path=path)
    return sentences
