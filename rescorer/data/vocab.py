"""LM vocabularies: word-level (built from a training file) or sentencepiece.

Both map one text or lattice word to a list of LM token ids with
``encode_word``, so training text, evaluation text and lattices are tokenized
the same way. ``to_state()`` holds plain types and tensors only, so a
checkpoint that embeds it loads with ``torch.load(weights_only=True)``.

Examples:
    >>> vocab = WordVocabulary.build([["the", "company", "was", "n't", "'s"]])
    >>> vocab.encode_word("wasn't") == [vocab.id("was"), vocab.id("n't")]
    True
    >>> vocab.encode_word("zebra") == [vocab.unk_id]
    True
"""
import io
from collections import Counter
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import torch

from rescorer.errors import ConfigError, InputFormatError

EOS = "<eos>"
UNK = "<unk>"

# PTB tokenization splits these suffixes off as separate tokens; "can't" and
# "won't" become "ca n't" and "wo n't" by the same rule.
CLITIC_SUFFIXES = ("n't", "'s", "'re", "'ve", "'ll", "'d", "'m")


def split_clitic(word: str) -> Optional[List[str]]:
    """Split a PTB clitic off ``word``: "wasn't" -> ["was", "n't"].

    Returns:
      The two parts, or None when ``word`` has no clitic suffix (or nothing
      before it). A trailing apostrophe after "s" ("investors'") splits as
      ["investors", "'"].
    """
    lowered = word.lower()
    for suffix in CLITIC_SUFFIXES:
        if lowered.endswith(suffix) and len(word) > len(suffix):
            return [word[: -len(suffix)], word[-len(suffix):]]
    if lowered.endswith("s'") and len(word) > 2:
        return [word[:-1], "'"]
    return None


def encode_with_clitics(index: Dict[str, int], word: str, unk_id: int) -> List[int]:
    """The token ids of one lattice word in a word table: the word itself if known,
    else its PTB clitic split if every part is known, else ``[unk_id]``."""
    token_id = index.get(word)
    if token_id is not None:
        return [token_id]
    parts = split_clitic(word)
    if parts is not None and all(part in index for part in parts):
        return [index[part] for part in parts]
    return [unk_id]


class Vocabulary:
    """Maps words to LM token ids; see ``WordVocabulary`` and ``SentencePieceVocabulary``.

    Attributes:
      size:
        V, number of LM tokens.
      eos_id:
        Id of the token that ends every sentence.
      bos_id:
        Id of the input token that starts every sentence (== eos_id for word
        vocabularies and for sentencepiece models without a <s> piece).
      unk_id:
        Id that unknown words map to.
    """

    size: int
    eos_id: int
    bos_id: int
    unk_id: int

    def encode_word(self, word: str) -> List[int]:
        """LM token ids for one text or lattice word (never empty)."""
        raise NotImplementedError

    def is_oov(self, word: str) -> bool:
        """True if ``word`` cannot be represented without ``<unk>``.

        For a word vocabulary the literal token "<unk>" (present in PTB and
        WikiText) is a vocabulary entry, not an OOV; a sentencepiece vocabulary
        maps it to its unknown piece, which is an OOV (see ``SentencePieceVocabulary``).
        """
        return self.encode_with_oov(word)[1]

    def encode_with_oov(self, word: str) -> Tuple[List[int], bool]:
        """``(encode_word(word), is_oov(word))``, encoding the word once."""
        tokens = self.encode_word(word)
        return tokens, word != UNK and self.unk_id in tokens

    def encode_all_with_oov(self, words: Sequence[str]) -> List[Tuple[List[int], bool]]:
        """``encode_with_oov`` of each word, in order."""
        return [self.encode_with_oov(word) for word in words]

    def oov_all(self, words: Sequence[str]) -> List[bool]:
        """``is_oov`` of each word, in order."""
        return [oov for _, oov in self.encode_all_with_oov(words)]

    def to_state(self) -> dict:
        """Plain-typed description (str/int/list/uint8 tensor) for checkpoints."""
        raise NotImplementedError

    @classmethod
    def from_state(cls, state: dict) -> "Vocabulary":
        """Rebuild a vocabulary from ``to_state()`` output.

        Raises:
          ConfigError: if the state is of an unknown kind or malformed.
        """
        kind = state.get("kind") if isinstance(state, dict) else None
        if kind == "word":
            return WordVocabulary(list(state["words"]))
        if kind == "sentencepiece":
            return SentencePieceVocabulary(bytes(state["model_proto"].tolist()))
        raise ConfigError(f"unknown vocabulary state (expected kind 'word' or 'sentencepiece', got {kind!r})")


class IndexedVocabulary(Vocabulary):
    """A vocabulary of whole words, ``index`` (word -> id); a PTB clitic splits when needed."""

    index: Dict[str, int]

    def encode_word(self, word: str) -> List[int]:
        """[id] if known; else the PTB clitic split if both parts are known; else [unk_id]."""
        return encode_with_clitics(self.index, word, self.unk_id)

    def encode_all_with_oov(self, words: Sequence[str]) -> List[Tuple[List[int], bool]]:
        """``encode_with_oov`` of each word; a known word is one dictionary look-up."""
        return [([token_id], False) if token_id is not None else self.encode_with_oov(word)
                for word, token_id in zip(words, map(self.index.get, words))]

    def oov_all(self, words: Sequence[str]) -> List[bool]:
        """``is_oov`` of each word; a known word is one dictionary look-up, and so is an
        unknown one without an apostrophe (every clitic suffix has one: nothing to split)."""
        index = self.index
        return [False if word in index else word != UNK if "'" not in word
                else self.encode_with_oov(word)[1] for word in words]


