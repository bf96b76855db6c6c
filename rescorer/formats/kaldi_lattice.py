"""Kaldi lattices as Kaldi holds them (``KaldiFst``) and their mapping to ``Lattice``.

A Kaldi lattice is an OpenFst ``VectorFst``: states ``0 .. S-1``, a start state, a
final weight per state, and arcs whose weight is a pair of costs ``(graph,
acoustic)`` (negated log scores) plus, for a CompactLattice, a string of
transition ids. fprescore's ``Lattice`` has one final state entered by label -1
arcs; the mapping is exact both ways:

- reading: Kaldi state ``s`` becomes state ``s`` (the start state is swapped with
  state 0 when it is not 0), and one new state ``S`` is the final state; every
  Kaldi state with a final weight gets a -1 arc into it carrying that weight
  and its transition ids. ``am = -acoustic``, ``ngram = -graph``. A CompactLattice
  arc's word is its label; a Lattice (``lattice4``) arc's word is its output
  label and its input label (when not 0) is its one transition id.
- writing: the -1 arcs become final weights again. A state with several -1 arcs,
  or a -1 arc carrying words, gets an epsilon arc into a new final state of
  weight One instead; an arc with several words becomes a chain through new
  states (weight and transition ids on the first piece), as Kaldi's own
  conversions do. Paths, word sequences and path costs are unchanged.

Read lattices carry the per-arc transition ids (``Lattice.transition_splits`` and
``transition_ids``).
"""
from dataclasses import dataclass, replace
from typing import Optional

import numpy as np
import torch
from torch import Tensor

from rescorer.errors import InputFormatError
from rescorer.lattice.fsavec import Lattice, splits_from_counts, words_from_labels
from rescorer.paths import PathLike

INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class KaldiFst:
    """One Kaldi lattice, Kaldi's own layout (costs, per-state final weights).

    Attributes:
      num_states:
        S, the number of states.
      start:
        The start state, in ``0 .. S-1``.
      src:
        1-D int64 tensor of shape (A,), source state of each arc.
      dst:
        1-D int64 tensor of shape (A,), next state of each arc.
      ilabel:
        1-D int64 tensor of shape (A,), input labels (= olabel in a CompactLattice;
        the transition id in a Lattice).
      olabel:
        1-D int64 tensor of shape (A,), output labels: word ids, 0 for epsilon.
      graph:
        1-D float32 tensor of shape (A,), graph costs.
      acoustic:
        1-D float32 tensor of shape (A,), acoustic costs.
      arc_tid_splits:
        1-D int64 tensor of shape (A+1,), row splits of ``[arc][transition id]``.
      arc_tids:
        1-D int64 tensor of shape (arc_tid_splits[-1],), transition ids.
      final_graph:
        1-D float32 tensor of shape (S,), graph cost of each final weight; +inf
        (with +inf acoustic: Kaldi's Zero) for a state that is not final.
      final_acoustic:
        1-D float32 tensor of shape (S,), acoustic cost of each final weight.
      final_tid_splits:
        1-D int64 tensor of shape (S+1,), row splits of ``[state][transition id]``.
      final_tids:
        1-D int64 tensor of shape (final_tid_splits[-1],), final weights' ids.
      compact:
        True for a CompactLattice (``compactlattice44``), False for ``lattice4``.
    """

    num_states: int
    start: int
    src: Tensor
    dst: Tensor
    ilabel: Tensor
    olabel: Tensor
    graph: Tensor
    acoustic: Tensor
    arc_tid_splits: Tensor
    arc_tids: Tensor
    final_graph: Tensor
    final_acoustic: Tensor
    final_tid_splits: Tensor
    final_tids: Tensor
    compact: bool = True

    @property
    def num_arcs(self) -> int:
        """A, the number of arcs."""
        return int(self.src.numel())

    @property
    def is_final(self) -> Tensor:
        """1-D bool tensor of shape (S,), states whose final weight is not Zero."""
        return ~(torch.isinf(self.final_graph) & (self.final_graph > 0)
                 & torch.isinf(self.final_acoustic) & (self.final_acoustic > 0))


