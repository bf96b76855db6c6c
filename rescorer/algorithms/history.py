"""History expansion: the lattice whose states are (state, last K LM inputs).

A window-K LM (Jacobi with K iterations) scores a token from the last K inputs
of its sentence only. Splitting every lattice state by that history (and merging
equal pairs) gives a finite lattice on which the LM scores of every arc are
exact, and lists the LM queries needed to score it. All lattices of a batch are
expanded together, one destination level at a time (states are batch-global,
so (state, history) pairs never mix lattices); the arc limit holds per lattice.

Histories are kept as fixed-width rows of K token ids, *right*-aligned with
``PAD`` on the left while the sentence is shorter than K, so consuming a token
is a shift: ``row[1:] + [token]``. The start state's history is ``[bos]``.

::

    K = 2:   start [PAD, bos] --"a b"--> [a, b] --"c"--> [b, c] --final--> (one state)
    queries:  (bos | a) ([bos a] | b)    ([a b] | c)    ([b c] | eos)
"""
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import expand_ranges, select_rows, unique_rows
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import ConfigError, ExpansionLimitError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import splits_from_counts

PAD = -1  # filler of right-aligned history rows (never a token id)


@dataclass(frozen=True)
class ExpandedBatch:
    """History-expanded lattices and the LM queries that score their arcs.

    Attributes:
      schedule:
        The ``LevelSchedule`` of the expanded batch (``schedule.batch``: U'
        lattices, S' states, A' arcs; labels, words and scores copied from the
        original arcs; each lattice's last state its one final state; arcs
        sorted by source state).
      source_utts:
        1-D int64 (U',), the input lattice of each expanded one.
      over_limit:
        Input lattice index -> ``ExpansionLimitError`` for the lattices that
        needed more than ``max_arcs`` arcs (absent from the expanded batch).
      orig_arc:
        1-D int64 (A',), the input batch arc of each expanded arc.
      orig_state:
        1-D int64 (S',), the input batch state of each expanded state.
      state_history:
        1-D int64 (S',), row of ``histories`` of each state; -1 for final states.
      histories:
        2-D int64 (N, K), the unique histories of the batch, left-aligned, padded with 0.
      history_lengths:
        1-D int64 (N,), the length (1..K) of each history.
      utt_histories:
        1-D int64 (U',), how many distinct histories each lattice uses.
      query_history, query_token, query_arc:
        1-D int64 (Q,) each: expanded arc ``query_arc[q]`` receives
        ``log P(query_token[q] | histories[query_history[q]])``; sorted by arc,
        then token position (an arc's eos query last).
    """

    schedule: LevelSchedule
    source_utts: Tensor
    over_limit: Dict[int, ExpansionLimitError]
    orig_arc: Tensor
    orig_state: Tensor
    state_history: Tensor
    histories: Tensor
    history_lengths: Tensor
    utt_histories: Tensor
    query_history: Tensor
    query_token: Tensor
    query_arc: Tensor

    @property
    def batch(self) -> LatticeBatch:
        """The expanded lattices."""
        return self.schedule.batch


class _Growing:
    """A 2-D int64 buffer grown by doubling, for per-state history rows."""

    def __init__(self, rows: Tensor) -> None:
        self.data = torch.empty(max(1024, rows.shape[0]), rows.shape[1], dtype=torch.int64,
                                device=rows.device)
        self.data[: rows.shape[0]] = rows
        self.size = rows.shape[0]

    def append(self, rows: Tensor) -> None:
        needed = self.size + rows.shape[0]
        if needed > self.data.shape[0]:
            bigger = torch.empty(max(needed, 2 * self.data.shape[0]), self.data.shape[1],
                                 dtype=torch.int64, device=self.data.device)
            bigger[: self.size] = self.data[: self.size]
            self.data = bigger
        self.data[self.size:needed] = rows
        self.size = needed


class _ExpandedStates:
    """Expanded states made so far, each a unique (original state, history row).

    Those of original state s are numbered ``first[s] .. first[s] + count[s] - 1``
    (contiguous, because each level's new states are sorted by original state).
    The start state of lattice u is expanded state u, with history [bos].
    """

    def __init__(self, batch: LatticeBatch, window: int, bos_id: int) -> None:
        device = batch.device
        self.first = torch.zeros(batch.num_states, dtype=torch.int64, device=device)
        self.count = torch.zeros(batch.num_states, dtype=torch.int64, device=device)
        starts = batch.start_states
        self.first[starts] = torch.arange(batch.num_utts, device=device)
        self.count[starts] = 1
        start_row = torch.full((batch.num_utts, window), PAD, dtype=torch.int64, device=device)
        start_row[:, -1] = bos_id
        self.rows = _Growing(start_row)
        self.orig = [starts]

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


Queries = List[Tuple[Tensor, Tensor, Tensor]]  # (history rows, next tokens, expanded arc ids)


