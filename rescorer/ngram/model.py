"""An ARPA back-off n-gram LM scored with batched tensor lookups.

Back-off (Katz form, as every ARPA reader computes it)::

    ln P(w | h) = ln p(h_j.. w)                      for the longest suffix h_j.. of h
                  + sum of ln bow(c) over the suffixes c of h longer than h_j..

where ``h_j..`` ranges over the suffixes of the last n-1 history words (the
empty suffix gives the unigram) and a context c that is not in the model has
bow(c) = 1. ``log_probs`` evaluates this for N (history, token) pairs at once:
one searchsorted per word of each suffix chain (``tables.find``), then a masked
sum of back-off weights. No Python dictionary is touched per query.

Conventions:

- Natural logarithms everywhere (ARPA's log10 values times ln 10).
- A sentence is ``<s> w1 .. wn </s>``: the first history token is ``<s>``
  (``bos_id``), the last predicted token ``</s>`` (``eos_id``). P(<s>) itself is
  never used (ARPA files give it -99).
- Unknown words: words not in the ARPA map to ``<unk>``. If the ARPA has no
  ``<unk>`` unigram, one is added with log10 probability ``unk_log10_prob``
  (default -100, KenLM's substitution) and no back-off weight, so it predicts
  as ln 10^-100 and, in a history, behaves like any context the model lacks
  (the query backs off past it; pocketsphinx does the same).
- Lattice words map to ARPA ids with the neural LM's rules
  (both are ``IndexedVocabulary``, one ``encode_word``): the word
  itself if it is a unigram, else its PTB clitic split if both parts are
  ("wasn't" -> was n't), else ``<unk>``.
"""
from dataclasses import replace
from typing import Dict, List, Optional, Sequence

import torch
from torch import Tensor

from rescorer.data.vocab import IndexedVocabulary
from rescorer.errors import InputFormatError
from rescorer.ngram.arpa import LN_10, ArpaFile
from rescorer.ngram.tables import OrderTable, build_tables, find
from rescorer.paths import PathLike

BOS = "<s>"
EOS = "</s>"
UNK = "<unk>"
DEFAULT_UNK_LOG10_PROB = -100.0


class ArpaVocabulary(IndexedVocabulary):
    """The word list of an ARPA file as an LM vocabulary.

    Args:
      words:
        Words in id order; must contain ``<s>``, ``</s>`` and ``<unk>`` once each.

    Raises:
      InputFormatError: if a special word is missing (``path`` names the file).
    """

    def __init__(self, words: Sequence[str], path: Optional[PathLike] = None) -> None:
        self.words = list(words)
        self.index: Dict[str, int] = {word: i for i, word in enumerate(self.words)}
        for special in (BOS, EOS, UNK):
            if special not in self.index:
                raise InputFormatError(f"the ARPA vocabulary lacks {special}", path=path)
        self.size = len(self.words)
        self.bos_id = self.index[BOS]
        self.eos_id = self.index[EOS]
        self.unk_id = self.index[UNK]

    def to_state(self) -> dict:
        return {"kind": "arpa", "words": list(self.words)}