def transitions_of(lattice: Lattice) -> Optional[tuple]:
    """``(splits, ids)`` when ``lattice`` carries transition ids for its own arcs, else None."""
    splits, ids = lattice.transition_splits, lattice.transition_ids
    if splits is None or ids is None or splits.numel() != lattice.num_arcs + 1:
        return None
    return splits, ids


def carry_transitions(derived: Lattice, source: Lattice, source_arcs: Tensor) -> Lattice:
    """``derived`` with the transition ids of the ``source`` arcs it comes from.

    Args:
      derived:
        A lattice made from ``source`` (pruned, expanded).
      source:
        The lattice as read; returned unchanged when it carries no transition ids.
      source_arcs:
        1-D int64 tensor of shape (A_derived,), the ``source`` arc of each arc of
        ``derived`` (an expansion's copies of one arc share its ids).
    """
    carried = transitions_of(source)
    if carried is None:
        return derived
    splits, ids = ragged_rows(carried[0], carried[1], source_arcs)
    return replace(derived, transition_splits=splits, transition_ids=ids)


def fst_to_lattice(fst: KaldiFst, utt_id: str, path: Optional[PathLike] = None) -> Lattice:
    """The ``Lattice`` of a Kaldi lattice (see the module docstring).

    Raises:
      InputFormatError: no states, a negative label, a CompactLattice arc whose two
        labels differ, or no final state.
    """
    def fail(message: str) -> None:
        raise InputFormatError(message, path=path, utt_id=utt_id)

    if fst.num_states == 0:
        fail("the lattice has no states (an empty FST)")
    if fst.num_arcs and int(torch.minimum(fst.ilabel.min(), fst.olabel.min())) < 0:
        fail(f"negative label {int(torch.minimum(fst.ilabel.min(), fst.olabel.min()))} on an arc")
    if fst.compact and bool((fst.ilabel != fst.olabel).any()):
        arc = int((fst.ilabel != fst.olabel).nonzero()[0])
        fail(f"CompactLattice arc {arc} has input label {int(fst.ilabel[arc])} and output label "
             f"{int(fst.olabel[arc])} (expected an acceptor)")
    finals = fst.is_final.nonzero().flatten()  # (F,) Kaldi states with a final weight
    if finals.numel() == 0:
        fail("no state has a final weight")
    renumber = torch.arange(fst.num_states, dtype=torch.int64)  # swap start and 0
    renumber[[0, fst.start]] = torch.tensor([fst.start, 0], dtype=torch.int64)
    final_state = fst.num_states
    labels = torch.cat([fst.olabel, torch.full((finals.numel(),), -1, dtype=torch.int64)])
    word_splits, word_ids = words_from_labels(labels)
    arc_tid_splits, arc_tids = fst.arc_tid_splits, fst.arc_tids
    if not fst.compact:  # the input label is the arc's one transition id
        has_tid = fst.ilabel > 0
        arc_tid_splits, arc_tids = splits_from_counts(has_tid.to(torch.int64)), fst.ilabel[has_tid]
    final_tid_splits, final_tids = ragged_rows(fst.final_tid_splits, fst.final_tids, finals)
    splits = torch.cat([arc_tid_splits[:-1], final_tid_splits + arc_tid_splits[-1]])
    return Lattice(
        utt_id=utt_id,
        num_states=final_state + 1,
        src=torch.cat([renumber[fst.src], renumber[finals]]),
        dst=torch.cat([renumber[fst.dst], torch.full((finals.numel(),), final_state,
                                                     dtype=torch.int64)]),
        labels=labels,
        word_splits=word_splits,
        word_ids=word_ids,
        am_scores=-torch.cat([fst.acoustic, fst.final_acoustic[finals]]),
        ngram_scores=-torch.cat([fst.graph, fst.final_graph[finals]]),
        transition_splits=splits,
        transition_ids=torch.cat([arc_tids, final_tids]),
    )


