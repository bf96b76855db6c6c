"""Topological levels of a whole ``LatticeBatch``, level schedules, arc selection.

Every other algorithm loops over topological *levels* of the batch (all states
of a level, in every lattice at once), never over lattices, states or arcs. A
state's level is the length of the longest path reaching it, so each arc goes
from a lower level to a strictly higher one, and the number of levels is that
of the deepest lattice::

    utt 0: 0 -> 1 -> 2          levels 0 1 2
    utt 1: 3 -> 4 -> 5 -> 6     levels 0 1 2 3     one sweep: 4 steps, not 3 + 4

Lattices with a problem (empty, arcs into the start, a cycle, no start->final
path) are reported per utterance, so the caller drops just those (``select``).
"""
from dataclasses import dataclass
from functools import cached_property
from typing import Dict, List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import expand_ranges, select_rows
from rescorer.errors import LatticeError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import splits_from_counts


def _out_splits(batch: LatticeBatch) -> Tensor:
    """(S+1,) int64 row splits of each state's out-arcs, as if arcs were sorted by source."""
    counts = torch.bincount(batch.src, minlength=batch.num_states)
    splits = torch.zeros(batch.num_states + 1, dtype=torch.int64, device=batch.device)
    torch.cumsum(counts, dim=0, out=splits[1:])
    return splits


def _out_arcs(batch: LatticeBatch) -> Tuple[Optional[Tensor], Tensor]:
    """CSR of out-arcs: (order or None when ``src`` is already sorted, (S+1,) splits)."""
    src, splits = batch.src, _out_splits(batch)
    if src.numel() < 2 or bool((src[1:] >= src[:-1]).all()):
        return None, splits  # k2 files and our own batches: arcs sorted by source
    return torch.sort(src, stable=True).indices, splits


@dataclass(frozen=True)
class _Reach:
    """What Kahn's pass learned about reachability.

    Attributes:
      reached:
        (S,) int64, 1 where a start state reaches the state; None when no state
        but the starts lacks incoming arcs (every state of an acyclic lattice is
        then reachable).
      into_start:
        (U,) bool, lattices whose start state has incoming arcs.
    """

    reached: Optional[Tensor]
    into_start: Tensor


@dataclass(frozen=True)
class _Levels:
    """A level assignment and what it yields (``_kahn`` or ``_state_batches``).

    Attributes:
      levels: (S,) int64 level of each state (-1 on or after a cycle).
      reach: the ``_Reach`` facts.
      states: L 1-D int64 tensors, the states of each level.
      order: (A',) int64, the out-arcs of level 0's states, then level 1's, ...
      order_dst: (A',) int64, their destination states.
      arc_sizes: L ints, the number of arcs of each level in ``order``.
    """

    levels: Tensor
    reach: _Reach
    states: List[Tensor]
    order: Tensor
    order_dst: Tensor
    arc_sizes: List[int]