class NgramLM:
    """A back-off n-gram LM of any order (see the module docstring).

    Attributes:
      vocabulary:
        The ARPA words (``<unk>`` added if the file lacks it).
      tables:
        ``tables[k-1]`` holds the k-grams (``rescorer.ngram.tables``).
      order:
        n.
    """

    def __init__(self, vocabulary: ArpaVocabulary, tables: List[OrderTable]) -> None:
        self.vocabulary = vocabulary
        self.tables = tables
        self.order = len(tables)

    @classmethod
    def from_arpa(cls, arpa: ArpaFile, path: PathLike,
                  unk_log10_prob: float = DEFAULT_UNK_LOG10_PROB) -> "NgramLM":
        """Build the tables of a parsed ARPA file (adding ``<unk>`` if it lacks one)."""
        if UNK not in arpa.vocabulary:
            arpa = _with_unk(arpa, unk_log10_prob)
        vocabulary = ArpaVocabulary(arpa.vocabulary, path=path)
        return cls(vocabulary, build_tables(arpa, path))

    def log_probs(self, histories: Tensor, lengths: Tensor, tokens: Tensor) -> Tensor:
        """ln P(token | history) for N pairs.

        Args:
          histories:
            2-D int64 tensor of shape (N, W), left-aligned ARPA word ids: row n
            holds ``histories[n, :lengths[n]]``, starting with ``bos_id`` when the
            history reaches the sentence start; other entries are ignored.
          lengths:
            1-D int64 tensor of shape (N,), history lengths (>= 0; only the last
            n-1 tokens matter).
          tokens:
            1-D int64 tensor of shape (N,), the predicted word ids.

        Returns:
          1-D float64 tensor of shape (N,), natural-log probabilities.
        """
        context = self.order - 1
        offsets = torch.arange(context, dtype=torch.int64)  # (M,) M = n-1
        positions = lengths.unsqueeze(1) - context + offsets  # (N, M) right-aligned window
        if histories.shape[1] == 0:
            window = torch.full(positions.shape, -1, dtype=torch.int64)
        else:
            gathered = histories.gather(1, positions.clamp(0, histories.shape[1] - 1))  # (N, M)
            window = torch.where(positions >= 0, gathered, torch.full_like(gathered, -1))
        return self.window_log_probs(window, tokens)

    def window_log_probs(self, window: Tensor, tokens: Tensor) -> Tensor:
        """``log_probs`` for right-aligned histories.

        Args:
          window:
            2-D int64 tensor of shape (N, n-1), the last n-1 history words, most
            recent last, -1 before the sentence start.
          tokens:
            1-D int64 tensor of shape (N,), predicted word ids.

        Returns:
          1-D float64 tensor of shape (N,), natural-log probabilities.
        """
        self._check_ids(window[window >= 0], "history")
        self._check_ids(tokens, "token")
        context = self.order - 1
        vocab_size = self.vocabulary.size
        # contexts[j-1]: position of the last j history words in the order-j table (-1: absent)
        contexts = []
        for length in range(1, context + 1):
            position = window[:, context - length]  # (N,) oldest word of the suffix
            for step in range(2, length + 1):
                position = find(self.tables[step - 1], vocab_size, position,
                                window[:, context - length + step - 1])
            contexts.append(position)
        unigrams = self.tables[0]
        best = unigrams.log_probs[tokens].double()  # (N,) the empty context always matches
        matched = torch.zeros_like(tokens)  # (N,) length of the longest matching context
        backoffs = torch.zeros(tokens.numel(), context + 1, dtype=torch.float64)  # (N, M+1)
        for length, position in enumerate(contexts, start=1):
            table = self.tables[length - 1]
            backoffs[:, length] = torch.where(
                position >= 0, table.backoffs[position.clamp_min(0)].double(),
                torch.zeros(1, dtype=torch.float64))
            hit = find(self.tables[length], vocab_size, position, tokens)  # (N,)
            value = self.tables[length].log_probs[hit.clamp_min(0)].double()
            ok = (hit >= 0) & ~torch.isnan(value)
            best = torch.where(ok, value, best)
            matched = torch.where(ok, torch.full_like(matched, length), matched)
        longer = torch.arange(context + 1).unsqueeze(0) > matched.unsqueeze(1)  # (N, M+1)
        return best + (backoffs * longer).sum(dim=1)

    def sentence_log_probs(self, sentences: Sequence[Sequence[int]]) -> Tensor:
        """ln P(w1 .. wn </s> | <s>) of each sentence.

        Args:
          sentences:
            Word-id sequences without ``<s>``/``</s>``.

        Returns:
          1-D float64 tensor of shape (len(sentences),).
        """
        context = self.order - 1
        windows, tokens, owners = [], [], []
        for index, words in enumerate(sentences):
            sequence = torch.tensor([-1] * context + [self.vocabulary.bos_id] + list(words),
                                    dtype=torch.int64)
            count = len(words) + 1  # predictions: w1 .. wn, </s>
            windows.append(sequence.unfold(0, context, 1)[1:count + 1] if context
                           else torch.zeros(count, 0, dtype=torch.int64))  # (count, M)
            tokens.append(torch.tensor(list(words) + [self.vocabulary.eos_id], dtype=torch.int64))
            owners.append(torch.full((count,), index, dtype=torch.int64))
        if not windows:
            return torch.zeros(0, dtype=torch.float64)
        scores = self.window_log_probs(torch.cat(windows), torch.cat(tokens))
        return torch.zeros(len(sentences), dtype=torch.float64).index_add_(0, torch.cat(owners), scores)

    def _check_ids(self, ids: Tensor, what: str) -> None:
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocabulary.size):
            raise ValueError(f"{what} ids must be in 0..{self.vocabulary.size - 1} "
                             f"(got {int(ids.min())}..{int(ids.max())})")


def _with_unk(arpa: ArpaFile, unk_log10_prob: float) -> ArpaFile:
    """The file with an ``<unk>`` unigram appended (last id, no back-off weight)."""
    unigrams = arpa.sections[0]
    unk_id = len(arpa.vocabulary)
    extended = replace(
        unigrams,
        words=torch.cat([unigrams.words, torch.tensor([[unk_id]])]),
        log_probs=torch.cat([unigrams.log_probs, torch.tensor([unk_log10_prob * LN_10],
                                                              dtype=torch.float64)]),
        backoffs=torch.cat([unigrams.backoffs, torch.zeros(1, dtype=torch.float64)]),
    )
    return ArpaFile(vocabulary=arpa.vocabulary + [UNK], sections=[extended] + arpa.sections[1:])
