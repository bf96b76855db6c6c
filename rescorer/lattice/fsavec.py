"""The one in-memory lattice type shared by every format and algorithm.

A ``Lattice`` is a plain-torch version of one FSA of a k2 FsaVec: arcs between
states ``0 .. S-1``, state 0 the start, state ``S-1`` the only final state, and
label -1 exactly on the arcs that enter it (k2's convention). Each arc carries a
possibly empty list of words (ragged ``[arc][word]``) and two scores that every
format provides: the acoustic part and the old n-gram LM part.

Example (words by hand, ids from a symbol table with 1 = "a", 2 = "b")::

    0 --a--> 1 --b--> 2 --(-1)--> 3
    Lattice(utt_id="u", num_states=4,
            src=tensor([0, 1, 2]), dst=tensor([1, 2, 3]), labels=tensor([1, 2, -1]),
            word_splits=tensor([0, 1, 2, 2]), word_ids=tensor([1, 2]),
            am_scores=tensor([-1., -2., 0.]), ngram_scores=tensor([-.5, -.5, 0.]))
"""
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from rescorer.errors import InputFormatError


@dataclass(frozen=True)
class Lattice:
    """One utterance's lattice (see the module docstring for the invariants).

    Attributes:
      utt_id:
        The utterance id.
      num_states:
        S, the number of states; state 0 is the start, S-1 the only final state.
      src:
        1-D int64 tensor of shape (A,), the source state of each arc.
      dst:
        1-D int64 tensor of shape (A,), the destination state of each arc.
      labels:
        1-D int64 tensor of shape (A,), k2 labels; -1 exactly on arcs entering S-1.
      word_splits:
        1-D int64 tensor of shape (A+1,), row splits of the ragged ``[arc][word]``:
        the words of arc a are ``word_ids[word_splits[a]:word_splits[a+1]]``.
      word_ids:
        1-D int64 tensor of shape (word_splits[-1],), word ids (never 0 or -1).
      am_scores:
        1-D float32 tensor of shape (A,), the acoustic log-score of each arc.
      ngram_scores:
        1-D float32 tensor of shape (A,), the old n-gram LM log-score (0 if none).
      transition_splits:
        Optional 1-D int64 tensor of shape (A+1,), row splits of ``[arc][transition
        id]`` of a lattice read from Kaldi (the -1 arcs carry their final weight's ids).
      transition_ids:
        Optional 1-D int64 tensor of shape (transition_splits[-1],), Kaldi transition ids.
      state_times:
        Optional 1-D float64 tensor of shape (S,), each state's time in seconds (SLF ``t=``).

    The three optional fields belong to these very arcs and states: a lattice made
    with other arcs or states must not copy them.
    """

    utt_id: str
    num_states: int
    src: Tensor
    dst: Tensor
    labels: Tensor
    word_splits: Tensor
    word_ids: Tensor
    am_scores: Tensor
    ngram_scores: Tensor
    transition_splits: Optional[Tensor] = None
    transition_ids: Optional[Tensor] = None
    state_times: Optional[Tensor] = None

    @property
    def num_arcs(self) -> int:
        """A, the number of arcs."""
        return int(self.src.numel())

    @property
    def words_per_arc(self) -> Tensor:
        """1-D int64 tensor of shape (A,), how many words each arc carries."""
        return self.word_splits[1:] - self.word_splits[:-1]

    def arc_words(self, arc: int) -> List[int]:
        """The word ids on one arc (for tests and messages, not for hot loops)."""
        start, end = int(self.word_splits[arc]), int(self.word_splits[arc + 1])
        return self.word_ids[start:end].tolist()

    def validate(self, path: Optional[Union[str, Path]] = None) -> None:
        """Check the invariants; raise ``InputFormatError`` naming ``path`` and utterance.

        Cheap checks only (vectorised): shapes and dtypes, state ranges, the single
        final state and its -1 arcs, word ids. Cycles are the algorithms' business.
        """
        if self._passes_quick_check():
            return
        fail = _failer(path, self.utt_id)
        num_arcs = self.num_arcs
        if self.num_states < 2:
            fail(f"a lattice needs a start and a final state (expected >= 2 states, "
                 f"got {self.num_states})")
        for name in _ARC_FIELDS:
            value = getattr(self, name)
            if value.dim() != 1 or value.numel() != num_arcs:
                fail(f"{name} has shape {tuple(value.shape)} (expected ({num_arcs},))")
        if self.word_splits.numel() != num_arcs + 1 or int(self.word_splits[0]) != 0:
            fail(f"word_splits has {self.word_splits.numel()} entries starting at "
                 f"{self.word_splits[:1].tolist()} (expected {num_arcs + 1} starting at 0)")
        if bool((self.word_splits[1:] < self.word_splits[:-1]).any()) or int(
            self.word_splits[-1]
        ) != self.word_ids.numel():
            fail("word_splits is not a non-decreasing row-splits vector of word_ids")
        if num_arcs == 0:
            fail("the lattice has no arcs")
        _check_states(self, fail)
        if bool((self.word_ids <= 0).any()):
            fail(f"word id {int(self.word_ids.min())} on an arc (expected ids >= 1; "
                 "0 is epsilon and -1 the final label)")
        if not bool(torch.isfinite(self.am_scores).all() & torch.isfinite(self.ngram_scores).all()):
            arc = int((~(torch.isfinite(self.am_scores) & torch.isfinite(self.ngram_scores))).nonzero()[0])
            fail(f"arc {arc} has a non-finite score")

    def _passes_quick_check(self) -> bool:
        """True only if every check of ``validate`` passes; tested in numpy, for CPU tensors.

        A sufficient test: False (always, off the CPU) sends ``validate`` through
        its checks one by one, which find the problem and its message (or none:
        the sum of two finite scores can overflow).
        """
        num_arcs = self.num_arcs
        columns = [getattr(self, name) for name in _ARC_FIELDS]
        if self.num_states < 2 or num_arcs == 0 or self.word_splits.shape != (num_arcs + 1,) or \
                any(column.shape != (num_arcs,) for column in columns) or \
                not all(map(_plain_cpu, columns + [self.word_splits, self.word_ids])):
            return False
        final = self.num_states - 1
        src, dst, labels = self.src.numpy(), self.dst.numpy(), self.labels.numpy()
        splits, word_ids = self.word_splits.numpy(), self.word_ids.numpy()
        into_final = dst == final  # (A,)
        with np.errstate(all="ignore"):
            finite = np.isfinite(self.am_scores.numpy() + self.ngram_scores.numpy()).all()
        return bool(src.min() >= 0 and src.max() < final  # src < final: no arc leaves it
                    and dst.min() >= 0 and dst.max() <= final and into_final.any()
                    and labels.min() >= -1 and np.array_equal(into_final, labels == -1)
                    and splits[0] == 0 and splits[-1] == word_ids.size
                    and (splits[1:] >= splits[:-1]).all() and finite
                    and (word_ids.size == 0 or word_ids.min() > 0))