def _kahn(batch: LatticeBatch) -> _Levels:
    """Kahn's algorithm over the whole batch, one frontier (= level) at a time: longest-path levels."""
    device, num_states = batch.device, batch.num_states
    src, dst = batch.src, batch.dst
    remaining = torch.bincount(dst, minlength=num_states)  # (S,) unprocessed in-arcs
    state_counts = batch.state_splits[1:] - batch.state_splits[:-1]  # (U,)
    starts = batch.start_states.clamp(max=max(num_states - 1, 0))
    into_start = (remaining[starts] > 0) & (state_counts > 0) if num_states else state_counts > 0
    levels = torch.full((num_states,), -1, dtype=torch.int64, device=device)
    frontier = (remaining == 0).nonzero().squeeze(1)
    reached = None
    roots_per_utt = torch.bincount(_utt_of(batch, frontier), minlength=batch.num_utts)
    if bool((roots_per_utt > 1).any()):  # a state other than a start has no incoming arc
        reached = torch.zeros(num_states, dtype=torch.int64, device=device)
        reached[batch.start_states[state_counts > 0]] = 1
    order, splits = _out_arcs(batch)
    ranges = torch.stack([splits[:-1], splits[1:] - splits[:-1]], dim=1)  # (S, 2) out-arcs
    steps = torch.arange(max(batch.num_arcs, 1), device=device)  # sliced, never reallocated
    minus_one = torch.full((1,), -1, dtype=torch.int64, device=device)  # expanded, not filled
    position = torch.full((num_states,), -1, dtype=torch.int64, device=device)  # dedupe scratch
    level_states, level_arcs, level_dst = [], [], []
    while frontier.numel() > 0:
        picked = ranges.index_select(0, frontier)  # (F, 2) first out-arc, count
        counts = picked[:, 1]
        ends = torch.cumsum(counts, dim=0)
        total = int(ends[-1])
        arcs = torch.repeat_interleave(picked[:, 0] - ends + counts, counts,
                                       output_size=total) + steps[:total]  # (level arcs,)
        if order is not None:
            arcs = order.index_select(0, arcs)
        level_states.append(frontier)
        level_arcs.append(arcs)
        targets = dst.index_select(0, arcs)
        level_dst.append(targets)
        remaining.index_add_(0, targets, minus_one.expand(total))
        if reached is not None:
            sources = reached.index_select(0, src.index_select(0, arcs))
            reached.scatter_reduce_(0, targets, sources, "amax", include_self=True)
        ready = targets.masked_select(remaining.index_select(0, targets) == 0)  # with repeats
        ranks = steps[: ready.numel()]
        position.index_copy_(0, ready, ranks)  # one surviving rank per state
        frontier = ready.masked_select(position.index_select(0, ready) == ranks)
    if level_states:  # each state's level at once, not one fill per level
        sizes = torch.tensor([states.numel() for states in level_states], device=device)
        ordered = torch.cat(level_states)
        levels[ordered] = torch.repeat_interleave(torch.arange(len(level_states), device=device),
                                                  sizes, output_size=ordered.numel())
    empty = torch.zeros(0, dtype=torch.int64, device=device)
    return _Levels(levels, _Reach(reached, into_start), level_states,
                   torch.cat(level_arcs) if level_arcs else empty,
                   torch.cat(level_dst) if level_dst else empty,
                   [arcs.numel() for arcs in level_arcs])


