"""Streamed reading of ARPA back-off n-gram files (``.arpa`` or ``.arpa.gz``).

The format (Doug Paul's, as written by SRILM, KenLM, IRSTLM, pocketsphinx)::

    \\data\\
    ngram 1=3
    ngram 2=1

    \\1-grams:
    -1.0  <s>  -0.5        log10 prob, words, optional log10 back-off weight
    -0.5  a    -0.3
    -0.7  </s>

    \\2-grams:
    -0.2  <s> a

    \\end\\

Fields are separated by any whitespace. The file is read line by line (never
whole into memory), decompressed on the fly when it starts with the gzip magic
bytes, and converted section by section into flat arrays of word ids. Words
get ids in the order of the ``\\1-grams:`` section. Every problem raises
``InputFormatError`` naming the file and line.
"""
import gzip
import io
import math
import zlib
from array import array
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, TextIO, Tuple

import torch
from torch import Tensor

from rescorer.errors import InputFormatError
from rescorer.paths import PathLike

LN_10 = math.log(10.0)
# Refuse headers whose counts cannot be real (2^40 n-grams would need > 10 TB of text).
MAX_NGRAMS = 2 ** 40
# How often (in lines) the progress callback hears about it.
PROGRESS_EVERY = 1 << 16

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(bytes_read, total_bytes)`` while a file is read (bytes of
the file on disk, compressed for ``.gz``)."""


@dataclass(frozen=True)
class ArpaSection:
    """The n-grams of one order, in file order.

    Attributes:
      words:
        2-D int64 tensor of shape (N_k, k), word ids of each n-gram, oldest first.
      log_probs:
        1-D float64 tensor of shape (N_k,), natural-log probabilities (ARPA's
        log10 times ln 10).
      backoffs:
        1-D float64 tensor of shape (N_k,), natural-log back-off weights (0 where
        the line has none).
    """

    words: Tensor
    log_probs: Tensor
    backoffs: Tensor


@dataclass(frozen=True)
class ArpaFile:
    """A parsed ARPA file.

    Attributes:
      vocabulary:
        The words in unigram order (id = position).
      sections:
        One ``ArpaSection`` per order 1..n (``sections[k-1]`` has the k-grams).
    """

    vocabulary: List[str]
    sections: List[ArpaSection]

    @property
    def order(self) -> int:
        """n, the highest n-gram order."""
        return len(self.sections)


class _Reader:
    """Line iterator over a possibly gzipped file that knows its line number and position."""

    def __init__(self, path: PathLike, progress: Optional[ProgressCallback]) -> None:
        self.path = path
        self.raw = open(path, "rb")
        self.total = max(1, _file_size(self.raw))
        magic = self.raw.read(2)
        self.raw.seek(0)
        binary = gzip.GzipFile(fileobj=self.raw) if magic == b"\x1f\x8b" else self.raw
        self.text: TextIO = io.TextIOWrapper(binary, encoding="utf-8")
        self.line_number = 0
        self.progress = progress

    def __enter__(self) -> "_Reader":
        return self

    def __exit__(self, *exc_info) -> None:
        self.text.close()
        self.raw.close()

    def fail(self, message: str) -> None:
        raise InputFormatError(message, path=self.path, where=f"line {self.line_number}")

    def next_line(self) -> Optional[str]:
        """The next line without surrounding whitespace, or None at the end of the file."""
        try:
            line = self.text.readline()
        except UnicodeDecodeError as error:
            self.fail(f"not UTF-8 text ({error.reason})")
        except (OSError, EOFError, zlib.error) as error:  # gzip: truncated or corrupt
            self.fail(f"cannot decompress ({error})")
        if not line:
            return None
        self.line_number += 1
        if self.progress is not None and self.line_number % PROGRESS_EVERY == 0:
            self.progress(self.raw.tell(), self.total)
        return line.strip()

    def next_content_line(self) -> Optional[str]:
        """The next non-blank line, or None at the end of the file."""
        while True:
            line = self.next_line()
            if line is None or line:
                return line


def _file_size(handle) -> int:
    handle.seek(0, io.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    return size


def read_arpa(path: PathLike, progress: Optional[ProgressCallback] = None) -> ArpaFile:
    """Read an ARPA file, streamed.

    Args:
      path:
        An ``.arpa`` file, gzipped or not (detected from the content).
      progress:
        Optional ``progress(bytes_read, total_bytes)`` callback.

    Returns:
      The vocabulary and the n-grams of every order.

    Raises:
      InputFormatError: naming the file and line, if the file cannot be read, is
        truncated, has counts that do not match its header, a duplicate unigram,
        or an n-gram word that is not a unigram.
    """
    try:
        with _Reader(path, progress) as reader:
            counts, heading = _read_header(reader)
            index: Dict[str, int] = {}
            sections = []
            for order, count in counts:
                if order > 1:
                    heading = reader.next_content_line()
                if heading != f"\\{order}-grams:":
                    reader.fail(f"expected \\{order}-grams:, got {heading!r}")
                sections.append(_read_section(reader, order, count, index))
            if reader.next_content_line() != "\\end\\":
                reader.fail("expected \\end\\ after the last n-gram section")
            if progress is not None:
                progress(reader.total, reader.total)
    except OSError as error:
        raise InputFormatError(f"cannot read the ARPA file ({error.strerror or error})", path=path) from error
    vocabulary = [""] * len(index)
    for word, word_id in index.items():
        vocabulary[word_id] = word
    return ArpaFile(vocabulary=vocabulary, sections=sections)


def _read_header(reader: _Reader) -> Tuple[List[Tuple[int, int]], Optional[str]]:
    """The ``ngram k=count`` lines after ``\\data\\``.

    Returns:
      ``([(k, count) for k = 1..n], the line after the counts)``.
    """
    line = reader.next_content_line()
    while line is not None and line != "\\data\\":  # text before \data\ is a comment
        line = reader.next_content_line()
    if line is None:
        reader.fail("no \\data\\ header (not an ARPA file)")
    counts: List[Tuple[int, int]] = []
    line = reader.next_content_line()
    while line is not None and line.startswith("ngram "):
        try:
            order_text, count_text = line[len("ngram "):].split("=")
            order, count = int(order_text), int(count_text)
        except ValueError:
            reader.fail(f"bad count line {line!r} (expected 'ngram K=COUNT')")
        if order != len(counts) + 1 or not 0 <= count <= MAX_NGRAMS:
            reader.fail(f"bad count line {line!r} (expected order {len(counts) + 1} "
                        f"and a count in 0..{MAX_NGRAMS})")
        counts.append((order, count))
        line = reader.next_content_line()
    if not counts or counts[0][1] == 0:
        reader.fail("the header declares no unigrams (expected 'ngram 1=COUNT' lines)")
    return counts, line


def _read_section(reader: _Reader, order: int, count: int, index: Dict[str, int]) -> ArpaSection:
    """The lines after ``\\K-grams:``: ``count`` lines of ``prob w1..wK [backoff]``."""
    word_ids = array("i")  # int32 while parsing (vocabularies are < 2^31); int64 below
    log_probs = array("d")
    backoffs = array("d")
    for _ in range(count):
        line = reader.next_content_line()
        if line is None or line.startswith("\\"):
            reader.fail(f"the {order}-gram section ends early (header says {count} lines)")
        fields = line.split()
        if len(fields) not in (order + 1, order + 2):
            reader.fail(f"expected a log10 prob, {order} word(s) and an optional back-off, "
                        f"got {len(fields)} field(s)")
        try:
            log_probs.append(float(fields[0]))
            backoffs.append(float(fields[order + 1]) if len(fields) == order + 2 else 0.0)
        except ValueError:
            reader.fail(f"bad number in {line!r}")
        if order == 1:
            word = fields[1]
            if word in index:
                reader.fail(f"duplicate unigram {word!r}")
            index[word] = len(index)
            word_ids.append(index[word])
            continue
        for word in fields[1:order + 1]:
            word_id = index.get(word)
            if word_id is None:
                reader.fail(f"word {word!r} of a {order}-gram is not among the unigrams")
            word_ids.append(word_id)
    return ArpaSection(
        words=_tensor(word_ids, torch.int32).to(torch.int64).reshape(count, order),  # (N_k, k)
        log_probs=_tensor(log_probs, torch.float64) * LN_10,  # log10 -> ln
        backoffs=_tensor(backoffs, torch.float64) * LN_10,
    )


def _tensor(values: array, dtype: torch.dtype) -> Tensor:
    """A tensor view of a typed array (no Python loop over its items; callers convert it,
    which copies, so the array can be freed)."""
    if len(values) == 0:
        return torch.zeros(0, dtype=dtype)
    return torch.frombuffer(values, dtype=dtype)