def lattice_to_fst(lattice: Lattice, graph_costs: Optional[Tensor] = None,
                   compact: bool = True) -> KaldiFst:
    """The Kaldi lattice of a ``Lattice`` (see the module docstring).

    Args:
      lattice:
        A valid lattice; its transition ids are kept when it carries its own.
      graph_costs:
        1-D float32 tensor of shape (A,), the graph cost of each arc; default
        ``-lattice.ngram_scores``. The acoustic cost is always ``-am_scores``.
      compact:
        True for a CompactLattice, False for a Lattice (``lattice4``: each arc
        with several transition ids becomes a chain of arcs, one id each).
    """
    graph = -lattice.ngram_scores if graph_costs is None else graph_costs.to(torch.float32)
    acoustic = -lattice.am_scores
    carried = transitions_of(lattice)
    tid_splits, tids = carried if carried is not None else (
        torch.zeros(lattice.num_arcs + 1, dtype=torch.int64), torch.zeros(0, dtype=torch.int64))
    final = lattice.num_states - 1
    into_final = lattice.dst == final
    simple, final_graph, final_acoustic, final_tid_splits, final_tids = _final_weights(
        lattice, graph, acoustic, tid_splits, tids)
    # Other -1 arcs go to one extra state of final weight One; real arcs stay.
    other = (~simple).nonzero().flatten()  # (A',)
    extra_state = final  # Kaldi ids 0 .. final-1 are the lattice's own states
    needs_extra = bool(into_final[other].any())
    dst = torch.where(into_final[other], torch.full_like(other, extra_state), lattice.dst[other])
    if needs_extra:
        final_graph = torch.cat([final_graph, torch.zeros(1)])
        final_acoustic = torch.cat([final_acoustic, torch.zeros(1)])
        final_tid_splits = torch.cat([final_tid_splits, final_tid_splits[-1:]])
    arc_tid_splits, arc_tids = ragged_rows(tid_splits, tids, other)
    word_splits, word_ids = ragged_rows(lattice.word_splits, lattice.word_ids, other)
    chain = _chain_words(lattice.src[other], dst, word_splits, word_ids,
                         final + int(needs_extra))
    fst = KaldiFst(
        num_states=chain.num_states, start=0, src=chain.src, dst=chain.dst,
        ilabel=chain.words, olabel=chain.words,
        graph=chain.on_first(graph[other]), acoustic=chain.on_first(acoustic[other]),
        arc_tid_splits=chain.spread_splits(arc_tid_splits), arc_tids=arc_tids,
        final_graph=torch.cat([final_graph, torch.full((chain.added,), float("inf"))]),
        final_acoustic=torch.cat([final_acoustic, torch.full((chain.added,), float("inf"))]),
        final_tid_splits=torch.cat([final_tid_splits,
                                    final_tid_splits[-1:].expand(chain.added)]),
        final_tids=final_tids,
    )
    fst = sort_arcs(fst)
    return fst if compact else to_lattice4(fst)


def _final_weights(lattice: Lattice, graph: Tensor, acoustic: Tensor, tid_splits: Tensor,
                   tids: Tensor) -> tuple:
    """Final weights of Kaldi states ``0 .. S-2`` from the -1 arcs that can be one.

    A -1 arc "is" its source's final weight when it carries no words and is the
    first -1 arc of that state. Returns ``(simple, graph, acoustic, id splits, ids)``:
    1-D bool (A,) marking those arcs, then float32 (S-1,) costs (+inf where not
    final) and the ragged ids per state.
    """
    final = lattice.num_states - 1
    into_final = lattice.dst == final
    order = torch.argsort(lattice.src * 2 + into_final.to(torch.int64), stable=True)  # (A,)
    first_final = into_final[order] & _first_of_run(lattice.src[order], into_final[order])
    simple = torch.zeros_like(into_final)
    simple[order] = first_final
    simple &= lattice.words_per_arc == 0
    states = lattice.src[simple]
    final_graph = torch.full((final,), float("inf"))
    final_acoustic = torch.full((final,), float("inf"))
    final_graph[states] = graph[simple]
    final_acoustic[states] = acoustic[simple]
    counts = torch.zeros(final, dtype=torch.int64)
    counts[states] = (tid_splits[1:] - tid_splits[:-1])[simple]
    by_state = simple.nonzero().flatten()[torch.argsort(states, stable=True)]
    return (simple, final_graph, final_acoustic, splits_from_counts(counts),
            ragged_rows(tid_splits, tids, by_state)[1])


