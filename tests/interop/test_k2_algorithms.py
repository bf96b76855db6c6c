"""Our best path and total log score equal k2's on the same lattices.

Run in the pinned environment: ``.venv-k2/bin/python -m pytest -m k2 tests/interop``.
"""
import dataclasses
from pathlib import Path

import pytest
import torch

from rescorer.algorithms.best_path import shortest_paths, total_scores
from rescorer.algorithms.ragged import select_rows
from rescorer.formats.k2_pt import lattices_to_k2_dict
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, splits_from_counts

k2 = pytest.importorskip("k2")

pytestmark = pytest.mark.k2

DEV_LATTICES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "asr-dev" / "lat"


def _random_lattice(generator: torch.Generator, index: int) -> Lattice:
    """A random top-sorted DAG (arcs sorted by source, as k2 requires), one word or none per arc."""
    num_states = int(torch.randint(3, 12, (1,), generator=generator))
    src, dst = [], []
    for state in range(num_states - 1):  # every state has an arc out, every arc goes up
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            src.append(state)
            dst.append(int(torch.randint(state + 1, num_states, (1,), generator=generator)))
    src_t, dst_t = torch.tensor(src), torch.tensor(dst)
    words = torch.randint(0, 6, (len(src),), generator=generator)  # 0 = epsilon
    words[dst_t == num_states - 1] = 0
    labels = torch.where(dst_t == num_states - 1, torch.full_like(words, -1), words)
    scores = -5 * torch.rand(len(src), generator=generator)
    return Lattice(f"random-{index}", num_states, src_t, dst_t, labels,
                   splits_from_counts((words > 0).long()), words[words > 0],
                   scores, -torch.rand(len(src), generator=generator))


def _compare(lattices):
    fsas = k2.Fsa.from_dict(lattices_to_k2_dict(lattices))
    best = k2.shortest_path(fsas, use_double_scores=True)
    k2_best = best.get_tot_scores(use_double_scores=True, log_semiring=False)
    k2_total = fsas.get_tot_scores(use_double_scores=True, log_semiring=True)
    batch = LatticeBatch.from_lattices(lattices)  # all lattices in one batch, as k2 does
    scores = batch.am_scores + batch.ngram_scores  # the float32 k2 scores
    ours, splits, arcs = shortest_paths(batch, scores)
    totals = total_scores(batch, scores, log_semiring=True)
    for index in range(len(lattices)):
        assert float(ours[index]) == pytest.approx(float(k2_best[index]), rel=1e-12, abs=1e-9)
        path = arcs[int(splits[index]):int(splits[index + 1])]
        _, words = select_rows(batch.word_splits, batch.word_ids, path)
        k2_path = best[index]
        k2_words = [w for w in k2_path.labels.tolist() if w > 0]
        if hasattr(k2_path, "aux_labels"):
            k2_words = [w for w in k2_path.aux_labels.tolist() if w > 0]
        assert words.tolist() == k2_words
        assert float(totals[index]) == pytest.approx(float(k2_total[index]), rel=1e-12, abs=1e-9)


def test_random_lattices_match_k2():
    generator = torch.Generator().manual_seed(2024)
    _compare([_random_lattice(generator, index) for index in range(200)])


def _sorted_by_source(lattice: Lattice) -> Lattice:
    order = torch.sort(lattice.src, stable=True).indices
    word_splits, word_ids = select_rows(lattice.word_splits, lattice.word_ids, order)
    return dataclasses.replace(
        lattice, src=lattice.src[order], dst=lattice.dst[order], labels=lattice.labels[order],
        word_splits=word_splits, word_ids=word_ids, am_scores=lattice.am_scores[order],
        ngram_scores=lattice.ngram_scores[order])


def test_dev_lattices_match_k2():
    slf = pytest.importorskip("rescorer.formats.slf")
    paths = sorted(DEV_LATTICES.glob("*.slf.gz"))[:20]
    if not paths:
        pytest.skip(f"no DEV lattices under {DEV_LATTICES}")
    lattices = [_sorted_by_source(lattice) for path in paths
                for lattice in slf.read_slf(path)[0]]
    _compare(lattices)
