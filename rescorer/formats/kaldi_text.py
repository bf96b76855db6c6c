"""Kaldi lattices in text form (``lattice-copy ark,t``): one FST, parsed and printed.

An entry is a key line, then one line per arc or final state (fields separated
by spaces or tabs), then a blank line. As in Kaldi's ``LatticeReader::ReadText``
the first line's state is the start state, and the form is told from the lines:

- CompactLattice arc: ``src dst word graph,acoustic,ids`` (ids joined by ``_``,
  possibly none), or ``src dst word`` for weight One;
- Lattice arc: ``src dst ilabel olabel graph,acoustic``, or ``src dst ilabel olabel``;
- final state: ``state`` (weight One) or ``state graph,acoustic[,ids]``.

Costs are printed with the fewest digits that read back to the same float32,
so text <-> binary conversion is exact. Reading rejects ids that do not fit
Kaldi's int32 and state ids beyond what the entry's lines can define before
anything is allocated (a state id of 99999999999 is one line, not 800 GB).
The archive level (keys, many entries, gzip, specifiers) is ``kaldi_archive``.
This module's ``parse_text_fst`` is the line parser: entries are parsed from
their bytes at once by ``kaldi_text_columns`` and only the ones that path
refuses (and every damaged one, for its exact error) come here.
"""
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor

from rescorer.errors import Failure, InputFormatError
from rescorer.formats.kaldi_lattice import INT32_MAX, KaldiFst, ragged_rows, sort_arcs
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike


def iter_kaldi_text(path: PathLike, symbols: Optional[SymbolTable] = None
                    ) -> Iterator[Union[Lattice, Failure]]:
    """Each lattice of a Kaldi archive file (text or binary, plain or gzipped).

    Kept for ``formats.detect``; see ``kaldi_archive.iter_kaldi_archive``.
    """
    from rescorer.formats.kaldi_archive import iter_kaldi_archive

    return iter_kaldi_archive(path, symbols)


class _Lines:
    """The lines of one entry, split into fields, with their line numbers for errors."""

    def __init__(self, lines: Sequence[str], first_line: int) -> None:
        self.fields = [line.split() for line in lines]
        self.first_line = first_line

    def fail(self, index: int, message: str) -> None:
        text = " ".join(self.fields[index])[:80]
        raise InputFormatError(f"{message} in {text!r}", where=f"line {self.first_line + index}")


def parse_text_fst(lines: Sequence[str], first_line: int = 1) -> KaldiFst:
    """The FST of one text entry (the lines after the key line, blank line excluded).

    Args:
      lines:
        One string per arc or final state.
      first_line:
        The line number of ``lines[0]`` in its file (for messages).

    Raises:
      InputFormatError: a bad line (``where`` names it) or a state id out of range.
    """
    entry = _Lines(lines, first_line)
    counts = np.fromiter((len(f) for f in entry.fields), dtype=np.int64, count=len(lines))
    if counts.size == 0:
        raise InputFormatError("an entry with no lines (expected arcs and final states)")
    bad = (counts < 1) | (counts > 5)
    if bad.any():
        index = int(bad.nonzero()[0][0])
        entry.fail(index, f"{counts[index]} fields (expected 1 to 5)")
    compact = _is_compact(entry, counts)
    final_rows = (counts <= 2).nonzero()[0]
    arc_rows = (counts >= 3).nonzero()[0]
    states = _ints(entry, range(len(lines)), 0, "state id")
    bound = 2 * len(lines)  # no entry defines more states than twice its lines
    if int(states.max()) >= bound:
        index = int(states.argmax())
        entry.fail(index, f"state id {int(states.max())} (expected below {bound}: an entry of "
                          f"{len(lines)} lines defines at most that many states)")
    dst = _ints(entry, arc_rows, 1, "state id")
    if dst.numel() and int(dst.max()) >= bound:
        index = int(arc_rows[int(dst.argmax())])
        entry.fail(index, f"state id {int(dst.max())} (expected below {bound}: an entry of "
                          f"{len(lines)} lines defines at most that many states)")
    if compact:
        labels = _ints(entry, arc_rows, 2, "label")
        ilabel = olabel = labels
    else:
        ilabel, olabel = _ints(entry, arc_rows, 2, "label"), _ints(entry, arc_rows, 3, "label")
    weight_column = 3 if compact else 4
    arc_weights = _weights(entry, arc_rows, weight_column, compact)
    final_weights = _weights(entry, final_rows, 1, compact)
    num_states = 1 + max(int(states.max()), int(dst.max()) if dst.numel() else 0)
    return assemble_fst(num_states, int(states[0]), states[arc_rows], dst, ilabel, olabel,
                        arc_weights, states[final_rows], final_weights, compact)


