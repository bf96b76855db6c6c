"""The n best distinct word sequences of a lattice, exactly (A* search).

Search items are (state, word prefix) pairs. Each item's priority is its score
so far plus the exact best completion from its state (backward Viterbi), so
items leave the heap in order of the best complete path through them: the first
time a (state, prefix) pair is popped it carries its best score (later pops are
dominated and skipped), and the first time a prefix is popped at the final state
it is a new complete word sequence with its exact best score.

Why a Python loop: A* is sequential (each pop decides the next), and each pop
does a few dictionary look-ups and heap pushes; torch calls per pop would cost
more than they save. Measured on the DEV lattices in docs/results/algorithms.md.
"""
import heapq
import itertools
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import backward_scores
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import LatticeError
from rescorer.lattice.batch import LatticeBatch

DEFAULT_MAX_POPS = 1_000_000


@dataclass(frozen=True)
class RankedPath:
    """One distinct word sequence of a lattice with its best path.

    Attributes:
      score:
        The float64 score of the best path with these words.
      arc_ids:
        1-D int64 tensor, the batch arc ids of that path from start to final state.
      word_ids:
        The word ids of the sequence.
    """

    score: float
    arc_ids: Tensor
    word_ids: Tuple[int, ...]


class _Prefixes:
    """Word prefixes as ids in a trie, so (state, prefix) keys hash in O(1)."""

    def __init__(self) -> None:
        self.children: Dict[Tuple[int, int], int] = {}
        self.parent: List[int] = [-1]
        self.word: List[int] = [0]

    def extend(self, prefix: int, words: Tuple[int, ...]) -> int:
        for word in words:
            child = self.children.get((prefix, word))
            if child is None:
                child = len(self.parent)
                self.children[(prefix, word)] = child
                self.parent.append(prefix)
                self.word.append(word)
            prefix = child
        return prefix

    def words(self, prefix: int) -> Tuple[int, ...]:
        out = []
        while prefix > 0:
            out.append(self.word[prefix])
            prefix = self.parent[prefix]
        return tuple(reversed(out))


def nbest_distinct(
    schedule: LevelSchedule, arc_scores: Tensor, n: int, max_pops: int = DEFAULT_MAX_POPS,
) -> Tuple[List[List[RankedPath]], Dict[int, LatticeError]]:
    """The ``n`` best distinct word sequences of every lattice, best first, exact scores.

    The A* heuristic (backward Viterbi scores) is computed for the whole batch
    at once; the search itself runs lattice by lattice (see the module docstring).

    Args:
      schedule:
        The batch's ``LevelSchedule`` (epsilon and filler arcs carry no words; an
        arc may carry several).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better);
        ranked in float64.
      n:
        How many sequences per lattice (fewer if a lattice has fewer).
      max_pops:
        Bound on search items taken from the heap, per lattice.

    Returns:
      ``(ranked, failures)``: per lattice, up to ``n`` ``RankedPath`` in order of
      decreasing score (empty for a failed lattice), and lattice index ->
      ``LatticeError`` for the lattices whose search needed more than
      ``max_pops`` items (prune them and retry).
    """
    batch = schedule.batch
    scores = arc_scores.to(torch.float64)
    heuristic = backward_scores(batch, scores, schedule=schedule)
    columns = _Columns.of(batch, scores, heuristic)
    ranked: List[List[RankedPath]] = []
    failures: Dict[int, LatticeError] = {}
    for utt in range(batch.num_utts):
        try:
            ranked.append(_search(columns, utt, batch.utt_ids[utt], n, max_pops))
        except LatticeError as error:
            failures[utt] = error
            ranked.append([])
    return ranked, failures


@dataclass(frozen=True)
class _Columns:
    """A batch's columns as Python lists, made once for the searches of all its lattices."""

    state_splits: List[int]
    arc_splits: List[int]
    src: List[int]
    dst: List[int]
    scores: List[float]  # float64 arc scores
    heuristic: List[float]  # float64 backward Viterbi score of each state
    word_splits: List[int]
    word_ids: List[int]

    @classmethod
    def of(cls, batch: LatticeBatch, scores: Tensor, heuristic: Tensor) -> "_Columns":
        return cls(*(column.tolist() for column in (
            batch.state_splits, batch.arc_splits, batch.src, batch.dst, scores, heuristic,
            batch.word_splits, batch.word_ids)))


def _search(columns: _Columns, utt: int, utt_id: str, n: int, max_pops: int) -> List[RankedPath]:
    """A* over lattice ``utt`` (utterance ``utt_id``, named in errors)."""
    first_state, end_state = columns.state_splits[utt], columns.state_splits[utt + 1]
    first_arc, end_arc = columns.arc_splits[utt], columns.arc_splits[utt + 1]
    h = columns.heuristic[first_state:end_state]  # local states
    out_arcs, dst, score_list, arc_words = _arc_tables(columns, first_arc, end_arc, first_state,
                                                        end_state - first_state)
    final = end_state - first_state - 1
    prefixes = _Prefixes()
    back: List[Tuple[int, int]] = [(-1, -1)]  # search node -> (parent node, local arc)
    tie = itertools.count()
    heap = [(-h[0], next(tie), 0, 0, 0.0, 0)]  # (-f, tie, state, prefix, g, node)
    done, results = set(), []
    while heap and len(results) < n:
        _, _, state, prefix, score, node = heapq.heappop(heap)
        if (state, prefix) in done:
            continue  # a better path reached this (state, prefix) first
        done.add((state, prefix))
        if len(done) > max_pops:
            raise LatticeError(
                f"n-best search took more than {max_pops} search items after finding "
                f"{len(results)} of {n} sequences; prune the lattice first", utt_id=utt_id)
        if state == final:
            arcs = _arcs_of(back, node) + first_arc
            results.append(RankedPath(score, arcs, prefixes.words(prefix)))
            continue
        for arc in out_arcs[state]:
            target = dst[arc]
            if h[target] == float("-inf"):
                continue  # dead end
            new_prefix = prefixes.extend(prefix, arc_words[arc])
            if (target, new_prefix) in done:
                continue
            new_score = score + score_list[arc]
            back.append((node, arc))
            heapq.heappush(heap, (-(new_score + h[target]), next(tie), target,
                                  new_prefix, new_score, len(back) - 1))
    return results


def _arc_tables(columns: _Columns, first_arc: int, end_arc: int, first_state: int,
                num_states: int):
    """One lattice's search tables: out-arcs per state, dst, score, words per (local) arc."""
    out_arcs: List[List[int]] = [[] for _ in range(num_states)]
    for arc, state in enumerate(columns.src[first_arc:end_arc]):
        out_arcs[state - first_state].append(arc)
    words, bounds = columns.word_ids, columns.word_splits
    arc_words = [tuple(words[bounds[arc]:bounds[arc + 1]]) for arc in range(first_arc, end_arc)]
    dst = [state - first_state for state in columns.dst[first_arc:end_arc]]
    return out_arcs, dst, columns.scores[first_arc:end_arc], arc_words


def _arcs_of(back: List[Tuple[int, int]], node: int) -> Tensor:
    """The local arc ids from the start to search node ``node``."""
    arcs = []
    while node > 0:
        node, arc = back[node]
        arcs.append(arc)
    return torch.tensor(arcs[::-1], dtype=torch.int64)