def _state_batches(batch: LatticeBatch) -> Optional[_Levels]:
    """k2's state batches: each level of a lattice is a run of consecutive states.

    For the batches that readers, pruning and expansion make: arcs sorted by
    source, each arc into a higher state id, every state but the starts entered.
    A lattice's next level then begins at the smallest destination of the arcs
    leaving its current level's first state or any later state (a suffix minimum),
    so no state of a level enters another. Levels are found in one pass over the
    arcs plus one gather per level on (U,) lattices, and each level's out-arcs
    are U runs of consecutive arcs. Levels need not be longest-path levels.

    Returns:
      What ``_kahn`` returns, or None for any other batch (``_kahn`` then does it).
    """
    num_states, src, dst = batch.num_states, batch.src, batch.dst
    if batch.num_arcs == 0 or not bool((src[1:] >= src[:-1]).all()):
        return None
    device = src.device
    state_counts = batch.state_splits[1:] - batch.state_splits[:-1]  # (U,)
    entered = torch.zeros(num_states, dtype=torch.bool, device=device).index_fill_(0, dst, True)
    if num_states - int(entered.sum()) > int((state_counts > 0).sum()):
        return None  # a state other than a start has no incoming arc: Kahn tracks reach
    ends = torch.repeat_interleave(batch.state_splits[1:], state_counts,
                                   output_size=num_states)  # (S,) one past the lattice
    lowest = ends.scatter_reduce(0, src, dst, "amin", include_self=True)  # (S,) lowest out-dst
    if not bool((lowest > torch.arange(num_states, device=device)).all()):
        return None  # an arc into a lower state (or a cycle)
    nexts = lowest.flip(0).cummin(0).values.flip(0)  # (S,) start of the level after a state's
    done = torch.full((1,), num_states, dtype=torch.int64, device=device)
    jump = torch.cat([torch.where(nexts == ends, done, nexts), done])  # (S+1,) S: lattice done
    current = torch.where(state_counts > 0, batch.state_splits[:-1], done)  # (U,)
    rows = []
    while bool((current < num_states).any()):
        rows.append(current)
        current = jump.index_select(0, current)
    table = torch.stack(rows)  # (L, U) first state of each level of each lattice
    present = table < num_states
    firsts = table[present]  # (R,) runs level by level, lattice by lattice
    stops = nexts.index_select(0, firsts)  # (R,) one past each run's last state
    runs_per_level = present.sum(dim=1)  # (L,)
    out_splits = _out_splits(batch)  # (S+1,)
    arc_starts = out_splits.index_select(0, firsts)
    arc_counts = out_splits.index_select(0, stops) - arc_starts  # (R,)
    state_sizes = _per_level(stops - firsts, runs_per_level)
    arc_sizes = _per_level(arc_counts, runs_per_level)
    arcs = expand_ranges(arc_starts, arc_counts)  # (A,) level by level
    states = expand_ranges(firsts, stops - firsts)  # (S',) level by level
    levels = torch.full((num_states,), -1, dtype=torch.int64, device=device)
    levels[states] = torch.repeat_interleave(
        torch.arange(len(rows), device=device), torch.tensor(state_sizes, device=device),
        output_size=states.numel())
    reach = _Reach(None, torch.zeros(batch.num_utts, dtype=torch.bool, device=device))
    return _Levels(levels, reach, list(torch.split(states, state_sizes)), arcs,
                   dst.index_select(0, arcs), arc_sizes)


def _per_level(run_sizes: Tensor, runs_per_level: Tensor) -> List[int]:
    """Sums of ``run_sizes`` (R,) over each level's ``runs_per_level`` (L,) runs."""
    totals = torch.cumsum(run_sizes, dim=0).index_select(0, torch.cumsum(runs_per_level, 0) - 1)
    return torch.diff(totals, prepend=totals.new_zeros(1)).tolist()


def topological_levels(batch: LatticeBatch) -> Tuple[Tensor, Dict[int, LatticeError]]:
    """Longest-path level of every state (Kahn's algorithm over the whole batch).

    Args:
      batch:
        The lattices.

    Returns:
      ``(levels, problems)``: a 1-D int64 tensor of shape (S,), the level of each
      state (0 for the start states and any other state without incoming arcs,
      ``levels[src[a]] < levels[dst[a]]`` for every arc of a lattice without a
      problem; -1 on states on or after a cycle), and a dict mapping the index of
      each lattice with a problem to its ``LatticeError`` (empty lattice, arc into
      the start state, cycle, no path from start to final).
    """
    found = _kahn(batch)
    return found.levels, _problems(batch, found.levels, found.reach)


def _utt_of(batch: LatticeBatch, states: Tensor) -> Tensor:
    """1-D int64 tensor, the lattice of each of ``states`` (1-D int64 global ids)."""
    return torch.bucketize(states, batch.state_splits[1:], right=True)


