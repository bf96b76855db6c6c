"""``LatticeBatch``: many lattices as one ragged batch, the unit of work.

The layout is k2's FsaVec with axes ``[utt][state][arc]``, except that arcs name
*batch-global* states, so a batch is one DAG of disjoint components and every
level-synchronous algorithm sweeps all utterances at once::

    utt 0: states 0..2      utt 1: states 3..4
    state_splits = [0, 3, 5]            # (U+1,)
    arc_splits   = [0, 2, 3]            # (U+1,)
    src = [0, 1, 3], dst = [1, 2, 4]    # (A,) global state ids

Per utterance ``u``: its start state is ``state_splits[u]``, its single final state
``state_splits[u+1] - 1``, entered exactly by the label -1 arcs; its arcs are the
contiguous range ``arc_splits[u] .. arc_splits[u+1]-1`` and touch only its states.
All tensors live on one device; algorithms work on that device.
"""
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.ragged import expand_ranges
from rescorer.errors import InputFormatError
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.paths import PathLike


@dataclass(frozen=True)
class LatticeBatch:
    """U lattices in flat tensors (see the module docstring for the invariants).

    Attributes:
      utt_ids:
        U utterance ids, unique.
      state_splits:
        1-D int64 tensor of shape (U+1,), row splits of ``[utt][state]``.
      arc_splits:
        1-D int64 tensor of shape (U+1,), row splits of ``[utt][arc]``.
      src:
        1-D int64 tensor of shape (A,), global source state of each arc.
      dst:
        1-D int64 tensor of shape (A,), global destination state of each arc.
      labels:
        1-D int64 tensor of shape (A,), k2 labels; -1 exactly on arcs into a final state.
      word_splits:
        1-D int64 tensor of shape (A+1,), row splits of ``[arc][word]``.
      word_ids:
        1-D int64 tensor of shape (word_splits[-1],), word ids (never 0 or -1).
      am_scores:
        1-D float32 tensor of shape (A,), acoustic log-scores.
      ngram_scores:
        1-D float32 tensor of shape (A,), old n-gram LM log-scores (0 if none).
      arc_extras:
        Optional per-arc tensors by name, each with leading dimension A (e.g.
        ``nnlm_scores``); carried through ``select``/``lattice`` unchanged.
      transition_splits:
        Optional 1-D int64 tensor of shape (A+1,), row splits of the ragged
        ``[arc][transition id]`` of lattices read from Kaldi (None otherwise).
      transition_ids:
        Optional 1-D int64 tensor of shape (transition_splits[-1],), Kaldi transition ids.
      state_times:
        Optional 1-D float64 tensor of shape (S,), the time in seconds of each
        state, when the format gives it (SLF ``t=``); None otherwise. Derived
        batches (pruned, expanded) do not carry it: map their arcs back instead.
    """

    utt_ids: List[str]
    state_splits: Tensor
    arc_splits: Tensor
    src: Tensor
    dst: Tensor
    labels: Tensor
    word_splits: Tensor
    word_ids: Tensor
    am_scores: Tensor
    ngram_scores: Tensor
    arc_extras: Dict[str, Tensor] = field(default_factory=dict)
    transition_splits: Optional[Tensor] = None
    transition_ids: Optional[Tensor] = None
    state_times: Optional[Tensor] = None

    @property
    def num_utts(self) -> int:
        """U, the number of lattices."""
        return len(self.utt_ids)

    @property
    def num_states(self) -> int:
        """S, the total number of states."""
        return int(self.state_splits[-1])

    @property
    def num_arcs(self) -> int:
        """A, the total number of arcs."""
        return int(self.src.numel())

    @property
    def device(self) -> torch.device:
        return self.src.device

    @property
    def start_states(self) -> Tensor:
        """1-D int64 tensor of shape (U,), each lattice's start state."""
        return self.state_splits[:-1]

    @property
    def final_states(self) -> Tensor:
        """1-D int64 tensor of shape (U,), each lattice's final state."""
        return self.state_splits[1:] - 1

    @property
    def state_utt(self) -> Tensor:
        """1-D int64 tensor of shape (S,), the lattice of each state."""
        return _row_ids(self.state_splits)

    @property
    def arc_utt(self) -> Tensor:
        """1-D int64 tensor of shape (A,), the lattice of each arc."""
        return _row_ids(self.arc_splits)

    @property
    def words_per_arc(self) -> Tensor:
        """1-D int64 tensor of shape (A,), how many words each arc carries."""
        return self.word_splits[1:] - self.word_splits[:-1]

    def to(self, device: torch.device) -> "LatticeBatch":
        """The same batch with every tensor on ``device``."""
        move = {name: getattr(self, name).to(device) for name in _TENSOR_FIELDS}
        if self.transition_splits is not None:
            move["transition_splits"] = self.transition_splits.to(device)
            move["transition_ids"] = self.transition_ids.to(device)
        if self.state_times is not None:
            move["state_times"] = self.state_times.to(device)
        extras = {name: value.to(device) for name, value in self.arc_extras.items()}
        return replace(self, arc_extras=extras, **move)

    @classmethod
    def from_lattices(cls, lattices: Sequence[Lattice],
                      arc_extras: Optional[Dict[str, Sequence[Tensor]]] = None,
                      state_times: Optional[Sequence[Tensor]] = None) -> "LatticeBatch":
        """Concatenate single lattices (their states renumbered into one axis).

        Args:
          lattices:
            The lattices, in batch order.
          arc_extras:
            Optional per-arc tensors by name, one (A_u, ...) tensor per lattice.
          state_times:
            Optional per-state times, one 1-D (S_u,) tensor per lattice; by
            default the lattices' own ``state_times`` attributes (set by the
            SLF reader), when every lattice has one.
        """
        device = lattices[0].src.device if lattices else torch.device("cpu")
        num_states = torch.tensor([lat.num_states for lat in lattices], dtype=torch.int64)
        num_arcs = torch.tensor([lat.num_arcs for lat in lattices], dtype=torch.int64)
        num_words = torch.tensor([lat.word_ids.numel() for lat in lattices], dtype=torch.int64)
        state_splits = splits_from_counts(num_states).to(device)
        arc_splits = splits_from_counts(num_arcs).to(device)
        # Ids are shifted lattice by lattice, straight into the output: no (A,) column of
        # offsets and no shifted copy per lattice is made.
        state_offsets = state_splits[:-1].tolist()
        arc_bounds = arc_splits.tolist()
        word_offsets = splits_from_counts(num_words)[:-1].tolist()

        def cat(name: str, dtype: torch.dtype) -> Tensor:
            parts = [getattr(lat, name).to(dtype) for lat in lattices]
            return torch.cat(parts) if parts else torch.zeros(0, dtype=dtype, device=device)

        def shifted(parts: List[Tensor], offsets: List[int], size: int) -> Tensor:
            """int64 (size,): each lattice's part plus its offset, at its arcs' place."""
            out = torch.empty(size, dtype=torch.int64, device=device)
            for part, offset, first, last in zip(parts, offsets, arc_bounds, arc_bounds[1:]):
                torch.add(part.to(torch.int64), offset, out=out[first:last])
            return out

        num_arcs_total = arc_bounds[-1]
        word_splits = shifted([lat.word_splits[:-1] for lat in lattices], word_offsets,
                              num_arcs_total + 1)
        word_splits[-1] = int(num_words.sum())

        extras = {name: torch.cat(list(values)) for name, values in (arc_extras or {}).items()}
        transitions = _concat_transitions(lattices)
        if state_times is None:
            own = [lat.state_times for lat in lattices]
            state_times = own if own and all(times is not None for times in own) else None
        return cls(
            utt_ids=[lat.utt_id for lat in lattices],
            state_splits=state_splits,
            arc_splits=arc_splits,
            src=shifted([lat.src for lat in lattices], state_offsets, num_arcs_total),
            dst=shifted([lat.dst for lat in lattices], state_offsets, num_arcs_total),
            labels=cat("labels", torch.int64),
            word_splits=word_splits,
            word_ids=cat("word_ids", torch.int64),
            am_scores=cat("am_scores", torch.float32),
            ngram_scores=cat("ngram_scores", torch.float32),
            arc_extras=extras,
            transition_splits=None if transitions is None else transitions[0],
            transition_ids=None if transitions is None else transitions[1],
            state_times=None if state_times is None else
            torch.cat([times.to(torch.float64) for times in state_times]).to(device),
        )

    def lattice(self, index: int) -> Lattice:
        """Lattice ``index`` alone, with local state ids (for tests and writers).

        Transition ids and state times come along when the batch has them.
        """
        first_arc, last_arc = int(self.arc_splits[index]), int(self.arc_splits[index + 1])
        first_state = int(self.state_splits[index])
        first_word = int(self.word_splits[first_arc])
        last_word = int(self.word_splits[last_arc])
        transition_splits = transition_ids = state_times = None
        if self.transition_splits is not None:
            splits = self.transition_splits[first_arc:last_arc + 1]
            transition_splits = splits - splits[0]
            transition_ids = self.transition_ids[int(splits[0]):int(splits[-1])]
        num_states = int(self.state_splits[index + 1]) - first_state
        if self.state_times is not None:
            state_times = self.state_times[first_state:first_state + num_states]
        return Lattice(
            utt_id=self.utt_ids[index],
            num_states=num_states,
            src=self.src[first_arc:last_arc] - first_state,
            dst=self.dst[first_arc:last_arc] - first_state,
            labels=self.labels[first_arc:last_arc],
            word_splits=self.word_splits[first_arc:last_arc + 1] - first_word,
            word_ids=self.word_ids[first_word:last_word],
            am_scores=self.am_scores[first_arc:last_arc],
            ngram_scores=self.ngram_scores[first_arc:last_arc],
            transition_splits=transition_splits,
            transition_ids=transition_ids,
            state_times=state_times,
        )

    def to_lattices(self) -> List[Lattice]:
        """Every lattice alone, in batch order."""
        return [self.lattice(index) for index in range(self.num_utts)]

    def arc_extras_of(self, index: int) -> Dict[str, Tensor]:
        """The ``arc_extras`` rows of lattice ``index``."""
        first, last = int(self.arc_splits[index]), int(self.arc_splits[index + 1])
        return {name: value[first:last] for name, value in self.arc_extras.items()}

    def select(self, indices: Sequence[int]) -> "LatticeBatch":
        """The lattices ``indices`` (in that order, no repeats) as a batch (``self`` for all, in order)."""
        indices = list(indices)
        if indices == list(range(self.num_utts)):
            return self  # frozen: sharing is safe
        index = torch.as_tensor(indices, dtype=torch.int64, device=self.device)
        state_counts = (self.state_splits[1:] - self.state_splits[:-1])[index]  # (U',)
        arc_counts = (self.arc_splits[1:] - self.arc_splits[:-1])[index]  # (U',)
        arcs = expand_ranges(self.arc_splits[:-1][index], arc_counts)  # (A',)
        new_state_splits = splits_from_counts(state_counts.cpu()).to(self.device)
        shift = torch.repeat_interleave(new_state_splits[:-1] - self.state_splits[:-1][index],
                                        arc_counts)  # (A',)
        counts = self.words_per_arc[arcs]
        word_splits = splits_from_counts(counts.cpu()).to(self.device)
        words = expand_ranges(self.word_splits[:-1][arcs], counts)
        transitions = self.arc_transitions(arcs)
        times = None if self.state_times is None else \
            self.state_times[expand_ranges(self.state_splits[:-1][index], state_counts)]
        return LatticeBatch(
            utt_ids=[self.utt_ids[i] for i in index.tolist()],
            state_splits=new_state_splits,
            arc_splits=splits_from_counts(arc_counts.cpu()).to(self.device),
            src=self.src[arcs] + shift,
            dst=self.dst[arcs] + shift,
            labels=self.labels[arcs],
            word_splits=word_splits,
            word_ids=self.word_ids[words],
            am_scores=self.am_scores[arcs],
            ngram_scores=self.ngram_scores[arcs],
            arc_extras={name: value[arcs] for name, value in self.arc_extras.items()},
            transition_splits=None if transitions is None else transitions[0],
            transition_ids=None if transitions is None else transitions[1],
            state_times=times,
        )

    def arc_transitions(self, arcs: Tensor) -> Optional[Tuple[Tensor, Tensor]]:
        """The transition ids of arcs ``arcs`` (1-D int64 (N,), repeats allowed), in order.

        Returns:
          None when the batch has none, else ``(splits (N+1,), ids)`` int64: what a
          derived lattice whose arc n copies arc ``arcs[n]`` carries.
        """
        if self.transition_splits is None:
            return None
        counts = (self.transition_splits[1:] - self.transition_splits[:-1])[arcs]
        splits = splits_from_counts(counts.cpu()).to(self.device)
        return splits, self.transition_ids[expand_ranges(self.transition_splits[:-1][arcs], counts)]

    @classmethod
    def from_k2_dict(cls, content: dict, path: Optional[PathLike] = None) -> "LatticeBatch":
        """A batch from k2's ``FsaVec.as_dict()`` layout (see ``formats.k2_pt``).

        Per-arc float entries other than ``scores``/``lm_scores`` (e.g.
        ``nnlm_scores``) become ``arc_extras``. Raises ``InputFormatError``.
        """
        from rescorer.formats.k2_read import batch_from_k2_dict  # formats build on lattice

        return batch_from_k2_dict(content, path)

    def to_k2_dict(self) -> dict:
        """k2's ``FsaVec.as_dict()`` layout, with ``utt_ids`` and ``arc_extras`` entries.

        Arcs are stably sorted by source state within each FSA, as k2 requires.
        """
        from rescorer.formats.k2_pt import batch_to_k2_dict

        return batch_to_k2_dict(self)

    def validate(self, path: Optional[PathLike] = None) -> None:
        """Check the batch-level invariants; raise ``InputFormatError``.

        Per-lattice invariants are ``Lattice.validate``'s; this checks the ragged
        axes and that no arc leaves its own lattice.
        """
        where = Path(path) if path is not None else None
        if self.state_splits.numel() != self.num_utts + 1 or self.arc_splits.numel() != self.num_utts + 1:
            raise InputFormatError("state_splits/arc_splits do not have U+1 entries", path=where)
        if len(set(self.utt_ids)) != self.num_utts:
            raise InputFormatError("duplicate utterance ids in one batch", path=where)
        arc_utt = self.arc_utt
        outside = ((self.src < self.state_splits[arc_utt]) | (self.src >= self.state_splits[arc_utt + 1])
                   | (self.dst < self.state_splits[arc_utt]) | (self.dst >= self.state_splits[arc_utt + 1]))
        if bool(outside.any()):
            utt = self.utt_ids[int(arc_utt[outside.nonzero()[0]])]
            raise InputFormatError("an arc names a state of another lattice", path=where, utt_id=utt)


