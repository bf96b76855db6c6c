"""Tokenized corpus caches: memory-mapped token ids plus sentence offsets, built once, reused.

A cache entry is a folder ``CACHE_DIR/<key>/``::

    tokens.bin        T token ids, uint16 when V <= 65536 else int32 (the targets stream:
                      each sentence's tokens then its <eos>)
    offsets.bin       S + 1 int64 row splits of [sentence][token]: sentence s is
                      tokens[offsets[s]:offsets[s+1]]
    word_offsets.bin  S + 1 int64 cumulative text words before each sentence
    oov_offsets.bin   S + 1 int64 cumulative OOV words before each sentence
    meta.json         counts, dtype, bos/eos, the vocabulary's digest and the inputs

The key is a SHA-256 over the cache format, the vocabulary's digest and every
input's size and SHA-256, so an entry is reused when nothing changed and a new
one is built when anything did. An entry is built in ``<key>.tmp-<pid>/`` and
renamed into place, so a killed build never leaves a folder that looks valid
(stale temporary folders of dead processes are removed by the next build).
"""
import json
import os
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from rescorer.atomic import process_alive
from rescorer.data.scan import SENTENCE_END, CorpusScan, Progress
from rescorer.data.vocab import Vocabulary
from rescorer.errors import InputFormatError

CACHE_FORMAT = 1
ENCODE_CHUNK = 1 << 21  # type ids per vectorised encoding step (~60 MB of temporaries)
FILES = ("tokens", "offsets", "word_offsets", "oov_offsets")


