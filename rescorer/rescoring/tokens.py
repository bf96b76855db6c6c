"""Lattice words to LM tokens, arc by arc.

A word becomes one token for a word-level LM (``<unk>`` when out of
vocabulary; PTB clitics split, "wasn't" -> "was n't") or its pieces for a
sentencepiece LM (``Vocabulary.encode_word``). An arc carrying several words
gets the concatenation of their tokens, so arcs have any number of tokens,
ragged ``[arc][token]``.

Each word id is encoded once per ``ArcTokenizer`` (a table by id), then arcs
are mapped with tensor gathers. A batch job maps only the arcs it keeps to
tokens (``BatchTokens``): beam pruning drops most of a first-pass lattice's arcs.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Union

import torch
from torch import Tensor

from rescorer.algorithms.ragged import select_rows
from rescorer.data.vocab import Vocabulary
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable

if TYPE_CHECKING:
    from rescorer.lattice.batch import LatticeBatch


@dataclass(frozen=True)
class ArcTokens:
    """The LM tokens of every arc of one lattice, ragged ``[arc][token]``.

    Attributes:
      splits:
        1-D int64 tensor of shape (A+1,), row splits: the tokens of arc a are
        ``tokens[splits[a]:splits[a+1]]``.
      tokens:
        1-D int64 tensor of shape (splits[-1],), LM token ids in word order.
      oov_counts:
        1-D int64 tensor of shape (A,), out-of-vocabulary words on each arc.
    """

    splits: Tensor
    tokens: Tensor
    oov_counts: Tensor

    def of(self, arcs: Tensor) -> "ArcTokens":
        """The tokens of the arcs ``arcs`` (1-D int64), in that order."""
        splits, values = select_rows(self.splits, self.tokens, arcs)
        return ArcTokens(splits=splits, tokens=values, oov_counts=self.oov_counts[arcs])

    def to(self, device: torch.device) -> "ArcTokens":
        """The same tokens on ``device``."""
        return ArcTokens(self.splits.to(device), self.tokens.to(device), self.oov_counts.to(device))


def concat_tokens(parts: Sequence[ArcTokens], device: torch.device) -> ArcTokens:
    """One ``ArcTokens`` for lattices whose arcs follow each other, on ``device``."""
    if not parts:
        empty = torch.zeros(0, dtype=torch.int64, device=device)
        return ArcTokens(torch.zeros(1, dtype=torch.int64, device=device), empty, empty)
    counts = torch.cat([part.splits[1:] - part.splits[:-1] for part in parts])
    return ArcTokens(splits=splits_from_counts(counts.cpu()).to(device),
                     tokens=torch.cat([part.tokens for part in parts]).to(device),
                     oov_counts=torch.cat([part.oov_counts for part in parts]).to(device))


class ArcTokenizer:
    """Encodes lattice words with an LM vocabulary, once per word id.

    Each word id's tokens are computed the first time the id is seen and kept in
    a table indexed by id, so encoding a batch is tensor gathers only.

    Args:
      vocabulary:
        The LM's vocabulary.
      symbols:
        The lattice's word symbol table (``--words`` or the SLF reader's).
      lowercase:
        Fold lattice words to lower case (``str.lower``) before the LM lookup
        (``--lowercase``); the written hypotheses keep the lattice's spelling.
    """

    def __init__(self, vocabulary: Vocabulary, symbols: SymbolTable, lowercase: bool = False) -> None:
        self.vocabulary = vocabulary
        self.symbols = symbols
        self.lowercase = lowercase
        # Per word id: its number of tokens (0: not encoded yet; a word has at least one),
        # 1 if it is OOV (-1: not known yet), and its tokens padded to the widest word seen.
        self._counts = torch.zeros(0, dtype=torch.int64)  # (V,)
        self._oov = torch.zeros(0, dtype=torch.int64)  # (V,)
        self._table = torch.zeros((0, 1), dtype=torch.int64)  # (V, width)

    def oov_flags(self, word_ids: Tensor) -> Tensor:
        """1-D int64 tensor of the shape of ``word_ids`` (1-D int64, CPU): 1 for OOV words.

        Only the OOV-ness of new ids is worked out (``Vocabulary.oov_all``), not
        their tokens: a run counts the OOV words of every lattice as read but
        encodes only the arcs that pruning keeps.

        Raises:
          SymbolError: a word id is not in the symbol table.
        """
        if word_ids.numel() == 0:
            return torch.zeros(0, dtype=torch.int64)
        self._grow(int(word_ids.max()) + 1)
        flags = self._oov.index_select(0, word_ids)  # (occ,)
        if bool((flags < 0).any()):
            new = torch.unique(word_ids[flags < 0])  # (N,) sorted
            words = self._words_of(new, None, None)
            self._oov[new] = torch.tensor(self.vocabulary.oov_all(words), dtype=torch.int64)
            flags = self._oov.index_select(0, word_ids)
        return flags

    def prepare(self, word_ids: Tensor, path: Optional[Union[str, Path]] = None,
                utt_id: Optional[str] = None) -> None:
        """Encode the ids of ``word_ids`` (1-D int64, CPU) not in the table yet.

        Raises:
          SymbolError: a word id is not in the symbol table (names path/utterance).
        """
        self._token_counts(word_ids, path, utt_id)

    def _token_counts(self, word_ids: Tensor, path: Optional[Union[str, Path]],
                      utt_id: Optional[str]) -> Tensor:
        """1-D int64 tensor, the token count of each of ``word_ids`` (1-D int64, CPU).

        Ids not in the table yet are encoded and added first.
        """
        if word_ids.numel() == 0:
            return torch.zeros(0, dtype=torch.int64)
        self._grow(int(word_ids.max()) + 1)
        counts = self._counts.index_select(0, word_ids)  # (occ,)
        if bool((counts > 0).all()):
            return counts
        new = torch.unique(word_ids[counts == 0])  # (N,) sorted
        encoded = self.vocabulary.encode_all_with_oov(self._words_of(new, path, utt_id))
        width = max(len(tokens) for tokens, _ in encoded)
        if width > self._table.shape[1]:
            self._table = torch.cat([self._table, self._table.new_zeros(
                (self._table.shape[0], width - self._table.shape[1]))], dim=1)
        new_counts = torch.tensor([len(tokens) for tokens, _ in encoded], dtype=torch.int64)  # (N,)
        flat = torch.tensor([token for tokens, _ in encoded for token in tokens], dtype=torch.int64)
        row = torch.repeat_interleave(torch.arange(new.numel()), new_counts)  # (sum of counts,)
        column = torch.arange(flat.numel()) - splits_from_counts(new_counts)[row]
        self._table[new[row], column] = flat
        self._counts[new] = new_counts
        self._oov[new] = torch.tensor([oov for _, oov in encoded], dtype=torch.int64)
        return self._counts.index_select(0, word_ids)

    def _grow(self, size: int) -> None:
        """Make the per-id tables ``size`` rows long at least (new rows: not known yet)."""
        grow = size - self._counts.numel()
        if grow > 0:
            self._counts = torch.cat([self._counts, torch.zeros(grow, dtype=torch.int64)])
            self._oov = torch.cat([self._oov, torch.full((grow,), -1, dtype=torch.int64)])
            self._table = torch.cat([self._table,
                                     self._table.new_zeros((grow, self._table.shape[1]))])

    def _words_of(self, word_ids: Tensor, path: Optional[Union[str, Path]],
                  utt_id: Optional[str]) -> List[str]:
        """The words the LM looks up for ``word_ids`` (lower-cased with ``--lowercase``).

        Raises:
          SymbolError: an id is not in the symbol table (names path/utterance).
        """
        words = [self.symbols.word(word_id, path=path, utt_id=utt_id) for word_id in word_ids.tolist()]
        return [word.lower() for word in words] if self.lowercase else words

    def encode(self, lattice: Lattice, path: Optional[Union[str, Path]] = None) -> ArcTokens:
        """The tokens of every arc of ``lattice``.

        Raises:
          SymbolError: a word id of the lattice is not in the symbol table.
        """
        return self.encode_words(lattice.word_splits, lattice.word_ids, path, lattice.utt_id)

    def encode_words(
        self, word_splits: Tensor, word_ids: Tensor, path: Optional[Union[str, Path]] = None,
        utt_id: Optional[str] = None,
    ) -> ArcTokens:
        """The tokens of the ragged ``[arc][word]`` words (one lattice, or a whole batch).

        Args:
          word_splits:
            1-D int64 tensor of shape (A+1,), row splits of the words of each arc.
          word_ids:
            1-D int64 tensor of shape (word_splits[-1],), the word ids.
          path / utt_id:
            Named in the ``SymbolError`` of an unknown word id.

        Raises:
          SymbolError: a word id is not in the symbol table.
        """
        occurrence_counts = self._token_counts(word_ids, path, utt_id)  # (occ,) tokens of each word
        occurrence_splits = splits_from_counts(occurrence_counts)  # (occ+1,)
        total = int(occurrence_splits[-1])
        if total == word_ids.numel():  # one token per word: no ragged gather
            tokens = self._table[:, 0].contiguous().index_select(0, word_ids)
        else:
            # Flat token j is token j - occurrence_splits[o] of occurrence o = owner[j].
            owner = torch.repeat_interleave(torch.arange(word_ids.numel()), occurrence_counts,
                                            output_size=total)
            tokens = self._table[word_ids[owner], torch.arange(total) - occurrence_splits[owner]]
        # Arcs own consecutive word occurrences: sum counts per arc via cumulative sums.
        arc_splits = occurrence_splits[word_splits]  # (A+1,)
        oov_cumulative = splits_from_counts(self._oov.index_select(0, word_ids))  # (occ+1,)
        oov_counts = oov_cumulative[word_splits[1:]] - oov_cumulative[word_splits[:-1]]
        return ArcTokens(splits=arc_splits, tokens=tokens, oov_counts=oov_counts)


class BatchTokens:
    """The LM tokens of a batch's arcs, encoded for the arcs asked for only.

    Args:
      tokenizer:
        The batch's (shared) tokenizer; every word id of the batch is in its table.
      word_splits / word_ids:
        The batch's ragged ``[arc][word]`` words: (A+1,) and (W,) int64.
      device:
        Where ``of`` puts its tokens.
    """

    def __init__(self, tokenizer: ArcTokenizer, word_splits: Tensor, word_ids: Tensor,
                 device: torch.device) -> None:
        self.tokenizer = tokenizer
        self.word_splits = word_splits.cpu()
        self.word_ids = word_ids.cpu()
        self.device = device

    def of(self, arcs: Tensor) -> ArcTokens:
        """The tokens of the arcs ``arcs`` (1-D int64), in that order."""
        splits, word_ids = select_rows(self.word_splits, self.word_ids, arcs.cpu())
        return self.tokenizer.encode_words(splits, word_ids).to(self.device)


TokenSource = Union[ArcTokens, BatchTokens]  # both answer ``of(arcs)``


def token_source(batch: "LatticeBatch", symbols: Sequence[SymbolTable],
                 tokenizer_of: Callable[[SymbolTable], ArcTokenizer]) -> TokenSource:
    """The tokens of ``batch``'s arcs (lattice u's words in ``symbols[u]``), by arc id.

    Encoded on demand (``BatchTokens``) when the lattices share a table (the
    usual case); lattice by lattice, at once, otherwise. ``tokenizer_of`` gives
    a table's tokenizer (the neural LM's or the ARPA's).
    """
    if all(table is symbols[0] for table in symbols):
        return BatchTokens(tokenizer_of(symbols[0]), batch.word_splits, batch.word_ids, batch.device)
    cpu = batch.to(torch.device("cpu"))
    return concat_tokens([tokenizer_of(table).encode(cpu.lattice(index))
                          for index, table in enumerate(symbols)], batch.device)