_TENSOR_FIELDS = ("state_splits", "arc_splits", "src", "dst", "labels", "word_splits",
                  "word_ids", "am_scores", "ngram_scores")


def _concat_transitions(lattices: Sequence[Lattice]) -> Optional[Tuple[Tensor, Tensor]]:
    """``(splits (A+1,), ids)`` of all lattices' transition ids, or None unless all have them."""
    parts = [(lat.transition_splits, lat.transition_ids) for lat in lattices]
    if not parts or any(splits is None or ids is None or splits.numel() != lat.num_arcs + 1
                        for (splits, ids), lat in zip(parts, lattices)):
        return None
    counts = torch.cat([splits[1:] - splits[:-1] for splits, _ in parts])
    return splits_from_counts(counts.cpu()).to(counts.device), torch.cat([ids for _, ids in parts])


def _row_ids(splits: Tensor) -> Tensor:
    """1-D int64 tensor of shape (splits[-1],), the row of each item.

    A 1 where each row after the first starts, summed up: two linear passes,
    where ``repeat_interleave`` costs four times as much on CPU.
    """
    starts = torch.zeros(int(splits[-1]) + 1, dtype=torch.int64, device=splits.device)
    ones = torch.ones_like(splits[1:-1], dtype=torch.int64)
    starts.index_add_(0, splits[1:-1], ones)  # empty rows add up
    return torch.cumsum(starts[:-1], dim=0)
