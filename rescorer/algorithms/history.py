"""History expansion: the lattice whose states are (state, last K LM inputs).

A window-K LM (Jacobi with K iterations) scores a token from the last K inputs
of its sentence only. Splitting every lattice state by that history (and merging
equal pairs) gives a finite lattice on which the LM scores of every arc are
exact, and lists the LM queries needed to score it.

Histories are kept as fixed-width rows of K token ids, *right*-aligned with
``PAD`` on the left while the sentence is shorter than K, so consuming a token
is a shift: ``row[1:] + [token]``. The start state's history is ``[bos]``.

::

    K = 2:   start [PAD, bos] --"a b"--> [a, b] --"c"--> [b, c] --final--> (one state)
    queries:  (bos | a) ([bos a] | b)    ([a b] | c)    ([b c] | eos)
"""
from dataclasses import dataclass, replace
from typing import List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import expand_ranges, select_rows, unique_rows
from rescorer.algorithms.topsort import level_schedule, topological_levels
from rescorer.errors import ConfigError, ExpansionLimitError
from rescorer.lattice.fsavec import Lattice

PAD = -1  # filler of right-aligned history rows (never a token id)


@dataclass(frozen=True)
class ExpandedLattice:
    """A history-expanded lattice and the LM queries that score its arcs.

    Attributes:
      lattice:
        The expanded lattice (S' states, A' arcs); labels, words and scores are
        copied from the original arcs; state S'-1 is the one final state.
      orig_arc:
        1-D int64 (A',), the original arc of each expanded arc.
      orig_state:
        1-D int64 (S',), the original state of each expanded state.
      state_history:
        1-D int64 (S',), row of ``histories`` of each state; -1 for the final state.
      levels:
        1-D int64 (S',), topological levels (the original states' levels).
      histories:
        2-D int64 (N, K), the unique histories, left-aligned, padded with 0.
      history_lengths:
        1-D int64 (N,), the length (1..K) of each history.
      query_history, query_token, query_arc:
        1-D int64 (Q,) each: expanded arc ``query_arc[q]`` receives
        ``log P(query_token[q] | histories[query_history[q]])``; sorted by arc,
        then token position (an arc's eos query last).
    """

    lattice: Lattice
    orig_arc: Tensor
    orig_state: Tensor
    state_history: Tensor
    levels: Tensor
    histories: Tensor
    history_lengths: Tensor
    query_history: Tensor
    query_token: Tensor
    query_arc: Tensor


class _Growing:
    """A 2-D int64 buffer grown by doubling, for per-state history rows."""

    def __init__(self, width: int) -> None:
        self.data = torch.empty(1024, width, dtype=torch.int64)
        self.size = 0

    def append(self, rows: Tensor) -> None:
        needed = self.size + rows.shape[0]
        if needed > self.data.shape[0]:
            bigger = torch.empty(max(needed, 2 * self.data.shape[0]), self.data.shape[1],
                                 dtype=torch.int64)
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size:needed] = rows
        self.size = needed


class _ExpandedStates:
    """Expanded states made so far, each a unique (original state, history row).

    Those of original state s are numbered ``first[s] .. first[s] + count[s] - 1``
    (contiguous, because each level's new states are sorted by original state).
    """

    def __init__(self, num_states: int, window: int, bos_id: int) -> None:
        self.first = torch.zeros(num_states, dtype=torch.int64)
        self.count = torch.zeros(num_states, dtype=torch.int64)
        self.count[0] = 1  # the start state with history [bos]
        self.rows = _Growing(window)
        self.rows.append(torch.tensor([[PAD] * (window - 1) + [bos_id]]))
        self.orig = [torch.zeros(1, dtype=torch.int64)]

    def add(self, states: Tensor, rows: Tensor) -> Tensor:
        """Ids of the pairs (states[i], rows[i]), creating the new ones.

        All ``states`` must be of one level, whose states get no other pairs later.
        """
        pairs, inverse = unique_rows(torch.cat([states.unsqueeze(1), rows], dim=1))
        ids = self.rows.size + inverse
        targets, per_state = torch.unique_consecutive(pairs[:, 0], return_counts=True)
        self.first[targets] = self.rows.size + torch.cumsum(per_state, 0) - per_state
        self.count[targets] = per_state
        self.rows.append(pairs[:, 1:])
        self.orig.append(pairs[:, 0])
        return ids