def _is_compact(entry: _Lines, counts: np.ndarray) -> bool:
    """True for a CompactLattice, False for a Lattice, from the column counts."""
    four = (counts == 4).nonzero()[0]
    # A 4-field line is a Lattice arc when its last field is an integer (an olabel).
    label = np.fromiter((entry.fields[i][3].isdigit() for i in four), dtype=bool, count=four.size)
    votes_compact = np.concatenate([(counts == 3).nonzero()[0], four[~label]])
    votes_lattice = np.concatenate([(counts == 5).nonzero()[0], four[label]])
    if votes_compact.size and votes_lattice.size:
        entry.fail(int(max(votes_compact.min(), votes_lattice.min())),
                   "a Lattice arc line and a CompactLattice arc line in one entry")
    return votes_lattice.size == 0


def _ints(entry: _Lines, rows: Sequence[int], column: int, what: str) -> Tensor:
    """1-D int64 tensor: column ``column`` of ``rows``, each in 0..INT32_MAX."""
    texts = [entry.fields[i][column] for i in rows]
    try:
        values = np.array(texts, dtype=np.int64) if texts else np.zeros(0, dtype=np.int64)
    except (ValueError, OverflowError):
        values = None
    if values is None or (values.size and (values.min() < 0 or values.max() > INT32_MAX)):
        for index, text in zip(rows, texts):  # find the first bad line for the message
            if not (text.isdigit() and int(text) <= INT32_MAX):
                entry.fail(index, f"bad {what} {text[:30]!r} (expected an integer in "
                                  f"0..{INT32_MAX})")
    return torch.from_numpy(values)


Weights = Tuple[Tensor, Tensor, Tensor, Tensor]  # graph, acoustic, id splits, ids


def _weights(entry: _Lines, rows: Sequence[int], column: int, compact: bool) -> Weights:
    """The weights in column ``column`` of ``rows`` (One where the column is absent)."""
    texts = [entry.fields[i][column] if len(entry.fields[i]) > column else "0,0" for i in rows]
    parts = [text.split(",") for text in texts]
    for index, part in zip(rows, parts):
        if len(part) != 2 and not (compact and len(part) == 3):
            entry.fail(index, f"bad weight {entry.fields[index][column]!r} "
                              "(expected graph_cost,acoustic_cost)")
    try:
        costs = np.array([part[:2] for part in parts], dtype=np.float64).reshape(-1, 2)
        id_texts = [part[2] if len(part) == 3 else "" for part in parts]
        counts = np.fromiter((text.count("_") + 1 if text else 0 for text in id_texts),
                             dtype=np.int64, count=len(id_texts))
        ids = parse_id_block("_".join(text for text in id_texts if text))
    except (ValueError, OverflowError):
        costs = ids = counts = None
    if costs is None or (ids.size and (ids.min() < 0 or ids.max() > INT32_MAX)):
        _first_bad_weight(entry, rows, column)
    with np.errstate(over="ignore"):  # beyond float32: inf, refused as a non-finite score
        graph, acoustic = costs[:, 0].astype(np.float32), costs[:, 1].astype(np.float32)
    return (torch.from_numpy(graph), torch.from_numpy(acoustic),
            splits_from_counts(torch.from_numpy(counts)), torch.from_numpy(ids))


def parse_id_block(text: str) -> np.ndarray:
    """1-D int64 array of the non-negative integers of ``"12_7_7_3"``, parsed with numpy.

    Raises:
      ValueError: an empty id, a character other than digits and ``_``, or an id
        of more than 10 digits.
    """
    if not text:
        return np.zeros(0, dtype=np.int64)
    chars = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
    is_sep = chars == ord("_")
    digits = chars.astype(np.int64) - ord("0")
    is_digit = (digits >= 0) & (digits <= 9)
    ends = np.append(np.flatnonzero(is_sep), chars.size)  # (T,) end of each id
    lengths = np.diff(np.concatenate([[-1], ends])) - 1  # (T,) digits per id
    if not bool((is_sep | is_digit).all()) or lengths.min() < 1 or lengths.max() > 10:
        raise ValueError(f"bad transition ids {text[:40]!r}")
    power = np.repeat(lengths, lengths + 1) - 1 - (np.arange(chars.size + 1)
                                                   - np.repeat(ends - lengths, lengths + 1))
    power = power[:chars.size]  # (C,) decimal position of each digit within its id
    contribution = np.where(is_digit, digits * _POWERS_OF_TEN[np.clip(power, 0, 10)], 0)
    return np.add.reduceat(contribution, ends - lengths)  # (T,) exact int64 sums


_POWERS_OF_TEN = 10 ** np.arange(11, dtype=np.int64)


