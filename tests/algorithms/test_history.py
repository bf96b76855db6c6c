"""History expansion against a direct per-path computation on random DAGs."""
import random
from typing import Dict, List, Tuple

import pytest
import torch

from lattice_builders import all_paths, make_lattice, random_lattice
from rescorer.algorithms.history import ExpandedLattice, expand_histories
from rescorer.errors import ConfigError, ExpansionLimitError, LatticeError
from rescorer.lattice.fsavec import splits_from_counts

BOS, EOS = 100, 101


def _tokens(token_lists: List[List[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    counts = torch.tensor([len(t) for t in token_lists], dtype=torch.int64)
    return splits_from_counts(counts), torch.tensor([x for t in token_lists for x in t],
                                                    dtype=torch.int64)


def _history(expanded: ExpandedLattice, row: int) -> Tuple[int, ...]:
    return tuple(expanded.histories[row, : int(expanded.history_lengths[row])].tolist())


def _arc_queries(expanded: ExpandedLattice) -> Dict[int, List[Tuple[Tuple[int, ...], int]]]:
    per_arc: Dict[int, List[Tuple[Tuple[int, ...], int]]] = {}
    for row, token, arc in zip(expanded.query_history.tolist(), expanded.query_token.tolist(),
                               expanded.query_arc.tolist()):
        per_arc.setdefault(arc, []).append((_history(expanded, row), token))
    return per_arc


def test_hand_lattice_windows_one_and_two():
    # Two arcs 0->1 with tokens "7 9" and "8 9", then the final arc 1->2.
    # K=1: both reach state 1 with history [9] -> merged, one final arc.
    # K=2: histories [7 9] and [8 9] differ -> two copies of state 1 and of the final arc.
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (0, 1, [2], 0.0), (1, 2, [], 0.0)])
    splits, tokens = _tokens([[7, 9], [8, 9], []])
    expanded = expand_histories(lattice, splits, tokens, window=1, bos_id=BOS, eos_id=EOS,
                                max_arcs=100)
    assert expanded.lattice.num_states == 3  # start, (1, [9]), final
    assert expanded.orig_arc.tolist() == [0, 1, 2]
    assert expanded.lattice.src.tolist() == [0, 0, 1]
    assert expanded.lattice.dst.tolist() == [1, 1, 2]
    assert _arc_queries(expanded) == {0: [((BOS,), 7), ((7,), 9)], 1: [((BOS,), 8), ((8,), 9)],
                                      2: [((9,), EOS)]}
    assert expanded.histories.tolist() == [[7], [8], [9], [BOS]]
    expanded = expand_histories(lattice, splits, tokens, window=2, bos_id=BOS, eos_id=EOS,
                                max_arcs=100)
    assert expanded.lattice.num_states == 4
    assert expanded.orig_arc.tolist() == [0, 1, 2, 2]
    assert expanded.lattice.dst.tolist() == [1, 2, 3, 3]
    assert _arc_queries(expanded) == {0: [((BOS,), 7), ((BOS, 7), 9)],
                                      1: [((BOS,), 8), ((BOS, 8), 9)],
                                      2: [((7, 9), EOS)], 3: [((8, 9), EOS)]}
    # Sorted as right-aligned rows (PAD first), returned left-aligned with 0 padding.
    assert expanded.histories.tolist() == [[BOS, 0], [7, 9], [8, 9], [BOS, 7], [BOS, 8]]
    assert expanded.history_lengths.tolist() == [1, 2, 2, 2, 2]


def _walk(expanded: ExpandedLattice, path: List[int], queries, out_arcs, window: int,
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
        state = int(expanded.lattice.dst[arc])
        if state == expanded.lattice.num_states - 1:
            expected.append((tuple(sentence[-window:]), EOS))
        assert queries.get(arc, []) == expected
        visited.append(arc)
    assert state == expanded.lattice.num_states - 1
    return tuple(visited)


@pytest.mark.parametrize("window", [1, 2, 3, 20])
def test_random_dags_against_direct_histories(window):
    rng = random.Random(99 + window)
    for _ in range(80):
        lattice, _ = random_lattice(rng, final_words=True)
        tokens_of = [[rng.randint(1, 3) for _ in range(rng.choice([0, 1, 1, 2, 3]))]
                     for _ in range(lattice.num_arcs)]
        splits, tokens = _tokens(tokens_of)
        expanded = expand_histories(lattice, splits, tokens, window, BOS, EOS, max_arcs=10**6)
        queries = _arc_queries(expanded)
        out_arcs = {}  # (expanded source, original arc) -> expanded arcs
        for arc, key in enumerate(zip(expanded.lattice.src.tolist(), expanded.orig_arc.tolist())):
            out_arcs.setdefault(key, []).append(arc)
        paths = all_paths(lattice)
        walked = {_walk(expanded, p, queries, out_arcs, window, tokens_of) for p in paths}
        expanded_paths = all_paths(expanded.lattice)
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
        assert bool((expanded.levels[expanded.lattice.src] < expanded.levels[expanded.lattice.dst]).all())
        assert torch.equal(expanded.lattice.am_scores, lattice.am_scores[expanded.orig_arc])


def test_max_arcs_limit():
    rng = random.Random(5)
    lattice, _ = random_lattice(rng, max_states=7)
    while lattice.num_states < 6:
        lattice, _ = random_lattice(rng, max_states=7)
    splits, tokens = _tokens([[arc % 3 + 1] for arc in range(lattice.num_arcs)])
    needed = expand_histories(lattice, splits, tokens, 3, BOS, EOS, 10**6).lattice.num_arcs
    expand_histories(lattice, splits, tokens, 3, BOS, EOS, max_arcs=needed)
    with pytest.raises(ExpansionLimitError, match=f"more than {needed - 1} arcs") as info:
        expand_histories(lattice, splits, tokens, 3, BOS, EOS, max_arcs=needed - 1)
    assert info.value.utt_id == lattice.utt_id
    with pytest.raises(ConfigError):
        expand_histories(lattice, splits, tokens, 0, BOS, EOS, 10)


def test_cyclic_lattice_raises():
    lattice, _ = make_lattice([(0, 1, [1], 0.0), (1, 2, [1], 0.0), (2, 1, [1], 0.0),
                               (2, 3, [], 0.0)], utt_id="loop")
    splits, tokens = _tokens([[1]] * 4)
    with pytest.raises(LatticeError, match="cycle"):
        expand_histories(lattice, splits, tokens, 2, BOS, EOS, 100)