def _consume_tokens(
    rows: Tensor, arcs: Tensor, token_splits: Tensor, tokens: Tensor, first_arc: int,
    queries: Queries,
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
    columns = torch.arange(width, device=rows.device).unsqueeze(0)  # (1, K)
    lengths = (rows != PAD).sum(dim=1)  # (N,)
    shifted = torch.gather(rows, 1, (columns + (width - lengths).unsqueeze(1)).clamp(max=width - 1))
    valid = columns < lengths.unsqueeze(1)
    return torch.where(valid, shifted, torch.zeros_like(shifted)), lengths


def _check_limit(
    batch: LatticeBatch, used: Tensor, over: Tensor, max_arcs: int, window: int, level: int,
    num_levels: int, errors: Dict[int, ExpansionLimitError],
) -> None:
    """Mark the lattices whose arc count just passed ``max_arcs`` (in ``over`` and ``errors``)."""
    if not errors and not bool((used > max_arcs).any()):
        return  # the usual level: no lattice over, none before
    newly = ((used > max_arcs) & ~over).nonzero().squeeze(1).tolist()
    for utt in newly:
        errors[utt] = ExpansionLimitError(
            f"history expansion (window {window}) needs more than {max_arcs} arcs "
            f"(reached {int(used[utt])} at level {level} of {num_levels - 1}); "
            "prune with a tighter beam", utt_id=batch.utt_ids[utt])
        over[utt] = True


def expand_histories(
    schedule: LevelSchedule, arc_token_splits: Tensor, arc_tokens: Tensor, window: int,
    bos_id: int, eos_id: int, max_arcs: int,
) -> ExpandedBatch:
    """Split states by their last ``window`` LM inputs, in every lattice; list the LM queries.

    Args:
      schedule:
        The ``LevelSchedule`` of the lattices (ideally connected: dead ends are
        expanded too).
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
        Per lattice: a lattice whose expansion needs more arcs is left out and
        reported in ``over_limit`` (the others are expanded all the same).

    Returns:
      The ``ExpandedBatch``: one expanded path per original path, each expanded
      state a unique (original state, history) pair, all arcs into a lattice's
      final state merged into one final state.

    Raises:
      ConfigError: window < 1.
    """
    batch = schedule.batch
    if window < 1:
        raise ConfigError(f"history window must be >= 1 (got {window})")
    assert arc_token_splits.numel() == batch.num_arcs + 1, "token splits do not fit the arcs"
    device = batch.device
    is_final = torch.zeros(batch.num_states, dtype=torch.bool, device=device)
    is_final[batch.final_states] = True
    arc_utt = batch.arc_utt
    states = _ExpandedStates(batch, window, bos_id)
    arc_parts: Queries = []  # (orig arc, exp src, exp dst)
    queries: Queries = []
    used = torch.zeros(batch.num_utts, dtype=torch.int64, device=device)  # arcs per lattice
    over = torch.zeros(batch.num_utts, dtype=torch.bool, device=device)
    errors: Dict[int, ExpansionLimitError] = {}
    num_arcs = 0
    into_arcs, _ = schedule.into
    for level in range(1, schedule.num_levels):
        arcs = into_arcs[level]  # original arcs into this level, by destination
        copies = states.count[batch.src[arcs]]  # (level arcs,) histories at each source
        used.index_add_(0, arc_utt[arcs], copies)
        _check_limit(batch, used, over, max_arcs, window, level, schedule.num_levels, errors)
        if errors:
            copies = torch.where(over[arc_utt[arcs]], torch.zeros_like(copies), copies)
        total = int(copies.sum())
        if total == 0:
            continue
        arc_ids = torch.repeat_interleave(arcs, copies, output_size=total)  # (E,) original arc
        exp_src = expand_ranges(states.first[batch.src[arcs]], copies)  # (E,)
        rows = _consume_tokens(states.rows.data[exp_src], arc_ids, arc_token_splits,
                               arc_tokens, num_arcs, queries)  # (E, K)
        targets = batch.dst[arc_ids]
        into_final = is_final[targets].nonzero().squeeze(1)
        queries.append((rows[into_final], torch.full_like(into_final, eos_id),
                        num_arcs + into_final))
        exp_dst = torch.full_like(arc_ids, -1)  # -1: the final state, numbered last
        inner = (~is_final[targets]).nonzero().squeeze(1)
        if inner.numel() > 0:
            exp_dst[inner] = states.add(targets[inner], rows[inner])
        arc_parts.append((arc_ids, exp_src, exp_dst))
        num_arcs += total
    return _assemble(batch, states, arc_parts, queries, over, errors)


def _renumber_states(batch: LatticeBatch, states: _ExpandedStates, rank: Tensor,
                     num_kept: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Group the made states by lattice (creation order inside), finals last.

    Returns:
      (state_splits (U'+1,), made ids in new order (S'-U',), new id of each made state).
    """
    device = batch.device
    orig_state = torch.cat(states.orig)  # (made,) creation order
    made_rank = rank[batch.state_utt[orig_state]]  # (made,) -1: lattice over the limit
    kept = (made_rank >= 0).nonzero().squeeze(1)
    ordered = kept[torch.sort(made_rank[kept], stable=True).indices]  # (S'-U',) by lattice
    per_utt = torch.bincount(made_rank[kept], minlength=num_kept)  # (U',)
    state_splits = splits_from_counts((per_utt + 1).cpu()).to(device)  # +1: the final state
    new_id = torch.full((orig_state.numel(),), -1, dtype=torch.int64, device=device)
    new_id[ordered] = torch.arange(ordered.numel(), device=device) + made_rank[ordered]
    return state_splits, ordered, new_id


def _assemble(
    batch: LatticeBatch, states: _ExpandedStates, arc_parts: Queries, queries: Queries,
    over: Tensor, errors: Dict[int, ExpansionLimitError],
) -> ExpandedBatch:
    """Renumber states and arcs lattice by lattice, dedupe histories, build the batch."""
    device = batch.device
    source_utts = (~over).nonzero().squeeze(1)  # (U',)
    num_kept = source_utts.numel()
    rank = torch.full((batch.num_utts,), -1, dtype=torch.int64, device=device)
    rank[source_utts] = torch.arange(num_kept, device=device)
    state_splits, ordered, new_id = _renumber_states(batch, states, rank, num_kept)
    finals = state_splits[1:] - 1  # (U',)
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    arc_parts = arc_parts or [(empty, empty, empty)]
    queries = queries or [(states.rows.data[:0], empty, empty)]
    orig_arc, src, dst = (torch.cat([part[i] for part in arc_parts]) for i in range(3))
    arc_rank = rank[batch.arc_utt[orig_arc]]  # (made arcs,)
    kept_arcs = (arc_rank >= 0).nonzero().squeeze(1)
    new_src = new_id[src[kept_arcs]]
    made_dst = dst[kept_arcs]
    new_dst = torch.where(made_dst < 0, finals[arc_rank[kept_arcs]], new_id[made_dst.clamp(min=0)])
    order = torch.sort(new_src, stable=True).indices  # (A',) by source: lattice by lattice
    position = torch.full((orig_arc.numel(),), -1, dtype=torch.int64, device=device)
    position[kept_arcs[order]] = torch.arange(order.numel(), device=device)
    orig_arc = orig_arc[kept_arcs[order]]
    query_rows, query_token, query_arc = (torch.cat([q[i] for q in queries]) for i in range(3))
    query_arc = position[query_arc]
    live = (query_arc >= 0).nonzero().squeeze(1)
    live = live[torch.sort(query_arc[live], stable=True).indices]  # by arc, token order kept
    state_rows = states.rows.data[ordered]  # (S'-U', K) non-final states in new order
    histories, inverse = unique_rows(torch.cat([state_rows, query_rows[live]]))
    num_states = int(state_splits[-1])
    state_history = torch.full((num_states,), -1, dtype=torch.int64, device=device)
    state_history[new_id[ordered]] = inverse[: ordered.numel()]
    orig_state = batch.final_states[source_utts][torch.bucketize(
        torch.arange(num_states, device=device), state_splits[1:], right=True)]
    orig_state[new_id[ordered]] = torch.cat(states.orig)[ordered]
    row_utt = torch.cat([rank[batch.state_utt[orig_state[new_id[ordered]]]],
                         rank[batch.arc_utt[orig_arc[query_arc[live]]]]])
    pairs = torch.unique(row_utt * max(histories.shape[0], 1) + inverse)
    utt_histories = torch.bincount(pairs // max(histories.shape[0], 1), minlength=num_kept)
    histories, lengths = _left_align(histories)
    word_splits, word_ids = select_rows(batch.word_splits, batch.word_ids, orig_arc)
    expanded = LatticeBatch(
        utt_ids=[batch.utt_ids[index] for index in source_utts.tolist()],
        state_splits=state_splits,
        arc_splits=splits_from_counts(torch.bincount(
            rank[batch.arc_utt[orig_arc]], minlength=num_kept).cpu()).to(device),
        src=new_src[order], dst=new_dst[order], labels=batch.labels[orig_arc],
        word_splits=word_splits, word_ids=word_ids, am_scores=batch.am_scores[orig_arc],
        ngram_scores=batch.ngram_scores[orig_arc],
        arc_extras={name: value[orig_arc] for name, value in batch.arc_extras.items()})
    return ExpandedBatch(
        schedule=LevelSchedule.of(expanded), source_utts=source_utts, over_limit=errors,
        orig_arc=orig_arc, orig_state=orig_state, state_history=state_history,
        histories=histories, history_lengths=lengths, utt_histories=utt_histories,
        query_history=inverse[ordered.numel():], query_token=query_token[live],
        query_arc=query_arc[live])