def _consume_tokens(
    rows: Tensor, arcs: Tensor, token_splits: Tensor, tokens: Tensor, first_arc: int,
    queries: List[Tuple[Tensor, Tensor, Tensor]],
) -> Tensor:
    """Feed each expanded arc's tokens into its history row; record the queries.

    Args:
      rows: 2-D int64 (E, K), history rows at the arcs' sources (modified copy).
      arcs: 1-D int64 (E,), original arc of each expanded arc.
      token_splits, tokens: the ragged [arc][token] LM tokens.
      first_arc: expanded id of the first of these E arcs.
      queries: list receiving (rows, tokens, expanded arc ids) per token position.

    Returns:
      2-D int64 (E, K), the history rows after the arcs' tokens.
    """
    counts = token_splits[arcs + 1] - token_splits[arcs]  # (E,)
    starts = token_splits[arcs]
    rows = rows.clone()
    for position in range(int(counts.max()) if counts.numel() else 0):  # tokens per arc
        active = (counts > position).nonzero().squeeze(1)
        next_tokens = tokens[starts[active] + position]  # (E_j,)
        queries.append((rows[active], next_tokens, first_arc + active))
        rows[active] = torch.cat([rows[active, 1:], next_tokens.unsqueeze(1)], dim=1)
    return rows


def _left_align(rows: Tensor) -> Tuple[Tensor, Tensor]:
    """Right-aligned PAD rows (N, K) -> left-aligned 0-padded rows and lengths (N,)."""
    width = rows.shape[1]
    lengths = (rows != PAD).sum(dim=1)  # (N,)
    columns = torch.arange(width).unsqueeze(0) + (width - lengths).unsqueeze(1)  # (N, K)
    shifted = torch.gather(rows, 1, columns.clamp(max=width - 1))
    valid = torch.arange(width).unsqueeze(0) < lengths.unsqueeze(1)
    return torch.where(valid, shifted, torch.zeros_like(shifted)), lengths


def _unique_histories(
    state_rows: Tensor, queries: List[Tuple[Tensor, Tensor, Tensor]],
) -> Tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """Deduplicate the history rows of states and queries.

    Returns:
      (histories (N, K) right-aligned, state index (S'-1,), query history (Q,),
      query token (Q,), query arc (Q,)), queries sorted by arc, then position.
    """
    query_rows = torch.cat([rows for rows, _, _ in queries])  # (Q, K)
    query_token = torch.cat([tokens for _, tokens, _ in queries])
    query_arc = torch.cat([arcs for _, _, arcs in queries])
    histories, inverse = unique_rows(torch.cat([state_rows, query_rows]))
    order = torch.sort(query_arc, stable=True).indices  # keeps token order per arc
    query_history = inverse[state_rows.shape[0]:]
    return (histories, inverse[: state_rows.shape[0]], query_history[order],
            query_token[order], query_arc[order])