def _problems(batch: LatticeBatch, levels: Tensor, reach: _Reach) -> Dict[int, LatticeError]:
    """The first problem of each bad lattice (empty, into start, cycle, no path)."""
    state_counts = batch.state_splits[1:] - batch.state_splits[:-1]  # (U,)
    arc_counts = batch.arc_splits[1:] - batch.arc_splits[:-1]  # (U,)
    empty = (state_counts < 2) | (arc_counts == 0)  # (U,)
    has_into_start = reach.into_start
    reached = reach.reached
    cyclic = (levels < 0).nonzero().squeeze(1)
    has_cycle = torch.zeros_like(empty).index_fill_(0, _utt_of(batch, cyclic), True)
    if reached is None or batch.num_states == 0:
        no_path = torch.zeros_like(empty)
    else:
        no_path = reached[(batch.state_splits[1:] - 1).clamp(min=0)] == 0
    bad = (empty | has_into_start | has_cycle | no_path).nonzero().squeeze(1).tolist()
    problems: Dict[int, LatticeError] = {}
    for utt in bad:
        first_state, count = int(batch.state_splits[utt]), int(state_counts[utt])
        first_arc, last_arc = int(batch.arc_splits[utt]), int(batch.arc_splits[utt + 1])
        if bool(empty[utt]):
            message = (f"empty lattice (expected arcs from state 0 to a final state, "
                       f"got {count} states and {int(arc_counts[utt])} arcs)")
        elif bool(has_into_start[utt]):
            arc = int((batch.dst[first_arc:last_arc] == first_state).nonzero()[0])
            message = f"arc {arc} enters the start state 0 (expected none)"
        elif bool(has_cycle[utt]):
            state = int((levels[first_state:first_state + count] < 0).nonzero()[0])
            message = f"the lattice has a cycle (state {state} is on or after one)"
        else:
            message = f"no path from the start state 0 to the final state {count - 1}"
        problems[utt] = LatticeError(message, utt_id=batch.utt_ids[utt])
    return problems


@dataclass(frozen=True)
class LevelSchedule:
    """A problem-free batch with its levels and the states and out-arcs of each level.

    Built once per batch and shared by every sweep over it. Forward sweeps
    push along the out-arcs of level 0, 1, ...; backward sweeps pull along them
    from the last level down. Each per-level tuple is a split (views) of a flat
    tensor in level order, for work that needs no level at a time.

    Attributes:
      batch:
        The lattices.
      levels:
        1-D int64 tensor of shape (S,), ``levels[src[a]] < levels[dst[a]]``.
      states:
        L 1-D int64 tensors, the states of each level (no repeats).
      order:
        1-D int64 tensor of shape (A,), the arcs leaving level 0's states, then
        level 1's, ..., grouped by source state (in ``states`` order), in arc
        order within a state.
      order_dst:
        1-D int64 tensor of shape (A,), the destination states of ``order``.
      arc_sizes:
        L ints, the number of arcs of each level in ``order``.
    """

    batch: LatticeBatch
    levels: Tensor
    states: Tuple[Tensor, ...]
    order: Tensor
    order_dst: Tensor
    arc_sizes: Tuple[int, ...]

    @classmethod
    def of(cls, batch: LatticeBatch) -> "LevelSchedule":
        """The schedule of ``batch``.

        Raises:
          LatticeError: the first bad lattice's problem (names its utterance).
        """
        schedule, problems = cls.checked(batch)
        if problems:
            raise problems[min(problems)]
        return schedule

    @classmethod
    def checked(cls, batch: LatticeBatch) -> Tuple["LevelSchedule", Dict[int, LatticeError]]:
        """The schedule and the problems (lattice index -> error) of ``batch``.

        The schedule is only valid for sweeps when ``problems`` is empty; else
        drop those lattices (``batch.select``) and build the schedule again.
        """
        return cls._of_levels(batch, _state_batches(batch) or _kahn(batch))

    @classmethod
    def _of_levels(cls, batch: LatticeBatch,
                   found: _Levels) -> Tuple["LevelSchedule", Dict[int, LatticeError]]:
        schedule = cls(batch, found.levels, tuple(found.states), found.order, found.order_dst,
                       tuple(found.arc_sizes))
        return schedule, _problems(batch, found.levels, found.reach)

    @property
    def num_levels(self) -> int:
        """L, the number of levels (at least the deepest lattice's longest path + 1)."""
        return len(self.states)

    @cached_property
    def arcs(self) -> Tuple[Tensor, ...]:
        """L 1-D int64 tensors, the arcs leaving each level's states (``order`` split)."""
        return self.per_level(self.order)

    @cached_property
    def dst(self) -> Tuple[Tensor, ...]:
        """L 1-D int64 tensors, the destination states of ``arcs``."""
        return self.per_level(self.order_dst)

    @cached_property
    def order_src(self) -> Tensor:
        """1-D int64 tensor of shape (A,), the source states of ``order``."""
        return self.batch.src.index_select(0, self.order)

    @cached_property
    def src(self) -> Tuple[Tensor, ...]:
        """The source states of ``arcs``, per level."""
        return self.per_level(self.order_src)

    def per_level(self, values: Tensor) -> Tuple[Tensor, ...]:
        """``values`` (A, ...) in ``order``, split into L views, one per level."""
        return torch.split(values, self.arc_sizes)

    @cached_property
    def into(self) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        """Arcs grouped by the level of their destination, by destination within a level.

        Returns ``(arcs, dst)``, L tensors each (level 0 has no arcs). One sort
        of all arcs: for algorithms that must see all arcs into a state at once
        (history expansion, oracle), not for the sweeps.
        """
        batch = self.batch
        arc_level = self.levels[batch.dst]  # (A,)
        order = torch.sort(arc_level * batch.num_states + batch.dst, stable=True).indices
        sizes = torch.bincount(arc_level, minlength=self.num_levels).tolist()
        return torch.split(order, sizes), torch.split(batch.dst[order], sizes)

    @cached_property
    def sources(self) -> Tuple[Tuple[Tensor, Tensor], ...]:
        """Per level: (distinct source states of ``arcs``, local index of each arc's)."""
        return tuple(torch.unique_consecutive(src, return_inverse=True) for src in self.src)


