"""From text files to an opened token cache: checksum, choose the vocabulary, tokenize once.

``prepare_corpus`` is the one entry point for training, validation and
evaluation text. With a given vocabulary (a checkpoint's, or the training
run's for its valid/test text) the cache is keyed by that vocabulary; without
one it is built from the corpus by a ``VocabularyRecipe``:

* a word vocabulary from the counts of the same streaming pass that tokenizes
  the text: the ``max_vocab_size`` most frequent words (counting ``<eos>`` and
  ``<unk>``) with at least ``min_count`` occurrences; the rest map to ``<unk>``;
* a sentencepiece model trained on a bounded sample of sentences, drawn by
  sentencepiece itself (``input_sentence_size`` with ``shuffle_input_sentence``,
  reservoir sampling while the text streams past).

The chosen vocabulary is stored in the cache folder as ``vocab-<key>.json`` or
``.model`` (key: the recipe and the inputs), so the next run skips the choice.
"""
import dataclasses
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from rescorer.data.cache import (CACHE_FORMAT, TokenCache, building_folder, encode_scan, entry_meta, find_entry,
                                 open_entry, publish)
from rescorer.data.scan import CorpusScan, fingerprint, input_files, iter_sentences, scan_corpus
from rescorer.data.vocab import EOS, UNK, SentencePieceVocabulary, Vocabulary, WordVocabulary
from rescorer.errors import ConfigError
from rescorer.atomic import atomic_save, atomic_write_text
from rescorer.paths import PathLike

MAX_VOCAB_SIZE = 1 << 24
DEFAULT_SP_SAMPLE = 1_000_000


@dataclass(frozen=True)
class VocabularyRecipe:
    """How to choose the vocabulary of a training corpus.

    Attributes:
      max_vocab_size:
        Word vocabulary: keep at most this many tokens, ``<eos>`` and ``<unk>``
        included, most frequent first (None: all).
      min_count:
        Word vocabulary: keep only words seen at least this often.
      sp_vocab_size:
        Train a sentencepiece unigram model with this many pieces instead.
      sp_sample_sentences:
        Sentencepiece trains on at most this many sentences, sampled by sentencepiece.
    """

    max_vocab_size: Optional[int] = None
    min_count: int = 1
    sp_vocab_size: Optional[int] = None
    sp_sample_sentences: int = DEFAULT_SP_SAMPLE

    def __post_init__(self) -> None:
        if self.max_vocab_size is not None and not 3 <= self.max_vocab_size <= MAX_VOCAB_SIZE:
            raise ConfigError(f"--vocab-size must be in [3, {MAX_VOCAB_SIZE}] (got {self.max_vocab_size})")
        if self.min_count < 1:
            raise ConfigError(f"--min-count must be at least 1 (got {self.min_count})")
        if self.sp_vocab_size is not None and (self.max_vocab_size is not None or self.min_count != 1):
            raise ConfigError("--vocab-size/--min-count choose a word vocabulary; they exclude --sp-vocab-size")
        if self.sp_sample_sentences <= 100:  # sentencepiece's own lower limit
            raise ConfigError(f"--sp-sample-sentences must be above 100 (got {self.sp_sample_sentences})")


class DataProgress:
    """Receives progress of the byte-reading steps (checksums, tokenizing); no-ops here."""

    def data_start(self, label: str, total_bytes: int) -> None:
        """A step that will read ``total_bytes`` bytes begins."""

    def data_advance(self, done_bytes: int) -> None:
        """``done_bytes`` more bytes were read."""

    def data_stop(self) -> None:
        """The step ended."""


def vocabulary_digest(vocab: Vocabulary) -> str:
    """SHA-256 of what defines a vocabulary: its word list, or its sentencepiece model."""
    state = vocab.to_state()
    if state["kind"] == "word":
        material = ("word\n" + "\n".join(state["words"])).encode("utf-8")
    else:
        material = b"sentencepiece\n" + bytes(state["model_proto"].tolist())
    return hashlib.sha256(material).hexdigest()


def word_vocabulary_from_counts(scan: CorpusScan, max_vocab_size: Optional[int], min_count: int) -> WordVocabulary:
    """``<eos>``, ``<unk>``, then words by decreasing count (ties: first seen), as ``WordVocabulary.build``."""
    counts = scan.counts[1:]  # (n,) per word, type id order = first-seen order
    order = np.argsort(-counts, kind="stable")
    keep = counts[order] >= min_count
    words = [scan.types[index] for index in order[keep].tolist()]
    words = [word for word in words if word not in (EOS, UNK)]
    if max_vocab_size is not None:
        words = words[: max_vocab_size - 2]
    return WordVocabulary([EOS, UNK] + words)


def _digest(material: Any) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:32]