_ARC_FIELDS = ("src", "dst", "labels", "am_scores", "ngram_scores")
_NUMPY_DTYPES = frozenset([torch.int64, torch.int32, torch.float32, torch.float64])


def _plain_cpu(tensor: Tensor) -> bool:
    """True for a CPU tensor that ``.numpy()`` shares without a copy or an error."""
    return (tensor.device.type == "cpu" and tensor.dtype in _NUMPY_DTYPES
            and not tensor.requires_grad)


def _check_states(lattice: Lattice, fail) -> None:
    """State ranges, the final state and the -1 labels of one lattice."""
    final = lattice.num_states - 1
    low = int(torch.minimum(lattice.src.min(), lattice.dst.min()))
    high = int(torch.maximum(lattice.src.max(), lattice.dst.max()))
    if low < 0 or high > final:
        fail(f"state {low if low < 0 else high} out of range (expected 0..{final})")
    if bool((lattice.src == final).any()):
        arc = int((lattice.src == final).nonzero()[0])
        fail(f"arc {arc} leaves the final state {final}")
    into_final = lattice.dst == final
    if not bool(into_final.any()):
        fail(f"no arc enters the final state {final}")
    wrong = into_final != (lattice.labels == -1)
    if bool(wrong.any()):
        arc = int(wrong.nonzero()[0])
        fail(f"arc {arc} has label {int(lattice.labels[arc])} and destination "
             f"{int(lattice.dst[arc])} (expected label -1 exactly on arcs into state {final})")
    if bool((lattice.labels < -1).any()):
        arc = int((lattice.labels < -1).nonzero()[0])
        fail(f"arc {arc} has label {int(lattice.labels[arc])} (expected >= -1)")


def _failer(path: Optional[Union[str, Path]], utt_id: str):
    """A function raising ``InputFormatError`` located at ``path`` / ``utt_id``."""

    def fail(message: str) -> None:
        raise InputFormatError(message, path=path, utt_id=utt_id)

    return fail


def splits_from_counts(counts: Tensor) -> Tensor:
    """Row splits from per-row counts.

    Args:
      counts:
        1-D int64 tensor of shape (A,), the number of items of each row.

    Returns:
      1-D int64 tensor of shape (A+1,), ``[0, c0, c0+c1, ...]``.
    """
    splits = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    torch.cumsum(counts.to(torch.int64), dim=0, out=splits[1:])
    return splits


def words_from_labels(labels: Tensor) -> Tuple[Tensor, Tensor]:
    """One word per arc where the label is a word (> 0), none on 0 and -1.

    Args:
      labels:
        1-D integer tensor of shape (A,).

    Returns:
      ``(word_splits, word_ids)`` as in ``Lattice``.
    """
    labels = labels.to(torch.int64)
    is_word = labels > 0
    return splits_from_counts(is_word.to(torch.int64)), labels[is_word]