@dataclass
class TokenCache:
    """An opened cache entry (or a prefix of one); arrays are read-only memory maps.

    Attributes:
      directory:
        The entry's folder.
      tokens:
        1-D uint16/int32 array of shape (T,), the target stream.
      offsets:
        1-D int64 array of shape (S + 1,), sentence row splits into ``tokens``.
      word_offsets, oov_offsets:
        1-D int64 arrays of shape (S + 1,), cumulative text words and OOV words.
      bos_id:
        The input token at every sentence start.
    """

    directory: Path
    tokens: np.ndarray
    offsets: np.ndarray
    word_offsets: np.ndarray
    oov_offsets: np.ndarray
    bos_id: int

    def __len__(self) -> int:
        return int(self.offsets[-1])

    @property
    def sentences(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def words(self) -> int:
        return int(self.word_offsets[-1])

    @property
    def oov_words(self) -> int:
        return int(self.oov_offsets[-1])

    @property
    def oov_rate(self) -> float:
        return self.oov_words / self.words if self.words else 0.0

    def prefix(self, max_tokens: Optional[int]) -> "TokenCache":
        """The leading whole sentences holding at most ``max_tokens`` tokens (at least one sentence)."""
        if max_tokens is None or max_tokens >= len(self):
            return self
        kept = max(int(np.searchsorted(self.offsets, max_tokens, side="right")) - 1, 1)  # sentences kept
        return replace(
            self,
            tokens=self.tokens[: int(self.offsets[kept])],
            offsets=self.offsets[: kept + 1],
            word_offsets=self.word_offsets[: kept + 1],
            oov_offsets=self.oov_offsets[: kept + 1],
        )


def open_entry(directory: Path) -> TokenCache:
    """Memory-map a complete entry (its ``meta.json`` says how)."""
    meta = json.loads((directory / "meta.json").read_text())
    sentences = meta["sentences"] + 1

    def mapped(name: str, dtype: str, length: int) -> np.ndarray:
        return np.memmap(directory / f"{name}.bin", dtype=dtype, mode="r", shape=(length,))

    return TokenCache(
        directory,
        mapped("tokens", meta["dtype"], meta["tokens"]),
        mapped("offsets", "int64", sentences),
        mapped("word_offsets", "int64", sentences),
        mapped("oov_offsets", "int64", sentences),
        int(meta["bos_id"]),
    )


def token_dtype(vocab_size: int) -> str:
    """uint16 when every id fits, else int32."""
    return "uint16" if vocab_size <= 1 << 16 else "int32"


def _type_table(types: Sequence[str], vocab: Vocabulary):
    """LM tokens of every type id, as ragged [type][token] plus an OOV flag per type.

    Returns:
      (lengths, flat, oov): 1-D int64 (n + 1,) tokens per type (type 0, the
      sentence end, is ``[eos_id]``); 1-D int64 (lengths.sum(),) the tokens; 1-D
      bool (n + 1,) whether the type is an OOV word.
    """
    encoded = [vocab.encode_word(word) for word in types]
    lengths = np.array([1] + [len(tokens) for tokens in encoded], dtype=np.int64)
    flat = np.array([vocab.eos_id] + [token for tokens in encoded for token in tokens], dtype=np.int64)
    oov = np.array([False] + [vocab.is_oov(word) for word in types], dtype=bool)
    return lengths, flat, oov


def _expand(ids: np.ndarray, lengths: np.ndarray, flat: np.ndarray, firsts: np.ndarray) -> np.ndarray:
    """Concatenated tokens of the type ids ``ids`` (1-D), vectorised."""
    counts = lengths[ids]  # (n,)
    total = int(counts.sum())
    begins = np.repeat(np.cumsum(counts) - counts, counts)  # (total,) output index of each type's first token
    return flat[np.repeat(firsts[ids], counts) + (np.arange(total) - begins)]  # (total,)


def encode_scan(scan: CorpusScan, vocab: Vocabulary, directory: Path, progress: Optional[Progress] = None) -> Dict:
    """Write the entry files of ``scan`` tokenized with ``vocab`` into ``directory``.

    Returns:
      The counts for ``meta.json`` (tokens, sentences, words, oov_words, dtype).
    """
    lengths, flat, oov = _type_table(scan.types, vocab)
    firsts = np.cumsum(lengths) - lengths  # (n + 1,) index of each type's first token in flat
    single = bool((lengths == 1).all())
    dtype = token_dtype(vocab.size)
    totals = np.zeros(3, dtype=np.int64)  # tokens, words, oov words so far
    handles = {name: open(directory / f"{name}.bin", "wb") for name in FILES}
    try:
        for name in FILES[1:]:
            np.zeros(1, dtype=np.int64).tofile(handles[name])
        with open(scan.type_path, "rb") as source:
            while True:
                ids = np.fromfile(source, dtype=np.int32, count=ENCODE_CHUNK)  # (n,)
                if ids.shape[0] == 0:
                    break
                tokens = flat[ids] if single else _expand(ids, lengths, flat, firsts)
                tokens.astype(dtype).tofile(handles["tokens"])
                ends = np.flatnonzero(ids == SENTENCE_END)  # (s,) positions of the sentence ends
                # Exclusive token end of each sentence; words before each end = position - earlier ends.
                token_ends = ends + 1 if single else np.cumsum(lengths[ids])[ends]
                (token_ends + totals[0]).tofile(handles["offsets"])
                (ends - np.arange(ends.shape[0]) + totals[1]).tofile(handles["word_offsets"])
                is_oov = oov[ids]  # (n,)
                (np.cumsum(is_oov)[ends] + totals[2]).tofile(handles["oov_offsets"])
                totals += [tokens.shape[0], ids.shape[0] - ends.shape[0], int(is_oov.sum())]
                if progress is not None:
                    progress(ids.shape[0])
    finally:
        for handle in handles.values():
            handle.close()
    return {"tokens": int(totals[0]), "sentences": scan.sentences, "words": int(totals[1]),
            "oov_words": int(totals[2]), "dtype": dtype}


def entry_meta(counts: Dict, vocab: Vocabulary, vocab_digest: str, inputs: List[Dict[str, Any]]) -> Dict:
    """The ``meta.json`` content of an entry."""
    return dict(counts, format=CACHE_FORMAT, vocab_size=vocab.size, bos_id=vocab.bos_id, eos_id=vocab.eos_id,
                vocab_sha256=vocab_digest, inputs=inputs)


def remove_stale_builds(cache_dir: Path) -> None:
    """Delete ``*.tmp-<pid>`` folders left by builds whose process is gone (e.g. killed with -9)."""
    for path in cache_dir.glob("*.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not process_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def building_folder(cache_dir: Path, key: str) -> Path:
    """A fresh private folder to build entry ``key`` in."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(cache_dir)
    folder = cache_dir / f"{key}.tmp-{os.getpid()}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    return folder


def publish(folder: Path, final: Path, meta: Dict) -> None:
    """Write ``meta.json`` last, then rename the folder into place (atomic on one file system)."""
    (folder / "meta.json").write_text(json.dumps(meta, sort_keys=True))
    try:
        os.rename(folder, final)
    except OSError:
        if not (final / "meta.json").is_file():  # not a concurrent build of the same entry
            raise
        shutil.rmtree(folder, ignore_errors=True)


def find_entry(cache_dir: Path, key: str) -> Optional[TokenCache]:
    """The complete entry ``key``, or None."""
    final = cache_dir / key
    if not (final / "meta.json").is_file():
        return None
    try:
        if json.loads((final / "meta.json").read_text()).get("format") != CACHE_FORMAT:
            return None
        return open_entry(final)
    except (OSError, ValueError, KeyError) as error:
        raise InputFormatError(f"damaged token cache, delete it ({error})", path=final) from error
