"""One streaming pass over a text corpus: words -> provisional type ids, counts, sentence ends.

A corpus is one or more UTF-8 files (or globs), one sentence per line, words
separated by whitespace, blank lines skipped: exactly ``read_sentences``'s
rules. The pass never holds more than one chunk of text: each chunk becomes a
1-D int32 array of *type ids* (first-seen order, 1-based; 0 marks a sentence
end) appended to a file, and the per-type counts grow alongside::

    text:      "the cat\\n\\na dog the\\n"
    type ids:  1 2 0 3 4 1 0        (types: the cat a dog; blank line dropped)
    counts:    [2 sentence ends, the 2, cat 1, a 1, dog 1]

The vocabulary is then chosen from the counts, and ``rescorer.data.cache``
maps type ids to LM tokens with vectorised numpy, never touching the text again.
"""
import glob
import hashlib
from collections import defaultdict
from dataclasses import dataclass
from itertools import count
from operator import itemgetter
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from rescorer.errors import InputFormatError
from rescorer.paths import PathLike

CHUNK_BYTES = 1 << 22  # 4 MiB of text per step (extended to the end of its line): ~70 MB of str objects
SENTENCE_END = 0  # the type id marking the end of a sentence (a text line)
_MARKER = "\0"  # stands for a line end during splitting; NUL bytes are refused in the text

Progress = Callable[[int], None]  # receives the number of bytes just processed


@dataclass
class CorpusScan:
    """What one pass over a corpus found.

    Attributes:
      type_path:
        File of ``positions`` int32 type ids (``SENTENCE_END`` after every sentence).
      types:
        The distinct words in first-seen order; ``types[i - 1]`` has type id i.
      counts:
        1-D int64 array of shape (len(types) + 1,): occurrences per type id
        (entry 0 counts sentences).
      positions:
        Number of entries in ``type_path`` (words + sentences).
    """

    type_path: Path
    types: List[str]
    counts: np.ndarray
    positions: int

    @property
    def sentences(self) -> int:
        return int(self.counts[SENTENCE_END])

    @property
    def words(self) -> int:
        return self.positions - self.sentences


def input_files(sources: Union[PathLike, Sequence[PathLike]]) -> List[Path]:
    """The files a ``--train`` value names: each source is a file or a glob; order kept, duplicates dropped.

    Raises:
      InputFormatError: naming a source that is neither an existing file nor a
        glob matching at least one file.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    files: List[Path] = []
    for source in sources:
        path = Path(source)
        if path.is_file():
            matches = [path]
        else:
            matches = sorted(Path(match) for match in glob.glob(str(source)) if Path(match).is_file())
        if not matches:
            raise InputFormatError("no such file, and no file matches it as a glob", path=source)
        files.extend(match for match in matches if match not in files)
    return files


def fingerprint(path: Path, progress: Optional[Progress] = None) -> Tuple[int, str]:
    """(size in bytes, SHA-256 hex digest) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(CHUNK_BYTES), b""):
                digest.update(block)
                size += len(block)
                if progress is not None:
                    progress(len(block))
    except OSError as error:
        raise InputFormatError(f"cannot read ({error.strerror})", path=path) from error
    return size, digest.hexdigest()


def _line_chunks(handle: BinaryIO) -> Iterator[bytes]:
    """Chunks of about ``CHUNK_BYTES`` that end at a line end (or the end of the file)."""
    while True:
        data = handle.read(CHUNK_BYTES)
        if not data:
            return
        if not data.endswith(b"\n"):
            data += handle.readline()
        yield data