@dataclass(frozen=True)
class _Chain:
    """Arcs after splitting multi-word arcs into chains (see ``_chain_words``)."""

    num_states: int
    added: int
    src: Tensor
    dst: Tensor
    words: Tensor
    first: Tensor  # (A',) index of each original arc's first piece
    pieces: Tensor  # (A,) pieces per original arc

    def on_first(self, values: Tensor) -> Tensor:
        """1-D float32 tensor over pieces: ``values`` on each arc's first piece, 0 (One) elsewhere."""
        out = torch.zeros(self.src.numel(), dtype=torch.float32)
        out[self.first] = values
        return out

    def spread_splits(self, splits: Tensor) -> Tensor:
        """Row splits over pieces: an original row on its first piece, empty rows elsewhere."""
        counts = torch.zeros(self.src.numel(), dtype=torch.int64)
        counts[self.first] = splits[1:] - splits[:-1]
        return splits_from_counts(counts)


def _chain_words(src: Tensor, dst: Tensor, word_splits: Tensor, word_ids: Tensor,
                 num_states: int) -> _Chain:
    """One piece per word (one epsilon piece for no word), chained through new states.

    Args:
      src, dst:
        1-D int64 tensors of shape (A,), the arcs' Kaldi states.
      word_splits, word_ids:
        The arcs' ragged ``[arc][word]``.
      num_states:
        Kaldi states used so far; new states are numbered from it.
    """
    counts = word_splits[1:] - word_splits[:-1]  # (A,)
    pieces = torch.clamp(counts, min=1)  # (A,)
    piece_splits = splits_from_counts(pieces)
    total = int(piece_splits[-1])
    owner = torch.repeat_interleave(torch.arange(src.numel()), pieces)  # (P,)
    rank = torch.arange(total) - piece_splits[:-1][owner]  # (P,) piece index within its arc
    added = total - src.numel()
    # New state of piece p (not the last piece of its arc): num_states + running count.
    is_inner = rank < pieces[owner] - 1  # (P,)
    inner_id = num_states + torch.cumsum(is_inner.to(torch.int64), 0) - 1  # (P,)
    previous_inner = torch.cat([torch.zeros(1, dtype=torch.int64), inner_id[:-1]])
    piece_src = torch.where(rank == 0, src[owner], previous_inner)
    piece_dst = torch.where(is_inner, inner_id, dst[owner])
    has_word = counts[owner] > 0
    word_index = torch.clamp(word_splits[:-1][owner] + rank, max=max(word_ids.numel() - 1, 0))
    words = torch.where(has_word, word_ids[word_index] if word_ids.numel() else
                        torch.zeros(total, dtype=torch.int64), torch.zeros(total, dtype=torch.int64))
    return _Chain(num_states + added, added, piece_src, piece_dst, words, piece_splits[:-1], pieces)


def sort_arcs(fst: KaldiFst) -> KaldiFst:
    """The same FST with arcs stably sorted by source state (Kaldi's storage order)."""
    order = torch.argsort(fst.src, stable=True)
    if bool((order == torch.arange(order.numel())).all()):
        return fst
    splits, tids = ragged_rows(fst.arc_tid_splits, fst.arc_tids, order)
    return KaldiFst(fst.num_states, fst.start, fst.src[order], fst.dst[order], fst.ilabel[order],
                    fst.olabel[order], fst.graph[order], fst.acoustic[order], splits, tids,
                    fst.final_graph, fst.final_acoustic, fst.final_tid_splits, fst.final_tids,
                    fst.compact)


