"""Builders shared by the algorithm tests: inline lattices, random DAGs, brute force.

Imported by the test modules as `lattice_builders` (pytest puts this folder on sys.path).
"""
import dataclasses
import math
import random
from typing import List, Sequence, Tuple

import pytest
import torch

from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, splits_from_counts

# (src, dst, words, score) of one arc.
ArcSpec = Tuple[int, int, Sequence[int], float]


def make_lattice(arcs: Sequence[ArcSpec], num_states: int = 0, utt_id: str = "utt"):
    """A lattice and its (A,) float32 arc scores from a list of arcs.

    The final state is the highest state id (or ``num_states - 1``); arcs into it
    get label -1, other arcs their first word or 0. am_scores hold the scores,
    ngram_scores are zero.
    """
    num_states = num_states or 1 + max(max(src, dst) for src, dst, _, _ in arcs)
    final = num_states - 1
    words = [list(w) for _, _, w, _ in arcs]
    labels = [-1 if dst == final else (w[0] if w else 0) for (_, dst, _, _), w in zip(arcs, words)]
    scores = torch.tensor([s for _, _, _, s in arcs], dtype=torch.float32)
    lattice = Lattice(
        utt_id=utt_id,
        num_states=num_states,
        src=torch.tensor([a[0] for a in arcs], dtype=torch.int64),
        dst=torch.tensor([a[1] for a in arcs], dtype=torch.int64),
        labels=torch.tensor(labels, dtype=torch.int64),
        word_splits=splits_from_counts(torch.tensor([len(w) for w in words], dtype=torch.int64)),
        word_ids=torch.tensor([x for w in words for x in w], dtype=torch.int64),
        am_scores=scores.clone(),
        ngram_scores=torch.zeros(len(arcs)),
    )
    return lattice, scores


def random_lattice(rng: random.Random, max_states: int = 7, vocab: int = 4,
                   final_words: bool = False, by_source: bool = False):
    """A random connected DAG lattice (every state on some start->final path).

    Arcs carry 0-2 words from 1..vocab; arcs into the final state carry none
    unless ``final_words``. Scores are random floats in [-5, 0]. States are
    numbered topologically; arcs come in random order, or with ``by_source``
    sorted by source state (random order within a state), as readers make them.
    """
    num_states = rng.randint(2, max_states)
    final = num_states - 1
    pairs = set()
    for dst in range(1, num_states):  # every state reachable
        pairs.add((rng.randrange(0, dst), dst))
    for src in range(0, final):  # every state co-reachable
        pairs.add((src, rng.randrange(src + 1, num_states)))
    for _ in range(rng.randint(0, num_states)):
        src = rng.randrange(0, final)
        pairs.add((src, rng.randrange(src + 1, num_states)))
    arcs = []
    for src, dst in sorted(pairs):
        for _ in range(rng.choice([1, 1, 1, 2])):  # sometimes parallel arcs
            count = rng.choice([0, 1, 1, 2]) if (dst != final or final_words) else 0
            words = [rng.randint(1, vocab) for _ in range(count)]
            arcs.append((src, dst, words, round(rng.uniform(-5.0, 0.0), 3)))
    rng.shuffle(arcs)  # arc order must not matter
    if by_source:
        arcs.sort(key=lambda arc: arc[0])
    return make_lattice(arcs, num_states)


def all_paths(lattice: Lattice) -> List[List[int]]:
    """Every start->final path as a list of arc ids (depth-first, for small DAGs)."""
    out = {}
    for arc, src in enumerate(lattice.src.tolist()):
        out.setdefault(src, []).append(arc)
    dst = lattice.dst.tolist()
    final = lattice.num_states - 1
    paths, stack = [], [(0, [])]
    while stack:
        state, path = stack.pop()
        if state == final:
            paths.append(path)
            continue
        for arc in out.get(state, []):
            stack.append((dst[arc], path + [arc]))
    return paths


def path_score(path: Sequence[int], scores: torch.Tensor) -> float:
    """The float64 sum of arc scores along a path, summed left to right."""
    total = 0.0
    for arc in path:
        total += float(scores[arc])
    return total


def path_words(lattice: Lattice, path: Sequence[int]) -> Tuple[int, ...]:
    """The word sequence of a path."""
    return tuple(w for arc in path for w in lattice.arc_words(arc))


def logsumexp(values: Sequence[float]) -> float:
    """log(sum(exp(values))) in float64."""
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs CUDA")])]


def batch_of(*lattices: Lattice, device: str = "cpu") -> LatticeBatch:
    """A batch of the given lattices (distinct utterance ids), on ``device``."""
    renamed = [dataclasses.replace(lat, utt_id=f"{lat.utt_id}-{index}")
               for index, lat in enumerate(lattices)]
    return LatticeBatch.from_lattices(renamed).to(torch.device(device))


def mixed_batch(rng: random.Random, lattice: Lattice, size: int = 64, **options):
    """``lattice`` at a random place among ``size - 1`` random lattices: (batch, its index)."""
    others = [random_lattice(rng, **options)[0] for _ in range(size - 1)]
    index = rng.randrange(size)
    return batch_of(*others[:index], lattice, *others[index:]), index


def arc_range(batch: LatticeBatch, index: int) -> slice:
    """The batch arc ids of lattice ``index``, as a slice."""
    return slice(int(batch.arc_splits[index]), int(batch.arc_splits[index + 1]))