def _decode(data: bytes, path: Path, first_line: int) -> str:
    """The chunk as text; a NUL byte or bad UTF-8 raises InputFormatError naming the line."""
    nul = data.find(b"\0")
    if nul >= 0:
        line = first_line + data.count(b"\n", 0, nul)
        raise InputFormatError("NUL byte in the text (expected UTF-8 text)", path=path, where=f"line {line}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = first_line + data.count(b"\n", 0, error.start)
        raise InputFormatError(f"not UTF-8 text ({error.reason})", path=path, where=f"line {line}") from error


class _TypeCounter:
    """Assigns type ids in first-seen order and counts occurrences, chunk by chunk."""

    def __init__(self) -> None:
        self.ids = defaultdict(count(1).__next__)  # word -> type id, a new id on first sight
        self.ids[_MARKER] = SENTENCE_END
        self.counts = np.zeros(1, dtype=np.int64)

    def encode(self, text: str, after_end: bool) -> np.ndarray:
        """1-D int32 type ids of ``text``'s words and line ends, blank lines dropped.

        Args:
          text:
            Whole lines of text.
          after_end:
            True when the previous id written was a sentence end (or nothing
            was written yet): a leading line end then marks a blank line.
        """
        words = text.replace("\n", " \0 ").split()
        if not words:  # only spaces after the last line end
            return np.zeros(0, dtype=np.int32)
        # itemgetter looks all words up in one C call (a new word gets the next id); 2+ words give a tuple.
        found = itemgetter(*words)(self.ids) if len(words) > 1 else [self.ids[word] for word in words]
        ids = np.fromiter(found, dtype=np.int32, count=len(words))  # (n,)
        ends = ids == SENTENCE_END
        previous_end = np.concatenate([[after_end], ends[:-1]])  # (n,)
        ids = ids[~(ends & previous_end)]  # a line end right after a line end is a blank line
        chunk_counts = np.bincount(ids)
        if chunk_counts.shape[0] > self.counts.shape[0]:
            self.counts = np.concatenate([self.counts, np.zeros(chunk_counts.shape[0] - self.counts.shape[0], np.int64)])
        self.counts[: chunk_counts.shape[0]] += chunk_counts
        return ids

    def types(self) -> List[str]:
        return list(self.ids)[1:]  # insertion order is id order; id 0 is the line-end marker


def scan_corpus(files: Sequence[Path], type_path: Path, progress: Optional[Progress] = None) -> CorpusScan:
    """Tokenize ``files`` (one corpus, in order) into provisional type ids written to ``type_path``.

    Args:
      files:
        UTF-8 text files, one sentence per line.
      type_path:
        Receives the int32 type ids (created or truncated).
      progress:
        Called with the number of bytes after each chunk.

    Returns:
      The scan; its counts include every word and sentence of all files.

    Raises:
      InputFormatError: naming the file (and line) if one is unreadable, not
        UTF-8 or holds a NUL byte; or naming the first file if the corpus has no words.
    """
    counter = _TypeCounter()
    positions = 0
    with open(type_path, "wb") as out:
        for path in files:
            after_end, line = True, 1
            try:
                with open(path, "rb") as handle:
                    for data in _line_chunks(handle):
                        ids = counter.encode(_decode(data, path, line), after_end)
                        if ids.shape[0]:
                            after_end = bool(ids[-1] == SENTENCE_END)
                            ids.tofile(out)
                            positions += ids.shape[0]
                        line += data.count(b"\n")
                        if progress is not None:
                            progress(len(data))
            except OSError as error:
                raise InputFormatError(f"cannot read ({error.strerror})", path=path) from error
            if not after_end:  # the last line had no line end
                np.array([SENTENCE_END], dtype=np.int32).tofile(out)
                counter.counts[SENTENCE_END] += 1
                positions += 1
    if positions == 0:
        raise InputFormatError("no words (expected one sentence per line)", path=files[0])
    return CorpusScan(Path(type_path), counter.types(), counter.counts, positions)


def iter_sentences(files: Sequence[Path]) -> Iterator[str]:
    """Each non-blank line of ``files`` with its words joined by single spaces (for sentencepiece).

    Raises:
      InputFormatError: naming the file and line of a NUL byte or bad UTF-8.
    """
    for path in files:
        with open(path, "rb") as handle:
            for line, raw in enumerate(handle, start=1):
                words = _decode(raw, path, line).split()
                if words:
                    yield " ".join(words)
