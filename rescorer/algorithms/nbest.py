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
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.best_path import backward_scores
from rescorer.algorithms.ragged import group_by
from rescorer.algorithms.topsort import topological_levels
from rescorer.errors import LatticeError
from rescorer.lattice.fsavec import Lattice

DEFAULT_MAX_POPS = 1_000_000


@dataclass(frozen=True)
class Hypothesis:
    """One distinct word sequence with its best path.

    Attributes:
      score:
        The float64 score of the best path with these words.
      arc_ids:
        1-D int64 tensor, the arcs of that path from start to final state.
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
    lattice: Lattice, arc_scores: Tensor, n: int, max_pops: int = DEFAULT_MAX_POPS,
    levels: Optional[Tensor] = None,
) -> List[Hypothesis]:
    """The ``n`` best distinct word sequences, best first, with exact scores.

    Args:
      lattice:
        The lattice (epsilon and filler arcs carry no words; an arc may carry several).
      arc_scores:
        1-D float tensor of shape (A,), the score of each arc (higher is better).
      n:
        How many sequences to return (fewer if the lattice has fewer).
      max_pops:
        Bound on search items taken from the heap.
      levels:
        Optional (S,) int64 topological levels of ``lattice``; computed if None.

    Returns:
      Up to ``n`` hypotheses in order of decreasing score.

    Raises:
      LatticeError: the search needed more than ``max_pops`` items (prune the
        lattice and retry), or as ``topological_levels``.
    """
    if levels is None:
        levels = topological_levels(lattice)
    scores = arc_scores.to(torch.float64)
    heuristic = backward_scores(lattice, scores, levels=levels).tolist()
    out_arcs, dst, score_list, arc_words = _arc_tables(lattice, scores)
    final = lattice.num_states - 1
    prefixes = _Prefixes()
    back: List[Tuple[int, int]] = [(-1, -1)]  # search node -> (parent node, arc)
    tie = itertools.count()
    heap = [(-heuristic[0], next(tie), 0, 0, 0.0, 0)]  # (-f, tie, state, prefix, g, node)
    done, results = set(), []
    while heap and len(results) < n:
        _, _, state, prefix, score, node = heapq.heappop(heap)
        if (state, prefix) in done:
            continue  # a better path reached this (state, prefix) first
        done.add((state, prefix))
        if len(done) > max_pops:
            raise LatticeError(
                f"n-best search took more than {max_pops} search items after finding "
                f"{len(results)} of {n} sequences; prune the lattice first",
                utt_id=lattice.utt_id)
        if state == final:
            results.append(Hypothesis(score, _arcs_of(back, node), prefixes.words(prefix)))
            continue
        for arc in out_arcs[state]:
            target = dst[arc]
            if heuristic[target] == float("-inf"):
                continue  # dead end
            new_prefix = prefixes.extend(prefix, arc_words[arc])
            if (target, new_prefix) in done:
                continue
            new_score = score + score_list[arc]
            back.append((node, arc))
            heapq.heappush(heap, (-(new_score + heuristic[target]), next(tie), target,
                                  new_prefix, new_score, len(back) - 1))
    return results


def _arc_tables(lattice: Lattice, scores: Tensor):
    """Python lists for the search loop: out-arcs per state, dst, score, words per arc."""
    order, splits = group_by(lattice.src, lattice.num_states)
    order_list, splits_list = order.tolist(), splits.tolist()
    out_arcs = [order_list[splits_list[s]:splits_list[s + 1]] for s in range(lattice.num_states)]
    bounds, words = lattice.word_splits.tolist(), lattice.word_ids.tolist()
    arc_words = [tuple(words[bounds[a]:bounds[a + 1]]) for a in range(lattice.num_arcs)]
    return out_arcs, lattice.dst.tolist(), scores.tolist(), arc_words


def _arcs_of(back: List[Tuple[int, int]], node: int) -> Tensor:
    """The arc ids from the start to search node ``node``."""
    arcs = []
    while node > 0:
        node, arc = back[node]
        arcs.append(arc)
    return torch.tensor(arcs[::-1], dtype=torch.int64)