def select_arcs(batch: LatticeBatch, arc_ids: Tensor) -> Tuple[LatticeBatch, Tensor]:
    """A new batch holding only ``arc_ids`` and the states they touch.

    States keep their relative order, so every lattice's start and final state
    stay first and last as long as some kept arc touches them. A lattice keeps
    its place in the batch even when it loses every arc (then it has no states).
    Kaldi transition ids and state times, when the batch has them, follow.

    Args:
      batch:
        The input batch (not modified).
      arc_ids:
        1-D int64 tensor of shape (A',), ids of the arcs to keep, increasing.

    Returns:
      ``(selected, kept_states)``: the new batch (its arc i is ``batch``'s arc
      ``arc_ids[i]``) and a 1-D int64 tensor of shape (S',), the old id of each
      of its states.
    """
    device = batch.device
    used = torch.zeros(batch.num_states, dtype=torch.bool, device=device)
    used[batch.src[arc_ids]] = True
    used[batch.dst[arc_ids]] = True
    kept_states = used.nonzero().squeeze(1)  # (S',)
    new_id = torch.cumsum(used.to(torch.int64), dim=0) - 1  # (S,) old -> new state
    num_utts = batch.num_utts
    state_counts = torch.bincount(batch.state_utt[kept_states], minlength=num_utts)
    arc_counts = torch.bincount(batch.arc_utt[arc_ids], minlength=num_utts)
    word_splits, word_ids = select_rows(batch.word_splits, batch.word_ids, arc_ids)
    transitions = batch.arc_transitions(arc_ids)
    selected = LatticeBatch(
        utt_ids=list(batch.utt_ids),
        state_splits=splits_from_counts(state_counts.cpu()).to(device),
        arc_splits=splits_from_counts(arc_counts.cpu()).to(device),
        src=new_id[batch.src[arc_ids]],
        dst=new_id[batch.dst[arc_ids]],
        labels=batch.labels[arc_ids],
        word_splits=word_splits,
        word_ids=word_ids,
        am_scores=batch.am_scores[arc_ids],
        ngram_scores=batch.ngram_scores[arc_ids],
        arc_extras={name: value[arc_ids] for name, value in batch.arc_extras.items()},
        transition_splits=None if transitions is None else transitions[0],
        transition_ids=None if transitions is None else transitions[1],
        state_times=None if batch.state_times is None else batch.state_times[kept_states],
    )
    return selected, kept_states

