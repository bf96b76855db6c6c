"""Word symbol tables (Kaldi/k2 ``words.txt``: one ``word id`` pair per line).

Parsed from the open file so every error names the file and line (k2's
``SymbolTable.from_file`` goes through a string and loses both).
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor

from rescorer.errors import SymbolError
from rescorer.atomic import atomic_write_text

EPSILON = "<eps>"


class SymbolTable:
    """A bijection between words and integer ids, ``<eps>`` = 0.

    Args:
      path:
        The file the table was read from, if any (used in error messages).

    Attributes:
      path:
        The source file or None for a table built in memory.
      grown:
        True once ``add`` has added a word that was not there before.
      frozen:
        True for a table read from a file: readers look words up instead of adding.
    """

    def __init__(self, path: Optional[Union[str, Path]] = None) -> None:
        self.path = None if path is None else Path(path)
        self.grown = False
        self.frozen = False
        self._ids: Dict[str, int] = {EPSILON: 0}
        self._words: Dict[int, str] = {0: EPSILON}
        self._max_id = 0  # max(self._words), kept up to date (add is on the SLF reading path)
        self._known: Optional[Tuple[int, Tensor]] = None  # (len(_words), id mask or sorted ids)
        # lookup_words' answers per skip rule: word (None: no word) -> id, 0 for skipped words.
        self._memo: Dict[Callable[[str], bool], Dict[Optional[str], int]] = {}

    @classmethod
    def from_file(cls, path: Union[str, Path]) -> "SymbolTable":
        """Read a ``words.txt`` file.

        Raises:
          SymbolError: the file is missing or a line is not ``word id`` with a
            non-negative integer id, or a word or id repeats, or ``<eps>`` is not 0.
        """
        table = cls(path)
        table._ids.clear()
        table._words.clear()
        try:
            handle = open(path, encoding="utf-8")
        except OSError as error:
            raise SymbolError(f"cannot read the symbol table ({error.strerror})",
                              path=path) from error
        with handle:
            for line_number, line in enumerate(handle, start=1):
                table._parse_line(line, line_number)
        if not table._ids:
            raise SymbolError("the symbol table is empty (expected `word id` lines)", path=path)
        if table._words.get(0, EPSILON) != EPSILON or table._ids.get(EPSILON, 0) != 0:
            raise SymbolError(f"id 0 must be {EPSILON} (got {table._words.get(0)!r} for id 0, "
                              f"id {table._ids.get(EPSILON)} for {EPSILON})", path=path)
        table.frozen = True
        table._ids.setdefault(EPSILON, 0)
        table._words.setdefault(0, EPSILON)
        table._max_id = max(table._words)
        return table

    def _parse_line(self, line: str, line_number: int) -> None:
        """Add one ``word id`` line (blank lines are skipped)."""
        fields = line.split()
        if not fields:
            return
        where = f"line {line_number}"
        if len(fields) != 2:
            raise SymbolError(f"expected `word id`, got {line.rstrip()!r}",
                              path=self.path, where=where)
        word, id_text = fields
        try:
            word_id = int(id_text)
        except ValueError:
            word_id = -1
        if word_id < 0:
            raise SymbolError(f"bad id {id_text!r} (expected a non-negative integer)",
                              path=self.path, where=where)
        if word in self._ids:
            raise SymbolError(f"word {word!r} appears twice (first with id {self._ids[word]})",
                              path=self.path, where=where)
        if word_id in self._words:
            raise SymbolError(f"id {word_id} appears twice (first for {self._words[word_id]!r})",
                              path=self.path, where=where)
        self._ids[word] = word_id
        self._words[word_id] = word

    def id(self, word: str, *, path: Optional[Union[str, Path]] = None,
           utt_id: Optional[str] = None) -> int:
        """The id of ``word``; ``path``/``utt_id`` locate the lattice asking.

        Raises:
          SymbolError: the word is not in the table.
        """
        try:
            return self._ids[word]
        except KeyError:
            source = "the symbol table" if self.path is None else str(self.path)
            raise SymbolError(f"word {word!r} is not in {source}", path=path,
                              utt_id=utt_id) from None

    def word(self, word_id: int, *, path: Optional[Union[str, Path]] = None,
             utt_id: Optional[str] = None) -> str:
        """The word of ``word_id``.

        Raises:
          SymbolError: the id is not in the table (the table does not fit the lattice).
        """
        try:
            return self._words[int(word_id)]
        except KeyError:
            source = "the symbol table" if self.path is None else str(self.path)
            raise SymbolError(f"word id {int(word_id)} is not in {source} "
                              f"(ids go up to {self.max_id}; wrong --words?)",
                              path=path, utt_id=utt_id) from None

    def lookup(self, word: str, *, path: Optional[Union[str, Path]] = None,
               utt_id: Optional[str] = None) -> int:
        """``id(word)`` for a frozen table (unknown words are errors), else ``add(word)``."""
        if self.frozen:
            return self.id(word, path=path, utt_id=utt_id)
        return self.add(word)

    def lookup_all(self, words: Sequence[str], *, path: Optional[Union[str, Path]] = None,
                   utt_id: Optional[str] = None) -> List[int]:
        """``lookup`` of each word, in order: new words are added, or the first unknown raises."""
        ids = list(map(self._ids.get, words))
        if None in ids:
            ids = [self.lookup(word, path=path, utt_id=utt_id) if word_id is None else word_id
                   for word, word_id in zip(words, ids)]
        return ids

    def remembered_ids(self, words: Sequence[Optional[str]], skip: Callable[[str], bool]
                       ) -> List[Optional[int]]:
        """What ``lookup_words(words, skip)`` answered before for each word, None where it did not.

        One dict pass, no lookup and no change to the table.
        """
        memo = self._memo.get(skip)
        return list(map(memo.get, words)) if memo is not None else [None] * len(words)

    def lookup_words(self, words: Sequence[Optional[str]], skip: Callable[[str], bool], *,
                     path: Optional[Union[str, Path]] = None, utt_id: Optional[str] = None
                     ) -> List[int]:
        """``lookup`` of each word in order; 0 for None and for the words where ``skip`` is true.

        Answers are remembered per ``skip`` (a pure function of the word): ids never
        change once given, so a remembered id stays exact as a growing table grows,
        and new words still get their ids in the order of ``words``. A word missing
        from a frozen table raises, as ``lookup`` does, and is not remembered.
        """
        memo = self._memo.setdefault(skip, {None: 0})
        ids = list(map(memo.get, words))
        if None not in ids:
            return ids
        for word in dict.fromkeys(word for word, word_id in zip(words, ids) if word_id is None):
            memo[word] = 0 if skip(word) else self.lookup(word, path=path, utt_id=utt_id)
        return list(map(memo.__getitem__, words))

    def known(self, word_ids: Tensor) -> Tensor:
        """Which ids are in the table.

        Args:
          word_ids:
            1-D integer tensor of any length and any values.

        Returns:
          1-D bool tensor of the same shape.
        """
        if self._known is None or self._known[0] != len(self._words):  # words are never removed
            ids = torch.tensor(sorted(self._words), dtype=torch.int64)
            if self._max_id < 4 * len(self._words) + 1024:  # dense ids: a mask indexed by id
                mask = torch.zeros(self._max_id + 1, dtype=torch.bool)
                mask[ids] = True
                self._known = (len(self._words), mask)
            else:  # a table may name an id of 1e11: isin on the sorted ids, memory O(size)
                self._known = (len(self._words), ids)
        known = self._known[1].to(word_ids.device)
        word_ids = word_ids.to(torch.int64)
        if known.dtype != torch.bool:
            return torch.isin(word_ids, known)
        inside = (word_ids >= 0) & (word_ids <= self._max_id)
        return inside & known[word_ids.clamp(0, self._max_id)]

    def check_ids(self, word_ids: Tensor, *, path: Optional[Union[str, Path]] = None,
                  utt_id: Optional[str] = None) -> None:
        """Raise ``SymbolError`` unless every id in ``word_ids`` is in the table.

        Args:
          word_ids:
            1-D integer tensor of any length, word ids of a lattice.
        """
        if word_ids.numel() == 0:
            return
        unknown = ~self.known(word_ids)
        if bool(unknown.any()):
            self.word(int(word_ids[unknown.nonzero()[0, 0]]), path=path, utt_id=utt_id)

    def add(self, word: str) -> int:
        """The id of ``word``, adding it with id ``max_id + 1`` if it is new."""
        word_id = self._ids.get(word)
        if word_id is None:
            word_id = self._max_id + 1
            self._ids[word] = word_id
            self._words[word_id] = word
            self._max_id = word_id
            self.grown = True
        return word_id

    @property
    def max_id(self) -> int:
        """The largest id in the table."""
        return self._max_id

    def __contains__(self, word: object) -> bool:
        return word in self._ids

    def __len__(self) -> int:
        return len(self._ids)

    def __iter__(self) -> Iterator[str]:
        """Words in id order."""
        return (self._words[word_id] for word_id in sorted(self._words))

    def to_text(self) -> str:
        """The ``words.txt`` text, one ``word id`` line per word in id order."""
        return "".join(f"{self._words[i]} {i}\n" for i in sorted(self._words))

    def write(self, path: Union[str, Path]) -> None:
        """Write the table to ``path`` atomically."""
        atomic_write_text(path, self.to_text())