def _first_bad_weight(entry: _Lines, rows: Sequence[int], column: int) -> None:
    """Raise for the first weight whose numbers do not parse (the slow path)."""
    for index in rows:
        text = entry.fields[index][column] if len(entry.fields[index]) > column else "0,0"
        parts = text.split(",")
        try:
            [float(value) for value in parts[:2]]
            ids = [int(value) for value in parts[2].split("_")] if len(parts) > 2 and parts[2] else []
        except ValueError:
            entry.fail(index, f"bad weight {text!r} (expected two numbers, then ids joined by _)")
        if any(not 0 <= value <= INT32_MAX for value in ids):
            entry.fail(index, f"bad transition id in {text!r} (expected 0..{INT32_MAX})")
    raise AssertionError("a weight failed to parse but every line parses alone")


def assemble_fst(num_states: int, start: int, src: Tensor, dst: Tensor, ilabel: Tensor,
              olabel: Tensor, arc_weights: Weights, final_states: Tensor,
              final_weights: Weights, compact: bool) -> KaldiFst:
    """A ``KaldiFst`` from parsed columns (a later final line for a state wins, as in Kaldi)."""
    final_graph = torch.full((num_states,), float("inf"))
    final_acoustic = torch.full((num_states,), float("inf"))
    graph, acoustic, splits, ids = final_weights
    last = torch.full((num_states,), -1, dtype=torch.int64)
    last[final_states] = torch.arange(final_states.numel())  # the last row per state wins
    chosen = last[last >= 0]
    states = final_states[chosen]
    final_graph[states], final_acoustic[states] = graph[chosen], acoustic[chosen]
    counts = torch.zeros(num_states, dtype=torch.int64)
    counts[states] = (splits[1:] - splits[:-1])[chosen]
    final_ids = ragged_rows(splits, ids, chosen[torch.argsort(states)])[1]
    return sort_arcs(KaldiFst(
        num_states=num_states, start=start, src=src, dst=dst, ilabel=ilabel, olabel=olabel,
        graph=arc_weights[0], acoustic=arc_weights[1], arc_tid_splits=arc_weights[2],
        arc_tids=arc_weights[3], final_graph=final_graph, final_acoustic=final_acoustic,
        final_tid_splits=splits_from_counts(counts), final_tids=final_ids, compact=compact,
    ))


def format_float(values: Tensor) -> List[str]:
    """Shortest decimal strings that read back (via float64) to the same float32 values."""
    array = values.to(torch.float32).numpy()
    texts = [str(value) for value in array]  # numpy prints float32 shortest round-trip
    back = np.array(texts, dtype=np.float64).astype(np.float32) if texts else array
    for index in np.nonzero(back != array)[0]:  # double rounding through float64: rare
        texts[index] = f"{float(array[index]):.9g}"
    return [text[:-2] if text.endswith(".0") else text for text in texts]


def format_text_fst(fst: KaldiFst) -> str:
    """The text form of an FST as ``lattice-copy ark,t`` prints it (start state first).

    The returned lines end with a newline each; the archive adds the key line and
    the blank line after them.
    """
    fst = sort_arcs(fst)
    graph, acoustic = format_float(fst.graph), format_float(fst.acoustic)
    final_graph, final_acoustic = format_float(fst.final_graph), format_float(fst.final_acoustic)
    arc_ids = _id_strings(fst.arc_tid_splits, fst.arc_tids)
    final_ids = _id_strings(fst.final_tid_splits, fst.final_tids)
    src, dst = fst.src.tolist(), fst.dst.tolist()
    ilabel, olabel = fst.ilabel.tolist(), fst.olabel.tolist()
    lines_of: List[List[str]] = [[] for _ in range(fst.num_states)]
    for arc in range(fst.num_arcs):
        one = graph[arc] == "0" and acoustic[arc] == "0" and not arc_ids[arc]
        weight = "" if one else f"\t{graph[arc]},{acoustic[arc]}" + (
            f",{arc_ids[arc]}" if fst.compact else "")
        labels = f"{olabel[arc]}" if fst.compact else f"{ilabel[arc]}\t{olabel[arc]}"
        lines_of[src[arc]].append(f"{src[arc]}\t{dst[arc]}\t{labels}{weight}\n")
    for state in fst.is_final.nonzero().flatten().tolist():
        one = final_graph[state] == "0" and final_acoustic[state] == "0" and not final_ids[state]
        weight = "" if one else f"\t{final_graph[state]},{final_acoustic[state]}" + (
            f",{final_ids[state]}" if fst.compact else "")
        lines_of[state].append(f"{state}{weight}\n")
    order = [fst.start] + [s for s in range(fst.num_states) if s != fst.start]
    return "".join(line for state in order for line in lines_of[state])


def _id_strings(splits: Tensor, ids: Tensor) -> List[str]:
    """Each row's ids joined by ``_`` ("" for none)."""
    values = [str(value) for value in ids.tolist()]
    bounds = splits.tolist()
    return ["_".join(values[bounds[i]:bounds[i + 1]]) for i in range(len(bounds) - 1)]