class WordVocabulary(IndexedVocabulary):
    """Word-level vocabulary; ids 0 and 1 are ``<eos>`` and ``<unk>``.

    Args:
      words:
        All tokens in id order; must contain ``<eos>`` and ``<unk>`` once each.
    """

    def __init__(self, words: Sequence[str]) -> None:
        self.words = list(words)
        self.index: Dict[str, int] = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ConfigError("word vocabulary has duplicate entries")
        for special in (EOS, UNK):
            if special not in self.index:
                raise ConfigError(f"word vocabulary lacks {special}")
        self.size = len(self.words)
        self.eos_id = self.index[EOS]
        self.bos_id = self.eos_id
        self.unk_id = self.index[UNK]

    @classmethod
    def build(cls, sentences: Iterable[Sequence[str]]) -> "WordVocabulary":
        """Every word of ``sentences``, most frequent first (ties: first seen).

        ``<eos>`` and ``<unk>`` come first (ids 0 and 1) whether or not the
        text contains them.
        """
        counts: Counter = Counter()
        for sentence in sentences:
            counts.update(sentence)
        # Counter preserves first-seen order; sorted() is stable.
        ordered = sorted(counts, key=lambda word: -counts[word])
        return cls([EOS, UNK] + [word for word in ordered if word not in (EOS, UNK)])

    def id(self, word: str) -> int:
        """The id of an in-vocabulary token (KeyError otherwise)."""
        return self.index[word]

    def to_state(self) -> dict:
        return {"kind": "word", "words": list(self.words)}


class SentencePieceVocabulary(Vocabulary):
    """Sentencepiece subword vocabulary.

    Args:
      model_proto:
        The serialized sentencepiece model (the bytes of a ``.model`` file).

    Caution:
      Uses the model's ``</s>`` as eos and its ``<s>`` as bos, or ``</s>`` for
      both when the model has no ``<s>``; a model without ``</s>`` is refused.
    """

    def __init__(self, model_proto: bytes) -> None:
        import sentencepiece

        self.model_proto = bytes(model_proto)
        self.processor = sentencepiece.SentencePieceProcessor()
        try:
            self.processor.LoadFromSerializedProto(self.model_proto)
        except (RuntimeError, OSError) as error:
            raise ConfigError(f"not a sentencepiece model ({error})") from error
        self.size = self.processor.GetPieceSize()
        self.eos_id = self.processor.eos_id()
        if self.eos_id < 0:
            raise ConfigError("sentencepiece model has no </s> piece (expected eos_id >= 0)")
        bos_id = self.processor.bos_id()
        self.bos_id = bos_id if bos_id >= 0 else self.eos_id
        self.unk_id = self.processor.unk_id()
        self._cache: Dict[str, List[int]] = {}

    @classmethod
    def from_file(cls, path: Path) -> "SentencePieceVocabulary":
        """Load a ``.model`` file; raises InputFormatError naming it on failure."""
        path = Path(path)
        try:
            return cls(path.read_bytes())
        except OSError as error:
            raise InputFormatError(f"cannot read sentencepiece model ({error.strerror})", path=path) from error
        except ConfigError as error:
            raise InputFormatError(error.message, path=path) from error

    @classmethod
    def train(
        cls, sentences: Iterable[Sequence[str]], vocab_size: int, sample_sentences: Optional[int] = None
    ) -> "SentencePieceVocabulary":
        """Train a unigram model (at most ``vocab_size`` pieces) on ``sentences``, streamed.

        The model has no ``<s>``, so ``</s>`` serves as both bos and eos, as
        in a word-level PTB stream. Its unknown piece is ``<unk>`` (id 0); the
        text's literal ``<unk>`` words are left out of training, since
        ``encode_word`` maps them to that piece. With ``sample_sentences``,
        sentencepiece itself keeps a uniform sample of that many sentences
        (``input_sentence_size`` + ``shuffle_input_sentence``: reservoir
        sampling, seeded) so a huge corpus streams past in bounded memory.
        Training is single-threaded (reproducible).
        """
        import sentencepiece

        sampling = {}
        if sample_sentences is not None:
            sentencepiece.set_random_generator_seed(1)
            sampling = dict(input_sentence_size=sample_sentences, shuffle_input_sentence=True)
        model = io.BytesIO()
        text = (" ".join(word for word in sentence if word != UNK) for sentence in sentences)
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=(line for line in text if line),
                model_writer=model,
                vocab_size=vocab_size,
                model_type="unigram",
                bos_id=-1,
                eos_id=1,
                unk_id=0,
                unk_piece=UNK,
                hard_vocab_limit=False,
                num_threads=1,
                minloglevel=2,
                **sampling,
            )
        except RuntimeError as error:
            raise ConfigError(f"sentencepiece training failed ({error})") from error
        return cls(model.getvalue())

    def encode_word(self, word: str) -> List[int]:
        """The piece ids of ``word`` (cached); the literal ``<unk>`` is the unknown piece."""
        if word == UNK:
            return [self.unk_id]
        ids = self._cache.get(word)
        if ids is None:
            ids = list(self.processor.EncodeAsIds(word)) or [self.unk_id]
            self._cache[word] = ids
        return list(ids)

    def encode_with_oov(self, word: str) -> Tuple[List[int], bool]:
        """The pieces and whether one is the unknown piece (the literal ``<unk>`` is)."""
        tokens = self.encode_word(word)
        return tokens, self.unk_id in tokens

    def to_state(self) -> dict:
        proto = torch.frombuffer(bytearray(self.model_proto), dtype=torch.uint8)  # (bytes,) uint8
        return {"kind": "sentencepiece", "model_proto": proto}
