"""OpenFst binary ``vector`` FSTs of Kaldi lattice arcs, parsed and written without loops.

Layout (little-endian; OpenFst ``FstHeader`` and ``VectorFst::Write``, Kaldi's
``fstext/lattice-weight.h``)::

    header: magic int32 2125659606, fst type and arc type (int32 length + bytes),
            version int32, flags int32, properties uint64,
            start int64, num_states int64, num_arcs int64
    state:  final weight, num_arcs int64, then its arcs
    arc:    ilabel int32, olabel int32, weight, nextstate int32
    weight: lattice4:         graph float32, acoustic float32
            compactlattice44: graph float32, acoustic float32, n int32, n transition ids int32

After the header every field is a multiple of 4 bytes, so the body is read as
one array of int32 words. Records have variable length (a CompactLattice weight
holds n ids), so where each record starts is a sequential dependency; it is
resolved with pointer jumping instead of a loop over states or arcs: for every
word position ``p`` we compute where the next arc would start if an arc started
at ``p`` (``p + 6 + n``), compose that map with itself ``log2(max arcs)`` times
(binary lifting) to get where the next *state* starts, and lift again to place
all states and then all arcs. Positions that are not record starts hold garbage
whose jumps are clamped to a sentinel; only the true chain is read. Every step is
a gather over ``O(words)`` entries, so a lattice costs O(words x log(words)).
"""
import struct
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import torch
from torch import Tensor

from rescorer.errors import InputFormatError
from rescorer.formats.kaldi_lattice import INT32_MAX, KaldiFst, sort_arcs
from rescorer.lattice.fsavec import splits_from_counts

FST_MAGIC = 2125659606
MAGIC_BYTES = struct.pack("<i", FST_MAGIC)
COMPACT_ARC_TYPE = "compactlattice44"
LATTICE_ARC_TYPE = "lattice4"
# kExpanded | kMutable: the only property bits claimed; OpenFst computes others on demand.
PROPERTIES = 0x3
VECTOR_VERSION = 2
MAX_TYPE_NAME = 64  # fst/arc type names are short ("vector", "compactlattice44")
HEADER_MAX_BYTES = 4 + 2 * (4 + MAX_TYPE_NAME) + 40
_HAS_SYMBOLS = 0x3  # FstHeader flags: input / output symbol tables follow the header


class NeedMoreData(Exception):
    """The bytes given end inside the FST; the caller should supply more (internal).

    ``args[0]``, when given, is an estimate of the bytes the body needs.
    """


@dataclass(frozen=True)
class FstHeader:
    """The fields of an OpenFst header that a lattice reader needs."""

    arc_type: str
    start: int
    num_states: int
    size: int  # bytes, magic included

    @property
    def compact(self) -> bool:
        return self.arc_type == COMPACT_ARC_TYPE


def parse_header(data: bytes, at_eof: bool) -> FstHeader:
    """The header at the start of ``data``.

    Raises:
      NeedMoreData: ``data`` ends inside the header and more may follow.
      InputFormatError: not a vector FST of lattice arcs, or absurd counts.
    """
    def need(count: int) -> None:
        if len(data) < count:
            if at_eof:
                raise InputFormatError(f"truncated FST header ({len(data)} bytes)")
            raise NeedMoreData

    need(8)
    if data[:4] != MAGIC_BYTES:
        raise InputFormatError("not an OpenFst binary FST (bad magic number)")
    names, at = [], 4
    for _ in range(2):
        need(at + 4)
        (length,) = struct.unpack_from("<i", data, at)
        if not 0 < length <= MAX_TYPE_NAME:
            raise InputFormatError(f"FST type name of {length} bytes (expected 1..{MAX_TYPE_NAME})")
        need(at + 4 + length)
        names.append(bytes(data[at + 4:at + 4 + length]).decode("latin-1"))
        at += 4 + length
    need(at + 40)
    _version, flags, _properties, start, num_states, _num_arcs = struct.unpack_from(
        "<iiQqqq", data, at)
    fst_type, arc_type = names
    if fst_type != "vector":
        raise InputFormatError(f"FST type {fst_type!r} (expected 'vector')")
    if arc_type not in (COMPACT_ARC_TYPE, LATTICE_ARC_TYPE):
        raise InputFormatError(f"arc type {arc_type!r} (expected {COMPACT_ARC_TYPE!r} or "
                               f"{LATTICE_ARC_TYPE!r}: a Kaldi CompactLattice or Lattice)")
    if flags & _HAS_SYMBOLS:
        raise InputFormatError("FST with symbol tables (Kaldi lattices have none)")
    if not 0 <= num_states <= INT32_MAX:
        raise InputFormatError(f"header declares {num_states} states (expected 0..{INT32_MAX})")
    if not (-1 <= start < num_states) or (num_states > 0 and start < 0):
        raise InputFormatError(f"start state {start} (expected 0..{num_states - 1})")
    return FstHeader(arc_type, int(start), int(num_states), at + 40)