def _fingerprints(files: List[Path], progress: DataProgress) -> List[Dict[str, Any]]:
    """Size and SHA-256 of every input file."""
    progress.data_start("checksum", sum(path.stat().st_size for path in files))
    try:
        found = []
        for path in files:
            size, sha256 = fingerprint(path, progress.data_advance)
            found.append({"path": str(path), "size": size, "sha256": sha256})
        return found
    finally:
        progress.data_stop()


def _scan(files: List[Path], folder: Path, progress: DataProgress) -> CorpusScan:
    progress.data_start("tokenize", sum(path.stat().st_size for path in files))
    try:
        return scan_corpus(files, folder / "types.bin", progress.data_advance)
    finally:
        progress.data_stop()


def _recipe_vocabulary(files: List[Path], recipe: VocabularyRecipe, path: Path) -> Vocabulary:
    """Train the sentencepiece model a recipe asks for and store it at ``path``."""
    sentences = (line.split() for line in iter_sentences(files))
    vocab = SentencePieceVocabulary.train(sentences, recipe.sp_vocab_size, recipe.sp_sample_sentences)
    atomic_save(path, lambda handle: handle.write(vocab.model_proto))
    return vocab


def _read_vocabulary(path: Path) -> Vocabulary:
    if path.suffix == ".model":
        return SentencePieceVocabulary.from_file(path)
    return WordVocabulary(json.loads(path.read_text(encoding="utf-8")))


def _choose_vocabulary(files: List[Path], sizes: List[Tuple[int, str]], cache_dir: Path, recipe: VocabularyRecipe,
                       progress: DataProgress) -> Tuple[Vocabulary, Optional[CorpusScan], Optional[Path]]:
    """The recipe's vocabulary, stored in (or read from) ``cache_dir/vocab-<key>``.

    Returns:
      (vocabulary, the scan that counted the words and its build folder) when a
      word vocabulary was just counted, so the tokens need no second pass; else
      (vocabulary, None, None).
    """
    suffix = ".json" if recipe.sp_vocab_size is None else ".model"
    vocab_path = cache_dir / f"vocab-{_digest({'recipe': dataclasses.asdict(recipe), 'inputs': sizes})}{suffix}"
    if vocab_path.is_file():
        return _read_vocabulary(vocab_path), None, None
    if recipe.sp_vocab_size is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        return _recipe_vocabulary(files, recipe, vocab_path), None, None
    folder = building_folder(cache_dir, "build")
    try:
        scan = _scan(files, folder, progress)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    vocab = word_vocabulary_from_counts(scan, recipe.max_vocab_size, recipe.min_count)
    atomic_write_text(vocab_path, json.dumps(vocab.to_state()["words"], ensure_ascii=False))
    return vocab, scan, folder


def prepare_corpus(
    sources: Union[PathLike, Sequence[PathLike]],
    cache_dir: PathLike,
    vocab: Optional[Vocabulary] = None,
    recipe: Optional[VocabularyRecipe] = None,
    progress: Optional[DataProgress] = None,
) -> Tuple[TokenCache, Vocabulary]:
    """The token cache of ``sources`` (files or globs, one corpus), built if absent.

    Args:
      sources:
        One path or glob, or several; their files in order form one corpus.
      cache_dir:
        Folder holding cache entries (created if needed).
      vocab:
        Tokenize with this vocabulary; None: choose one by ``recipe``.
      recipe:
        How to choose the vocabulary (default: every word of the corpus).
      progress:
        Receives byte progress of checksumming and tokenizing.

    Returns:
      (the opened cache, the vocabulary it was tokenized with).

    Raises:
      InputFormatError: naming a file (and line) that is missing, unreadable,
        not UTF-8, or a corpus without words.
    """
    progress = progress or DataProgress()
    cache_dir = Path(cache_dir)
    files = input_files(sources)
    inputs = _fingerprints(files, progress)
    sizes = [(item["size"], item["sha256"]) for item in inputs]
    scan, folder = None, None
    if vocab is None:
        vocab, scan, folder = _choose_vocabulary(files, sizes, cache_dir, recipe or VocabularyRecipe(), progress)
    digest = vocabulary_digest(vocab)
    key = _digest({"format": CACHE_FORMAT, "vocab": digest, "inputs": sizes})
    entry = find_entry(cache_dir, key)
    if entry is not None:
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        return entry, vocab
    folder = folder or building_folder(cache_dir, key)
    try:
        scan = scan or _scan(files, folder, progress)
        counts = encode_scan(scan, vocab, folder)
        scan.type_path.unlink()
        publish(folder, cache_dir / key, entry_meta(counts, vocab, digest, inputs))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # gone after publish; a failed build leaves nothing
    return open_entry(cache_dir / key), vocab
