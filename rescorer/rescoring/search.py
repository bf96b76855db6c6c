"""Search on rescored material: the 1-best and the n-best at given scales.

Two kinds of rescored material share one interface (``onebest_words`` and
``hypotheses``), so ``--grid`` sweeps and the outputs do not care about the
mode:

* ``ScoredLattice``: an expanded lattice with per-arc components (lattice
  mode); search is Viterbi / exact distinct n-best on it.
* ``ScoredList``: a fixed list of hypotheses with summed components
  (n-best mode); search is re-ranking.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Protocol

import torch
from torch import Tensor

from rescorer.algorithms.best_path import best_path
from rescorer.algorithms.nbest import nbest_distinct
from rescorer.algorithms.ragged import select_rows
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.text import Hypothesis
from rescorer.rescoring.combine import ArcComponents, Scales, combine_sums


class Rescored(Protocol):
    """Rescored material of one utterance."""

    utt_id: str

    def onebest_words(self, scales: Scales) -> List[str]:
        """The best word sequence under ``scales``."""

    def hypotheses(self, scales: Scales, count: int) -> List[Hypothesis]:
        """The ``count`` best distinct word sequences under ``scales``, ranked."""


def path_words(
    lattice: Lattice, arc_ids: Tensor, symbols: SymbolTable, path: Optional[Path] = None
) -> List[str]:
    """The words along a path.

    Args:
      lattice:
        The lattice the arcs belong to.
      arc_ids:
        1-D int64 tensor of shape (path arcs,), arc ids in path order.
      symbols:
        Maps word ids to words.
      path:
        The lattice's file, named in a ``SymbolError`` for an unknown id.

    Returns:
      The words, epsilon and fillers already removed from the lattice.
    """
    _, word_ids = select_rows(lattice.word_splits, lattice.word_ids, arc_ids)
    return [symbols.word(word_id, path=path, utt_id=lattice.utt_id) for word_id in word_ids.tolist()]


@dataclass
class ScoredLattice:
    """An expanded lattice whose arcs carry every score component.

    Attributes:
      utt_id:
        The utterance.
      lattice:
        The expanded lattice (words and labels of the original arcs).
      components:
        Per-arc am, ngram, nnlm and word counts of ``lattice``.
      symbols:
        The word table of the lattice's word ids.
      levels:
        1-D int64 tensor of shape (S',), topological levels of ``lattice``.
      path:
        The lattice file, for error messages.
    """

    utt_id: str
    lattice: Lattice
    components: ArcComponents
    symbols: SymbolTable
    levels: Tensor
    path: Optional[Path] = None

    def onebest_words(self, scales: Scales) -> List[str]:
        """Viterbi on the combined arc scores."""
        _, arc_ids = best_path(self.lattice, self.components.total(scales), levels=self.levels)
        return path_words(self.lattice, arc_ids, self.symbols, self.path)

    def hypotheses(self, scales: Scales, count: int) -> List[Hypothesis]:
        """Exact n-best of distinct word sequences, totals recomputed in float64."""
        ranked = nbest_distinct(self.lattice, self.components.total(scales), count,
                                levels=self.levels)
        result = []
        for rank, found in enumerate(ranked, start=1):
            arc_ids = found.arc_ids
            sums = self.components.path_sums(arc_ids)
            result.append(_hypothesis(self.utt_id, rank, path_words(
                self.lattice, arc_ids, self.symbols, self.path), sums, scales))
        return result


@dataclass
class ScoredList:
    """A fixed list of word sequences with summed components (n-best mode).

    Attributes:
      utt_id:
        The utterance.
      words:
        One word list per hypothesis.
      sums:
        One ``{"am", "ngram", "nnlm", "num_words"}`` dict per hypothesis.
    """

    utt_id: str
    words: List[List[str]]
    sums: List[Dict[str, float]]

    def _order(self, scales: Scales) -> List[int]:
        """Hypothesis indices, best total first (ties: earlier first)."""
        totals = [combine_sums(sums, scales) for sums in self.sums]
        return sorted(range(len(totals)), key=lambda index: -totals[index])

    def onebest_words(self, scales: Scales) -> List[str]:
        """The best hypothesis after re-ranking."""
        return list(self.words[self._order(scales)[0]])

    def hypotheses(self, scales: Scales, count: int) -> List[Hypothesis]:
        """The re-ranked list, at most ``count`` entries."""
        order = self._order(scales)[:count]
        return [
            _hypothesis(self.utt_id, rank, self.words[index], self.sums[index], scales)
            for rank, index in enumerate(order, start=1)
        ]


def _hypothesis(
    utt_id: str, rank: int, words: List[str], sums: Dict[str, float], scales: Scales
) -> Hypothesis:
    """A ``Hypothesis`` whose total is recomputed from the summed components."""
    return Hypothesis(
        uttid=utt_id, rank=rank, words=list(words), am=sums["am"], ngram=sums["ngram"],
        nnlm=sums["nnlm"], total=combine_sums(sums, scales),
    )


def first_pass_words(
    lattice: Lattice, scales: Scales, symbols: SymbolTable, levels: Optional[Tensor] = None,
    path: Optional[Path] = None,
) -> List[str]:
    """The first-pass 1-best: Viterbi on ``am_scale*am + ngram_scale*ngram``.

    ``levels`` are the lattice's topological levels, computed if None.
    """
    first = scales.first_pass()
    scores = first.am * lattice.am_scores + first.ngram * lattice.ngram_scores
    _, arc_ids = best_path(lattice, scores.to(torch.float32), levels=levels)
    return path_words(lattice, arc_ids, symbols, path)


def reference_word_ids(words: List[str], symbols: SymbolTable) -> List[int]:
    """Word ids of a reference; a word missing from the table gets its own negative id.

    Negative ids never occur on arcs, so such words always count as errors (and
    two occurrences of one unknown word get the same id).
    """
    unknown: Dict[str, int] = {}
    ids = []
    for word in words:
        if word in symbols:
            ids.append(symbols.id(word))
        else:
            ids.append(unknown.setdefault(word, -2 - len(unknown)))
    return ids