def parse_body(body: bytes, header: FstHeader, at_eof: bool) -> Tuple[KaldiFst, int]:
    """The states and arcs after a header, and how many bytes they took.

    Args:
      body:
        The bytes after the header (possibly more than the FST).
      header:
        Its header.
      at_eof:
        True when no byte follows ``body``.

    Raises:
      NeedMoreData: the FST does not end inside ``body`` and more may follow.
      InputFormatError: truncated or corrupt (a huge declared count included:
        it is checked against the bytes present before anything is allocated).
    """
    num_words = len(body) // 4
    state_words, arc_words = (5, 6) if header.compact else (4, 5)  # minimal record sizes
    if header.num_states * state_words > num_words:
        if not at_eof:
            raise NeedMoreData
        raise InputFormatError(f"header declares {header.num_states} states but only "
                               f"{len(body)} bytes follow (at least {state_words * 4} per state)")
    words = np.frombuffer(body, dtype="<i4", count=num_words).astype(np.int64)
    # Most states have few arcs: lift for up to 31 first, for more when a state has more;
    # screen state starts first, and without the screen when that finds no chain.
    arc_limit, screen = min(31, num_words // arc_words), True
    chain = _Chain(words, header.compact)
    while True:
        chain.link(arc_limit, screen)
        positions = chain.states(header.num_states)  # (S+1,)
        end = int(positions[-1])
        if end != chain.sentinel:
            break
        broken = int(np.argmax(positions == chain.sentinel))  # first state not reached
        last = int(positions[broken - 1]) if broken else 0  # the last state reached
        declared = chain.declared_arcs(chain.blocked_at)
        if arc_limit < declared <= num_words // arc_words:
            arc_limit = min(num_words // arc_words, (1 << (2 + declared.bit_length())) - 1)
            continue
        if screen:
            screen = False
            continue
        if not at_eof:  # guess the size from the bytes per state so far
            raise NeedMoreData(int(1.25 * 4 * last / max(broken - 1, 1) * header.num_states))
        raise InputFormatError(f"truncated or corrupt FST ({header.num_states} states declared, "
                               f"records run past the {len(body)} bytes that follow the header)")
    floats = np.frombuffer(body, dtype="<f4", count=num_words)
    return _read_fields(chain, floats, positions[:-1], header), end * 4


class _Chain:
    """Record positions in a body of int32 words (see the module docstring).

    ``link`` builds the jump maps over a *domain* of positions: with the screen, only
    positions where a state's final weight or an arc's weight would hold two
    float-like costs (0 or a non-zero exponent); transition ids and labels, small
    ints and so denormal as floats, drop out, which shrinks the work many times.
    Without it, every position. Maps are indexed by domain slot; slot ``n`` is
    "outside". numpy, not torch: this is CPU byte parsing, and numpy's gathers over
    small arrays are several times faster than torch indexing.
    """

    def __init__(self, words: np.ndarray, compact: bool) -> None:
        self.size = words.size
        self.sentinel = self.size + 1  # positions 0..size are real; size is "just past the end"
        self.compact = compact
        self.padded = np.concatenate([words, np.zeros(8, dtype=np.int64)])
        float_like = _float_like(self.padded)  # (W+8,)
        self.state_like = float_like[:self.size] & float_like[1:self.size + 1]
        self.arc_like = float_like[2:self.size + 2] & float_like[3:self.size + 3]

    def link(self, max_arcs: int, screen: bool) -> None:
        """Jump maps for states declaring at most ``max_arcs`` arcs."""
        domain = (np.flatnonzero(self.state_like | self.arc_like) if screen
                  else np.arange(self.size, dtype=np.int64))  # (n,) positions, sorted
        self.domain = domain
        self.slot_of = np.full(self.size + 2, domain.size, dtype=np.int64)  # position -> slot
        self.slot_of[domain] = np.arange(domain.size)
        self.next_arc_at = self._clamp(domain + 3 + self.weight_words(domain + 2))  # (n,)
        self.next_arc = self._slot(self.next_arc_at)  # (n+1,)
        count_at = domain + self.weight_words(domain)  # the int64 arc count of a state
        low, high = self.word(count_at), self.word(count_at + 1)
        first_at = self._clamp(count_at + 2)  # (n,) the first arc, or the next state
        state_ok = (high == 0) & (low >= 0) & (low <= max_arcs) & (first_at <= self.size)
        if screen:
            state_ok &= self.state_like[domain]
        self.state_ok = np.append(state_ok, False)  # (n+1,)
        self.num_arcs = np.where(state_ok, low, 0)  # (n,)
        self.first_arc = self._slot(first_at)  # (n+1,)
        # after a state: its first-arc slot when it has no arcs, else one past its last arc
        last = _advance(self.next_arc, self.first_arc[:-1], np.maximum(self.num_arcs - 1, 0),
                        max(1, max_arcs.bit_length()))  # (n,)
        has_arcs = self.num_arcs > 0
        self.end_at = np.where(state_ok, np.where(has_arcs, self.next_arc_at[np.minimum(
            last, domain.size - 1)], first_at), self.sentinel)  # (n,) raw position after it
        self.end_at[has_arcs & (last == domain.size)] = self.sentinel
        self.next_state = np.append(np.where(state_ok, self._slot(self.end_at)[:-1], domain.size),
                                    domain.size)  # (n+1,)

    def _slot(self, positions: np.ndarray) -> np.ndarray:
        """(n+1,) domain slot of each position (``n`` when not in the domain), then ``n``."""
        return np.append(self.slot_of[positions], self.domain.size)  # positions <= sentinel

    def declared_arcs(self, position: int) -> int:
        """The arc count a state record at ``position`` declares (-1 when unreadable)."""
        count_at = position + int(self.weight_words(np.array([position]))[0])
        low, high = self.word(np.array([count_at, count_at + 1]))
        return int(low) if high == 0 and low >= 0 else -1

    def word(self, index: np.ndarray) -> np.ndarray:
        """The int32 word at each index (0 past the end)."""
        return np.take(self.padded, index, mode="clip")

    def weight_words(self, start: np.ndarray) -> np.ndarray:
        """Words of a weight starting at each position (huge when its count is negative)."""
        if not self.compact:
            return np.full_like(start, 2)
        count = self.word(start + 2)
        return np.where(count >= 0, 3 + count, self.sentinel)

    def _clamp(self, positions: np.ndarray) -> np.ndarray:
        """Positions past the end become the sentinel."""
        return np.where(positions > self.size, self.sentinel, positions)

    def states(self, num_states: int) -> np.ndarray:
        """1-D int64 array of shape (S+1,): where each state starts, then the FST's end.

        The sentinel marks the states not reached and everything after them.
        """
        self.blocked_at = 0  # where the chain stopped, when it did (for the retry logic)
        if num_states == 0:
            return np.zeros(1, dtype=np.int64)
        start = self._slot(np.zeros(1, dtype=np.int64))[0]
        reached = _advance(self.next_state, np.full(num_states, start), np.arange(num_states),
                           max(1, (num_states - 1).bit_length()))  # (S,) slots
        ok = self.state_ok[reached]
        broken = num_states if ok.all() else int(np.argmin(ok))
        positions = np.full(num_states + 1, self.sentinel, dtype=np.int64)
        positions[:broken] = self.domain[reached[:broken]]
        if broken == num_states:
            positions[-1] = self.end_at[reached[-1]]
            self.blocked_at = int(positions[-2])  # used only when that end is the sentinel
        else:  # the record where the chain stopped: a state with too many arcs, or garbage
            slot = reached[broken]
            self.blocked_at = int(self.domain[slot]) if slot < self.domain.size else (
                int(positions[broken - 1]) if broken else 0)
        return positions

    def arcs(self, state_positions: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """``(arc state (A,), arc position (A,))`` of the states at ``state_positions``."""
        slots = self.slot_of[state_positions]  # (S,) all in the domain
        counts = self.num_arcs[slots]  # (S,)
        arc_state = np.repeat(np.arange(counts.size), counts)  # (A,)
        rank = np.arange(arc_state.size) - (np.cumsum(counts) - counts)[arc_state]  # (A,)
        bits = max(1, int(counts.max()).bit_length()) if counts.size else 1
        arc_slots = _advance(self.next_arc, self.first_arc[slots][arc_state], rank, bits)
        assert bool((arc_slots < self.domain.size).all()), "a state's arcs left the domain"
        return arc_state, self.domain[arc_slots]


def _float_like(words: np.ndarray) -> np.ndarray:
    """True where an int32 word read as float32 is 0 or has a non-zero exponent."""
    return ((words & 0x7FFFFFFF) == 0) | ((words >> 23) & 0xFF != 0)


def _advance(jump: np.ndarray, start: np.ndarray, steps: np.ndarray, bits: int) -> np.ndarray:
    """``jump`` applied ``steps[i]`` times to ``start[i]``, by binary lifting.

    Args:
      jump:
        1-D int64 array of shape (P,), a map of positions onto positions.
      start:
        1-D int64 array of shape (N,), positions.
      steps:
        1-D int64 array of shape (N,), each below ``2**bits``.
    """
    current = start.copy()
    power = jump  # jump applied 2**bit times
    for bit in range(bits):
        take = np.bitwise_and(steps, 1 << bit) != 0
        current[take] = np.take(power, current[take])
        if bit + 1 < bits:
            power = np.take(power, power)
    return current


def _read_fields(chain: _Chain, floats: np.ndarray, states: np.ndarray,
                 header: FstHeader) -> KaldiFst:
    """Gather every field of the records whose positions are known."""
    num_states = header.num_states
    arc_state, arcs = chain.arcs(states)
    word, compact = chain.word, header.compact
    floats = np.concatenate([floats, np.zeros(8, dtype=np.float32)])
    empty = np.zeros(0, dtype=np.int64)
    if compact:
        arc_counts, final_counts = word(arcs + 4), word(states + 2)
        arc_tids = word(_ranges(arcs + 5, arc_counts))
        final_tids = word(_ranges(states + 3, final_counts))
        next_state = word(arcs + 5 + arc_counts)
    else:
        arc_counts, final_counts = np.zeros_like(arcs), np.zeros_like(states)
        arc_tids = final_tids = empty
        next_state = word(arcs + 4)
    bad = (next_state < 0) | (next_state >= num_states)
    if bad.any():
        arc = int(bad.nonzero()[0][0])
        raise InputFormatError(f"arc {arc} of state {int(arc_state[arc])} goes to state "
                               f"{int(next_state[arc])} (expected 0..{num_states - 1})")
    for tids in (arc_tids, final_tids):
        if tids.size and tids.min() < 0:
            raise InputFormatError(f"negative transition id {int(tids.min())} (expected 0..{INT32_MAX})")
    tensor = torch.from_numpy
    return KaldiFst(
        num_states=num_states, start=max(header.start, 0), src=tensor(arc_state),
        dst=tensor(next_state), ilabel=tensor(word(arcs)), olabel=tensor(word(arcs + 1)),
        graph=tensor(floats[arcs + 2]), acoustic=tensor(floats[arcs + 3]),
        arc_tid_splits=splits_from_counts(tensor(arc_counts)), arc_tids=tensor(arc_tids),
        final_graph=tensor(floats[states]), final_acoustic=tensor(floats[states + 1]),
        final_tid_splits=splits_from_counts(tensor(final_counts)), final_tids=tensor(final_tids),
        compact=compact,
    )


def _ranges(starts, counts):
    """1-D int64 array/tensor: ``starts[i] .. starts[i]+counts[i]-1`` for every i, concatenated."""
    if isinstance(starts, Tensor):
        return torch.from_numpy(_ranges(starts.numpy(), counts.numpy()))
    total = int(counts.sum()) if counts.size else 0
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(total)


def encode_fst(fst: KaldiFst) -> bytes:
    """The OpenFst binary form of a Kaldi lattice (header and body).

    Raises:
      InputFormatError: a label or transition id does not fit Kaldi's int32.
    """
    fst = sort_arcs(fst)
    for name, values in (("label", fst.olabel), ("input label", fst.ilabel),
                         ("transition id", fst.arc_tids), ("transition id", fst.final_tids)):
        if values.numel() and int(values.abs().max()) > INT32_MAX:
            raise InputFormatError(f"{name} {int(values.abs().max())} does not fit an int32")
    arc_type = COMPACT_ARC_TYPE if fst.compact else LATTICE_ARC_TYPE
    header = MAGIC_BYTES + b"".join(struct.pack("<i", len(name)) + name.encode()
                                    for name in ("vector", arc_type))
    header += struct.pack("<iiQqqq", VECTOR_VERSION, 0, PROPERTIES, fst.start if fst.num_states
                          else -1, fst.num_states, 0)  # num_arcs 0, as Kaldi writes it
    return header + _encode_body(fst).numpy().astype("<i4").tobytes()


def _encode_body(fst: KaldiFst) -> Tensor:
    """1-D int32 tensor, the body's words (arcs must be sorted by source state)."""
    extra = 1 if fst.compact else 0
    final_counts = fst.final_tid_splits[1:] - fst.final_tid_splits[:-1]  # (S,)
    arc_counts = fst.arc_tid_splits[1:] - fst.arc_tid_splits[:-1]  # (A,)
    final_words = 2 + extra * (1 + final_counts)  # (S,)
    arc_weight = 2 + extra * (1 + arc_counts)  # (A,)
    arc_words = 3 + arc_weight  # (A,)
    per_state = torch.bincount(fst.src, minlength=fst.num_states)  # (S,) arcs of each state
    state_words = final_words + 2  # (S,)
    state_words = state_words.index_add(0, fst.src, arc_words)
    state_at = splits_from_counts(state_words)  # (S+1,)
    arc_splits = splits_from_counts(arc_words)  # (A+1,)
    first_arc = splits_from_counts(per_state)[:-1]  # (S,)
    arc_at = (state_at[:-1][fst.src] + final_words[fst.src] + 2
              + arc_splits[:-1] - arc_splits[:-1][first_arc[fst.src]])  # (A,)
    body = torch.zeros(int(state_at[-1]), dtype=torch.int32)
    states = state_at[:-1]

    def put(at: Tensor, values: Tensor) -> None:
        body[at] = values.to(torch.int32)

    put(states, fst.final_graph.view(torch.int32))
    put(states + 1, fst.final_acoustic.view(torch.int32))
    put(states + final_words, per_state)
    put(arc_at, fst.ilabel)
    put(arc_at + 1, fst.olabel)
    put(arc_at + 2, fst.graph.contiguous().view(torch.int32))
    put(arc_at + 3, fst.acoustic.contiguous().view(torch.int32))
    put(arc_at + 2 + arc_weight, fst.dst)
    if fst.compact:
        put(states + 2, final_counts)
        put(_ranges(states + 3, final_counts), fst.final_tids)
        put(arc_at + 4, arc_counts)
        put(_ranges(arc_at + 5, arc_counts), fst.arc_tids)
    return body
