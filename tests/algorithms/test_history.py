"""History expansion against a direct per-path computation on random DAGs."""
import random
from typing import Dict, List, Tuple

import pytest
import torch

from lattice_builders import (DEVICES, all_paths, batch_of, make_lattice, mixed_batch,
                              random_lattice)
from rescorer.algorithms.history import ExpandedBatch, expand_histories
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import ConfigError, LatticeError
from rescorer.lattice.fsavec import splits_from_counts

BOS, EOS = 100, 101


def _tokens(token_lists: List[List[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    counts = torch.tensor([len(t) for t in token_lists], dtype=torch.int64)
    return splits_from_counts(counts), torch.tensor([x for t in token_lists for x in t],
                                                    dtype=torch.int64)


def _history(expanded: ExpandedBatch, row: int) -> Tuple[int, ...]:
    return tuple(expanded.histories[row, : int(expanded.history_lengths[row])].tolist())


def _arc_queries(expanded: ExpandedBatch) -> Dict[int, List[Tuple[Tuple[int, ...], int]]]:
    per_arc: Dict[int, List[Tuple[Tuple[int, ...], int]]] = {}
    for row, token, arc in zip(expanded.query_history.tolist(), expanded.query_token.tolist(),
                               expanded.query_arc.tolist()):
        per_arc.setdefault(arc, []).append((_history(expanded, row), token))
    return per_arc


def _expand(lattice, splits, tokens, window, bos_id=BOS, eos_id=EOS, max_arcs=10**6):
    """Expand one lattice alone (a batch of one)."""
    return expand_histories(LevelSchedule.of(batch_of(lattice)), splits, tokens, window,
                            bos_id, eos_id, max_arcs)


def test_hand_lattice_windows_one_and_two():
    # Two arcs 0->1 with tokens "7 9" and "8 9", then the final arc 1->2.
    # K=1: both reach state 1 with history [9] -> merged, one final arc.
    # K=2: histories [7 9] and [8 9] differ -> two copies of state 1 and of the final arc.
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (0, 1, [2], 0.0), (1, 2, [], 0.0)])
    splits, tokens = _tokens([[7, 9], [8, 9], []])
    expanded = _expand(lattice, splits, tokens, window=1, max_arcs=100)
    assert expanded.batch.num_states == 3  # start, (1, [9]), final
    assert expanded.orig_arc.tolist() == [0, 1, 2]
    assert expanded.batch.src.tolist() == [0, 0, 1]
    assert expanded.batch.dst.tolist() == [1, 1, 2]
    assert _arc_queries(expanded) == {0: [((BOS,), 7), ((7,), 9)], 1: [((BOS,), 8), ((8,), 9)],
                                      2: [((9,), EOS)]}
    assert expanded.histories.tolist() == [[7], [8], [9], [BOS]]
    expanded = _expand(lattice, splits, tokens, window=2, max_arcs=100)
    assert expanded.batch.num_states == 4
    assert expanded.orig_arc.tolist() == [0, 1, 2, 2]
    assert expanded.batch.dst.tolist() == [1, 2, 3, 3]
    assert _arc_queries(expanded) == {0: [((BOS,), 7), ((BOS, 7), 9)],
                                      1: [((BOS,), 8), ((BOS, 8), 9)],
                                      2: [((7, 9), EOS)], 3: [((8, 9), EOS)]}
    # Sorted as right-aligned rows (PAD first), returned left-aligned with 0 padding.
    assert expanded.histories.tolist() == [[BOS, 0], [7, 9], [8, 9], [BOS, 7], [BOS, 8]]
    assert expanded.history_lengths.tolist() == [1, 2, 2, 2, 2]


def _walk(expanded: ExpandedBatch, path: List[int], queries, out_arcs, window: int,
          tokens_of):
    """Follow an original path in the expanded lattice, checking histories and queries."""
    state, sentence, visited = 0, [BOS], []
    for orig in path:
        assert _history(expanded, int(expanded.state_history[state])) == tuple(sentence[-window:])
        (arc,) = out_arcs[(state, orig)]  # exactly one expanded copy of the arc
        expected = []
        for token in tokens_of[orig]:
            expected.append((tuple(sentence[-window:]), token))
            sentence.append(token)
        state = int(expanded.batch.dst[arc])
        if state == expanded.batch.num_states - 1:
            expected.append((tuple(sentence[-window:]), EOS))
        assert queries.get(arc, []) == expected
        visited.append(arc)
    assert state == expanded.batch.num_states - 1
    return tuple(visited)


@pytest.mark.parametrize("window", [1, 2, 3, 20])
def test_random_dags_against_direct_histories(window):
    rng = random.Random(99 + window)
    for _ in range(80):
        lattice, _ = random_lattice(rng, final_words=True)
        tokens_of = [[rng.randint(1, 3) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
                     for _ in range(lattice.num_arcs)]
        splits, tokens = _tokens(tokens_of)
        expanded = _expand(lattice, splits, tokens, window)
        queries = _arc_queries(expanded)
        out_arcs = {}  # (expanded source, original arc) -> expanded arcs
        for arc, key in enumerate(zip(expanded.batch.src.tolist(), expanded.orig_arc.tolist())):
            out_arcs.setdefault(key, []).append(arc)
        paths = all_paths(lattice)
        walked = {_walk(expanded, p, queries, out_arcs, window, tokens_of) for p in paths}
        expanded_paths = all_paths(expanded.batch.lattice(0))
        assert len(walked) == len(paths) == len(expanded_paths)  # one expanded path each
        assert walked == {tuple(p) for p in expanded_paths}
        # States are exactly the reachable (state, history) pairs, each once.
        pairs = set()
        for path in paths:
            sentence, state = [BOS], 0
            for orig in path:
                pairs.add((state, tuple(sentence[-window:])))
                sentence += tokens_of[orig]
                state = int(lattice.dst[orig])
        states = [(int(s), _history(expanded, int(h))) for s, h in
                  zip(expanded.orig_state[:-1], expanded.state_history[:-1])]
        assert sorted(states) == sorted(pairs)
        assert int(expanded.orig_state[-1]) == lattice.num_states - 1
        assert torch.unique(expanded.histories, dim=0).shape == expanded.histories.shape
        assert bool((expanded.schedule.levels[expanded.batch.src] < expanded.schedule.levels[expanded.batch.dst]).all())
        assert torch.equal(expanded.batch.am_scores, lattice.am_scores[expanded.orig_arc])


def test_max_arcs_limit_is_per_lattice():
    rng = random.Random(5)
    lattice, _ = random_lattice(rng, max_states=7)
    while lattice.num_states < 6:
        lattice, _ = random_lattice(rng, max_states=7)
    small, _ = make_lattice([(0, 1, [1], 0.0), (1, 2, [], 0.0)])
    token_lists = [[arc % 3 + 1] for arc in range(lattice.num_arcs)]
    splits, tokens = _tokens(token_lists)
    needed = _expand(lattice, splits, tokens, 3).batch.num_arcs
    assert _expand(lattice, splits, tokens, 3, max_arcs=needed).over_limit == {}
    both_splits, both_tokens = _tokens([[1], []] + token_lists + [[1], []])
    schedule = LevelSchedule.of(batch_of(small, lattice, small))
    expanded = expand_histories(schedule, both_splits, both_tokens, 3, BOS, EOS, needed - 1)
    assert list(expanded.over_limit) == [1]
    error = expanded.over_limit[1]
    assert f"more than {needed - 1} arcs" in error.message and error.utt_id == "utt-1"
    assert expanded.source_utts.tolist() == [0, 2]
    assert expanded.batch.utt_ids == ["utt-0", "utt-2"]
    assert expanded.batch.num_arcs == 4 and expanded.query_arc.tolist() == [0, 1, 2, 3]
    with pytest.raises(ConfigError):
        _expand(lattice, splits, tokens, 0)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_invariance(device):
    """One lattice expanded alone and inside 64 mixed ones: same arcs, states and queries."""
    rng = random.Random(31)
    for _ in range(6):
        lattice, _ = random_lattice(rng, final_words=True)
        mixed, index = mixed_batch(rng, lattice, final_words=True)
        token_lists = [[int(w) % 3 + 1] * (int(w) % 2) for w in mixed.labels.tolist()]
        splits, tokens = _tokens(token_lists)
        first = int(mixed.arc_splits[index])
        own_splits, own_tokens = _tokens(token_lists[first:int(mixed.arc_splits[index + 1])])
        one = expand_histories(LevelSchedule.of(batch_of(lattice, device=device)),
                               own_splits.to(device), own_tokens.to(device), 3, BOS, EOS, 10**6)
        many = expand_histories(LevelSchedule.of(mixed.to(torch.device(device))),
                                splits.to(device), tokens.to(device), 3, BOS, EOS, 10**6)
        alone, inside = one.batch.lattice(0), many.batch.lattice(index)
        for name in ("src", "dst", "labels", "word_ids", "word_splits", "am_scores"):
            assert torch.equal(getattr(alone, name), getattr(inside, name)), name
        arcs = slice(int(many.batch.arc_splits[index]), int(many.batch.arc_splits[index + 1]))
        assert torch.equal(many.orig_arc[arcs] - first, one.orig_arc)
        assert int(many.utt_histories[index]) == int(one.utt_histories[0])
        assert _queries_of(many, arcs) == _queries_of(one, slice(0, one.batch.num_arcs))


def _queries_of(expanded: ExpandedBatch, arcs: slice):
    """(local arc, history, token) of the queries of the arcs ``arcs``."""
    return [(arc - arcs.start, _history(expanded, row), token) for row, token, arc in
            zip(expanded.query_history.tolist(), expanded.query_token.tolist(),
                expanded.query_arc.tolist()) if arcs.start <= arc < arcs.stop]


def test_cyclic_lattice_is_rejected_before_expansion():
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (1, 2, [1], 0.0), (2, 1, [1], 0.0),
                               (2, 3, [], 0.0)], utt_id="loop")
    with pytest.raises(LatticeError, match="cycle"):
        LevelSchedule.of(batch_of(lattice))
