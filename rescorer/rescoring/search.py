"""Search on rescored material: the 1-best and the n-best at given scales.

Two kinds of rescored material share one interface (``onebest_words``,
``hypotheses`` and ``consensus``), so ``--grid`` sweeps and the outputs do not
care about the mode:

* ``ScoredLattice``: one lattice of a ``ScoredBatch`` (expanded lattices with
  per-arc components, lattice mode). The first request at given scales runs
  the search for the whole batch (batched Viterbi; A* per lattice on batched
  heuristics) and keeps the answers of every lattice; so does the first
  ``consensus`` request (``--decode mbr``: one ``mbr_decode_batch`` for the
  batch, on the expanded lattices' exact scores).
* ``ScoredList``: a fixed list of hypotheses with summed components
  (n-best mode); search is re-ranking, and the consensus is MBR over the
  list, decoded as a lattice whose paths are the hypotheses.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import shortest_paths
from rescorer.algorithms.mbr import MbrResult, mbr_decode_batch
from rescorer.algorithms.nbest import RankedPath, nbest_distinct
from rescorer.algorithms.ragged import select_rows
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import LatticeError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.outputs.text import Consensus, Hypothesis
from rescorer.rescoring.combine import ArcComponents, Scales, combine_sums


class Rescored(Protocol):
    """Rescored material of one utterance."""

    utt_id: str

    def onebest_words(self, scales: Scales) -> List[str]:
        """The best word sequence under ``scales``."""

    def hypotheses(self, scales: Scales, count: int) -> List[Hypothesis]:
        """The ``count`` best distinct word sequences under ``scales``, ranked."""

    def consensus(self, scales: Scales, mbr_scale: float) -> Consensus:
        """The MBR consensus, posteriors proportional to exp(mbr_scale * total)."""


def path_words(
    batch: LatticeBatch, arc_ids: Tensor, symbols: SymbolTable, utt_id: str,
    path: Optional[Path] = None,
) -> List[str]:
    """The words along a path.

    Args:
      batch:
        The batch the arcs belong to.
      arc_ids:
        1-D int64 tensor of shape (path arcs,), batch arc ids in path order.
      symbols:
        Maps word ids to words.
      utt_id / path:
        The utterance and its file, named in a ``SymbolError`` for an unknown id.

    Returns:
      The words, epsilon and fillers already removed from the lattice.
    """
    _, word_ids = select_rows(batch.word_splits, batch.word_ids, arc_ids)
    return [symbols.word(word_id, path=path, utt_id=utt_id) for word_id in word_ids.tolist()]


@dataclass
class ScoredBatch:
    """Expanded lattices whose arcs carry every score component, searched together.

    Attributes:
      schedule:
        The ``LevelSchedule`` of the expanded lattices.
      components:
        Per-arc am, ngram, nnlm and word counts of the batch (A' arcs).
      symbols:
        The word table of each lattice.
      paths:
        The lattice file of each lattice, for error messages.
      state_times:
        1-D float64 tensor of shape (S',), the expanded states' times in
        seconds (NaN: unknown; ``rescoring.times``), or None (no CTM asked for).
      time_notes:
        Lattice index -> why it has no times although its format has them.
    """

    schedule: LevelSchedule
    components: ArcComponents
    symbols: List[SymbolTable]
    paths: List[Optional[Path]]
    state_times: Optional[Tensor] = None
    time_notes: Dict[int, str] = field(default_factory=dict)
    _onebest: Dict[Scales, List[List[int]]] = field(default_factory=dict)
    _totals: Dict[Scales, Tensor] = field(default_factory=dict)
    _nbest: Dict[Tuple[Scales, int], Tuple[List[List[RankedPath]], Dict[int, LatticeError]]] = \
        field(default_factory=dict)
    _consensus: Dict[Tuple[Scales, float], List[MbrResult]] = field(default_factory=dict)

    def arc_totals(self, scales: Scales) -> Tensor:
        """1-D float64 tensor of shape (A',), every arc's combined score (cached per scales)."""
        if scales not in self._totals:
            self._totals[scales] = self.components.total(scales)
        return self._totals[scales]

    def onebest_word_ids(self, scales: Scales, index: int) -> List[int]:
        """Word ids along lattice ``index``'s Viterbi path under ``scales`` (float64).

        The first request at ``scales`` searches the whole batch and gathers every
        path's words at once (a ``--grid`` asks for each point's 1-best of every lattice).
        """
        if scales not in self._onebest:
            batch = self.schedule.batch
            _, splits, arcs = shortest_paths(batch, self.arc_totals(scales), self.schedule)
            word_splits, word_ids = select_rows(batch.word_splits, batch.word_ids, arcs)  # [path arc][word]
            bounds = word_splits[splits].tolist()  # (U+1,) word offsets of each lattice's path
            ids = word_ids.tolist()
            self._onebest[scales] = [ids[bounds[u]:bounds[u + 1]] for u in range(batch.num_utts)]
        return self._onebest[scales][index]

    def ranked(self, scales: Scales, count: int, index: int) -> List[RankedPath]:
        """Lattice ``index``'s exact distinct n-best under ``scales``, ranked in float64.

        Raises:
          LatticeError: that lattice's search exceeded its pop limit.
        """
        key = (scales, count)
        if key not in self._nbest:
            self._nbest[key] = nbest_distinct(self.schedule, self.arc_totals(scales), count)
        ranked, failures = self._nbest[key]
        if index in failures:
            raise failures[index]
        return ranked[index]

    def mbr(self, scales: Scales, mbr_scale: float, index: int) -> MbrResult:
        """Lattice ``index``'s MBR result under ``scales`` (the batch decoded once per scales)."""
        key = (scales, mbr_scale)
        if key not in self._consensus:
            self._consensus[key] = mbr_decode_batch(self.schedule.batch, self.components.total(scales),
                                                    mbr_scale, self.state_times)
        return self._consensus[key][index]


@dataclass
class ScoredLattice:
    """Lattice ``index`` of a ``ScoredBatch`` (lattice mode).

    Attributes:
      utt_id:
        The utterance.
      scored:
        The batch it was rescored in.
      index:
        Its place in ``scored``.
    """

    utt_id: str
    scored: ScoredBatch
    index: int

    def _words(self, word_ids: Sequence[int]) -> List[str]:
        symbols, path = self.scored.symbols[self.index], self.scored.paths[self.index]
        return [symbols.word(word_id, path=path, utt_id=self.utt_id) for word_id in word_ids]

    def onebest_words(self, scales: Scales) -> List[str]:
        """Viterbi on the combined arc scores."""
        return self._words(self.scored.onebest_word_ids(scales, self.index))

    def hypotheses(self, scales: Scales, count: int) -> List[Hypothesis]:
        """Exact n-best of distinct word sequences, totals recomputed in float64 from the arcs."""
        result = []
        components = self.scored.components
        totals = self.scored.arc_totals(scales)
        for rank, found in enumerate(self.scored.ranked(scales, count, self.index), start=1):
            arc_ids = found.arc_ids.to(components.am.device)
            total = float(totals.index_select(0, arc_ids).sum())
            result.append(_hypothesis(self.utt_id, rank, self._words(found.word_ids),
                                      components.path_sums(arc_ids), scales, total))
        return result

    def consensus(self, scales: Scales, mbr_scale: float) -> Consensus:
        """MBR on the expanded lattice's combined scores (exact LM scores)."""
        found = self.scored.mbr(scales, mbr_scale, self.index)
        table = self.scored.symbols[self.index]
        words = [table.word(word, path=self.scored.paths[self.index], utt_id=self.utt_id)
                 for word in found.word_ids.tolist()]
        return _consensus(self.utt_id, words, found, mbr_scale, self.scored.time_notes.get(self.index))


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

    def consensus(self, scales: Scales, mbr_scale: float) -> Consensus:
        """MBR over the whole list: a lattice whose paths are the hypotheses, scored by their totals.

        Word ties in a bin go to the alphabetically first word (the list's own word ids).
        """
        spelling = sorted({word for words in self.words for word in words})
        ids = {word: number for number, word in enumerate(spelling, start=1)}
        batch, scores = list_lattice(self.utt_id, [[ids[word] for word in words] for words in self.words],
                                     [combine_sums(sums, scales) for sums in self.sums])
        found = mbr_decode_batch(batch, scores, mbr_scale)[0]
        return _consensus(self.utt_id, [spelling[word - 1] for word in found.word_ids.tolist()], found,
                          mbr_scale)


def list_lattice(utt_id: str, hypotheses: Sequence[Sequence[int]],
                 totals: Sequence[float]) -> Tuple[LatticeBatch, Tensor]:
    """A lattice whose paths are exactly ``hypotheses``: 0 -> h+1 (all words of h) -> final.

    Args:
      utt_id:
        The utterance.
      hypotheses:
        H word-id sequences (ids > 0).
      totals:
        H scores.

    Returns:
      ``(batch, scores)``: a batch of one lattice (H+2 states, 2H arcs) and its
      1-D float64 (2H,) arc scores (each hypothesis' total on its first arc).
    """
    count = len(hypotheses)
    words = torch.tensor([word for words in hypotheses for word in words], dtype=torch.int64)
    lengths = torch.tensor([len(words) for words in hypotheses] + [0] * count, dtype=torch.int64)
    middle = torch.arange(1, count + 1)
    lattice = Lattice(utt_id=utt_id, num_states=count + 2,
                      src=torch.cat([torch.zeros(count, dtype=torch.int64), middle]),
                      dst=torch.cat([middle, torch.full((count,), count + 1)]),
                      labels=torch.cat([torch.zeros(count, dtype=torch.int64), torch.full((count,), -1)]),
                      word_splits=splits_from_counts(lengths), word_ids=words,
                      am_scores=torch.zeros(2 * count), ngram_scores=torch.zeros(2 * count))
    scores = torch.cat([torch.tensor(list(totals), dtype=torch.float64), torch.zeros(count, dtype=torch.float64)])
    return LatticeBatch.from_lattices([lattice]), scores


def _consensus(utt_id: str, words: List[str], found: MbrResult, mbr_scale: float,
               times_note: Optional[str] = None) -> Consensus:
    """The ``Consensus`` record of an ``MbrResult`` whose word ids are spelled ``words``."""
    times = None if found.word_times is None else [tuple(span) for span in found.word_times.tolist()]
    return Consensus(uttid=utt_id, words=words, confidences=found.confidences.tolist(), times=times,
                     bayes_risk=found.bayes_risk, mbr_scale=mbr_scale, times_note=times_note)


def _hypothesis(
    utt_id: str, rank: int, words: List[str], sums: Dict[str, float], scales: Scales,
    total: Optional[float] = None,
) -> Hypothesis:
    """A ``Hypothesis`` with its summed components; ``total`` (the path's sum of
    ``ArcComponents.total``) or, when None, recomputed from the sums (log-linear)."""
    return Hypothesis(
        uttid=utt_id, rank=rank, words=list(words), am=sums["am"], ngram=sums["ngram"],
        nnlm=sums["nnlm"], total=combine_sums(sums, scales) if total is None else total,
        arpa=sums.get("arpa"),
    )


def first_pass_words(
    schedule: LevelSchedule, first_pass: Tensor, symbols: Sequence[SymbolTable],
    paths: Sequence[Optional[Path]],
) -> List[List[str]]:
    """The first-pass 1-best of every lattice: Viterbi on the first-pass scores.

    Args:
      schedule:
        The batch's ``LevelSchedule``.
      first_pass:
        1-D float64 tensor of shape (A,), ``combine.first_pass_scores`` (word
        penalty included: the same formula that prunes and ranks the n-best).
      symbols / paths:
        Each lattice's word table and file.
    """
    batch = schedule.batch
    _, splits, arcs = shortest_paths(batch, first_pass, schedule)
    bounds = splits.tolist()
    return [path_words(batch, arcs[bounds[u]:bounds[u + 1]], symbols[u], batch.utt_ids[u], paths[u])
            for u in range(batch.num_utts)]


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