def to_lattice4(fst: KaldiFst) -> KaldiFst:
    """A CompactLattice as a Lattice: one arc per transition id (input label).

    An arc with ids ``t1 .. tn`` becomes ``t1:word`` (with the weight) then
    ``t2:0 .. tn:0`` (weight One) through new states; with no ids, ``0:word``.
    A final weight with ids becomes a chain ending in a new final state.
    """
    # Final weights with ids: move them onto an epsilon arc into a new final state.
    final_counts = fst.final_tid_splits[1:] - fst.final_tid_splits[:-1]
    moving = (final_counts > 0).nonzero().flatten()  # (M,)
    new_final = fst.num_states + torch.arange(moving.numel())
    src = torch.cat([fst.src, moving])
    dst = torch.cat([fst.dst, new_final])
    olabel = torch.cat([fst.olabel, torch.zeros(moving.numel(), dtype=torch.int64)])
    graph = torch.cat([fst.graph, fst.final_graph[moving]])
    acoustic = torch.cat([fst.acoustic, fst.final_acoustic[moving]])
    counts = torch.cat([fst.arc_tid_splits[1:] - fst.arc_tid_splits[:-1], final_counts[moving]])
    tids = torch.cat([fst.arc_tids, ragged_rows(fst.final_tid_splits, fst.final_tids, moving)[1]])
    final_graph = fst.final_graph.clone()
    final_acoustic = fst.final_acoustic.clone()
    final_graph[moving] = float("inf")
    final_acoustic[moving] = float("inf")
    num_states = fst.num_states + moving.numel()
    final_graph = torch.cat([final_graph, torch.zeros(moving.numel())])
    final_acoustic = torch.cat([final_acoustic, torch.zeros(moving.numel())])
    # Each arc becomes max(1, ids) pieces: ids on inputs, the word on the first piece.
    chain = _chain_words(src, dst, splits_from_counts(counts), tids, num_states)
    word_on_first = torch.zeros(chain.src.numel(), dtype=torch.int64)
    word_on_first[chain.first] = olabel
    no_tids = torch.zeros(chain.src.numel() + 1, dtype=torch.int64)
    fst4 = KaldiFst(
        num_states=chain.num_states, start=fst.start, src=chain.src, dst=chain.dst,
        ilabel=chain.words, olabel=word_on_first,
        graph=chain.on_first(graph), acoustic=chain.on_first(acoustic),
        arc_tid_splits=no_tids, arc_tids=torch.zeros(0, dtype=torch.int64),
        final_graph=torch.cat([final_graph, torch.full((chain.added,), float("inf"))]),
        final_acoustic=torch.cat([final_acoustic, torch.full((chain.added,), float("inf"))]),
        final_tid_splits=torch.zeros(chain.num_states + 1, dtype=torch.int64),
        final_tids=torch.zeros(0, dtype=torch.int64), compact=False,
    )
    return sort_arcs(fst4)


def _first_of_run(keys: Tensor, mask: Tensor) -> Tensor:
    """1-D bool tensor: True where ``mask`` holds and no earlier masked entry has the same key.

    ``keys`` must be sorted so that equal keys with ``mask`` set are adjacent.
    """
    previous_same = torch.zeros_like(mask)
    previous_same[1:] = (keys[1:] == keys[:-1]) & mask[:-1]
    return mask & ~previous_same


def ragged_rows(splits: Tensor, values: Tensor, rows: Tensor) -> tuple:
    """``(splits', values')``: the ragged rows ``rows`` of ``(splits, values)``, in that order.

    numpy inside: torch.repeat_interleave is slow on small CPU tensors.
    """
    counts = (splits[1:] - splits[:-1])[rows]
    new_splits = splits_from_counts(counts)
    total = int(new_splits[-1])
    if total == 0:
        return new_splits, values[:0]
    counts_np = counts.numpy()
    offsets = np.repeat((splits[:-1][rows] - new_splits[:-1]).numpy(), counts_np)
    return new_splits, torch.index_select(values, 0, torch.from_numpy(offsets + np.arange(total)))