def expand_histories(
    lattice: Lattice, arc_token_splits: Tensor, arc_tokens: Tensor, window: int,
    bos_id: int, eos_id: int, max_arcs: int, levels: Optional[Tensor] = None,
) -> ExpandedLattice:
    """Split states by their last ``window`` LM inputs; list the LM queries.

    Args:
      lattice:
        The lattice (ideally connected: dead ends are expanded too).
      arc_token_splits:
        1-D int64 tensor of shape (A+1,), row splits of the ragged [arc][token]
        LM tokens (several per word for subword LMs, none on epsilon arcs).
      arc_tokens:
        1-D int64 tensor of shape (arc_token_splits[-1],), the LM token ids.
      window:
        K >= 1, the number of LM inputs a history keeps (bos included).
      bos_id, eos_id:
        The LM's sentence-start input and sentence-end target.
      max_arcs:
        Raise ``ExpansionLimitError`` as soon as the expansion needs more arcs.
      levels:
        Optional (S,) int64 topological levels of ``lattice``; computed if None.

    Returns:
      The ``ExpandedLattice``: one expanded path per original path, each
      expanded state a unique (original state, history) pair, all arcs into the
      original final state merged into one final state.

    Raises:
      ConfigError: window < 1.
      ExpansionLimitError: more than ``max_arcs`` expanded arcs.
      LatticeError: as ``topological_levels``.
    """
    if window < 1:
        raise ConfigError(f"history window must be >= 1 (got {window})", utt_id=lattice.utt_id)
    assert arc_token_splits.numel() == lattice.num_arcs + 1, "token splits do not fit the arcs"
    if levels is None:
        levels = topological_levels(lattice)
    final = lattice.num_states - 1
    states = _ExpandedStates(lattice.num_states, window, bos_id)
    arc_parts: List[Tuple[Tensor, Tensor, Tensor]] = []  # (orig arc, exp src, exp dst)
    queries: List[Tuple[Tensor, Tensor, Tensor]] = []
    num_arcs = 0
    order, splits = level_schedule(levels, lattice.dst)
    for level in range(1, len(splits) - 1):
        arcs = order[splits[level]:splits[level + 1]]  # original arcs into this level
        copies = states.count[lattice.src[arcs]]  # (level arcs,) histories at each source
        total = int(copies.sum())
        if num_arcs + total > max_arcs:
            raise ExpansionLimitError(
                f"history expansion (window {window}) needs more than {max_arcs} arcs "
                f"(reached {num_arcs + total} at level {level} of {len(splits) - 2}); "
                "prune with a tighter beam", utt_id=lattice.utt_id)
        arc_ids = torch.repeat_interleave(arcs, copies)  # (E,) original arc
        exp_src = expand_ranges(states.first[lattice.src[arcs]], copies)  # (E,)
        rows = _consume_tokens(states.rows.data[exp_src], arc_ids, arc_token_splits,
                               arc_tokens, num_arcs, queries)  # (E, K)
        targets = lattice.dst[arc_ids]
        into_final = (targets == final).nonzero().squeeze(1)
        queries.append((rows[into_final], torch.full_like(into_final, eos_id),
                        num_arcs + into_final))
        exp_dst = torch.full_like(arc_ids, -1)  # -1: the final state, numbered last
        inner = (targets != final).nonzero().squeeze(1)
        if inner.numel() > 0:
            exp_dst[inner] = states.add(targets[inner], rows[inner])
        arc_parts.append((arc_ids, exp_src, exp_dst))
        num_arcs += total
    return _assemble(lattice, levels, states, arc_parts, queries)


def _assemble(
    lattice: Lattice, levels: Tensor, states: _ExpandedStates,
    arc_parts: List[Tuple[Tensor, Tensor, Tensor]], queries: List[Tuple[Tensor, Tensor, Tensor]],
) -> ExpandedLattice:
    """Number the final state last and build the ExpandedLattice."""
    final_state = states.rows.size
    orig_arc = torch.cat([part[0] for part in arc_parts])  # (A',)
    src = torch.cat([part[1] for part in arc_parts])
    dst = torch.cat([part[2] for part in arc_parts])
    dst = torch.where(dst < 0, torch.full_like(dst, final_state), dst)
    histories, state_history, query_history, query_token, query_arc = _unique_histories(
        states.rows.data[:final_state], queries)
    histories, lengths = _left_align(histories)
    word_splits, word_ids = select_rows(lattice.word_splits, lattice.word_ids, orig_arc)
    expanded = replace(
        lattice, num_states=final_state + 1, src=src, dst=dst, labels=lattice.labels[orig_arc],
        word_splits=word_splits, word_ids=word_ids, am_scores=lattice.am_scores[orig_arc],
        ngram_scores=lattice.ngram_scores[orig_arc])
    orig_state = torch.cat(states.orig + [torch.tensor([lattice.num_states - 1])])
    return ExpandedLattice(
        lattice=expanded,
        orig_arc=orig_arc,
        orig_state=orig_state,
        state_history=torch.cat([state_history, torch.tensor([-1])]),
        levels=levels[orig_state],
        histories=histories,
        history_lengths=lengths,
        query_history=query_history,
        query_token=query_token,
        query_arc=query_arc,
    )
