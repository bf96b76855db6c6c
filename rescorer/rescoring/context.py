"""``RescoreContext``: what a rescoring run loads once and every job reads.

Its own module so that the job (``job.py``) can name it without
importing the session that runs them.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch

from rescorer.data.vocab import Vocabulary
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.model import NgramLM
from rescorer.rescoring.tokens import ArcTokenizer


@dataclass
class RescoreContext:
    """What is loaded once per run.

    Attributes:
      model:
        The LM in eval mode on its device.
      vocabulary:
        The LM's vocabulary.
      window:
        History window of the expansion (lattice mode), or the sentence
        history limit of n-best mode (None = whole sentence).
      symbols:
        ``--words``, or a growing table for the words of SLF files.
      references:
        Utterance id -> reference words, or None.
      lowercase:
        Fold lattice words to lower case before the LM lookup.
      ngram:
        The ``--ngram-lm`` ARPA model (CPU tables), or None.
    """

    model: torch.nn.Module
    vocabulary: Vocabulary
    window: Optional[int]
    symbols: SymbolTable
    references: Optional[Dict[str, List[str]]]
    lowercase: bool = False
    ngram: Optional[NgramLM] = None

    def __post_init__(self) -> None:
        self._tokenizers: Dict[int, ArcTokenizer] = {}
        self._ngram_tokenizers: Dict[int, ArcTokenizer] = {}

    def tokenizer(self, symbols: SymbolTable) -> ArcTokenizer:
        """The (cached) tokenizer for a symbol table."""
        key = id(symbols)
        if key not in self._tokenizers:
            self._tokenizers[key] = ArcTokenizer(self.vocabulary, symbols, self.lowercase)
        return self._tokenizers[key]

    def ngram_tokenizer(self, symbols: SymbolTable) -> ArcTokenizer:
        """The (cached) tokenizer of ``symbols`` into ARPA word ids (needs ``ngram``)."""
        assert self.ngram is not None, "no --ngram-lm loaded"
        key = id(symbols)
        if key not in self._ngram_tokenizers:
            self._ngram_tokenizers[key] = ArcTokenizer(self.ngram.vocabulary, symbols, self.lowercase)
        return self._ngram_tokenizers[key]
