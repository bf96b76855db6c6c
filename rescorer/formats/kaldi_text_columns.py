"""Kaldi text entries parsed from their bytes at once: the fast path of ``kaldi_text``.

An entry's lines (arcs and final states, see ``kaldi_text``) are parsed with
numpy over the entry's whole byte buffer (``text_fields.py``): token and line
boundaries from masks, each line's fields by its first token and its field
count, numbers as array arithmetic, the ``graph,acoustic,ids`` weights split at
their commas and the transition ids (``1_2_3``) at their underscores into the
ragged ids, all without a Python loop over lines, arcs or ids.

Only input the line parser (``kaldi_text.parse_text_fst``) would read without
complaint takes this path: non-ASCII bytes, control bytes (CR included),
numbers outside the plain forms (``+5``, ``1_0``, ``inf``), ids out of range,
any line the line parser would reject: ``parse_text_entry`` hands all of those
to the line parser, which gives the same result or the exact error with its
line number. So both paths agree on every input by construction.
"""
from typing import Optional, Tuple

import numpy as np
import torch

from rescorer.formats.kaldi_lattice import INT32_MAX, KaldiFst
from rescorer.formats.kaldi_text import Weights, assemble_fst, parse_text_fst
from rescorer.formats.text_fields import (has_control_bytes, parse_floats, parse_ints,
                                          token_bounds)
from rescorer.lattice.fsavec import splits_from_counts

_COMMA, _UNDERSCORE, _NEWLINE = ord(","), ord("_"), 10


def parse_text_entry(raw: bytes, first_line: int) -> KaldiFst:
    """The FST of one text entry from its bytes (vectorised, else the line parser).

    Args:
      raw:
        The entry from the end of its key (the rest of the key line, its newline,
        then one line per arc or final state, possibly a blank line).
      first_line:
        The line number of the first arc/final line in its file (for messages).

    Raises:
      InputFormatError: as ``parse_text_fst``.
      UnicodeDecodeError: the entry is not UTF-8 text.
    """
    body = raw[raw.find(b"\n") + 1:] if b"\n" in raw else b""
    fst = _parse_fast(body.rstrip(b" \t\n")) if body.isascii() else None
    if fst is not None:
        return fst
    lines = raw.decode("utf-8").split("\n")[1:]  # [0] is the rest of the key line
    if lines and not lines[-1].strip():
        lines.pop()
    return parse_text_fst(lines, first_line)


def _parse_fast(body: bytes) -> Optional[KaldiFst]:
    """The FST of an entry's lines without the trailing blank line, or None (line parser)."""
    if not body or body.endswith(b"\n"):
        return None
    chars = np.frombuffer(body, dtype=np.uint8)
    if has_control_bytes(chars):
        return None
    starts, ends = token_bounds(chars)
    newlines = np.flatnonzero(chars == _NEWLINE)  # (L-1,)
    num_lines = newlines.size + 1
    line_of = np.searchsorted(newlines, starts)  # (T,) the line of each token
    counts = np.bincount(line_of, minlength=num_lines)  # (L,) fields per line
    if counts.min() < 1 or counts.max() > 5:
        return None
    first = splits_from_counts(torch.from_numpy(counts)).numpy()[:-1]  # (L,) first token
    compact = _is_compact(chars, starts, ends, first, counts)
    if compact is None:
        return None
    arc_rows, final_rows = np.flatnonzero(counts >= 3), np.flatnonzero(counts <= 2)
    columns = [first, first[arc_rows] + 1, first[arc_rows] + 2]
    if not compact:
        columns.append(first[arc_rows] + 3)
    ints = _ints(starts, ends, chars, np.concatenate(columns))
    if ints is None:
        return None
    states, dst = ints[:num_lines], ints[num_lines:num_lines + arc_rows.size]
    labels = np.split(ints[num_lines + arc_rows.size:], 1 if compact else 2)
    bound = 2 * num_lines
    if int(states.max()) >= bound or (dst.size and int(dst.max()) >= bound):
        return None
    is_arc = counts >= 3
    weights = _weights(chars, starts, ends, first, counts,
                       np.where(is_arc, 3 if compact else 4, 1), compact)
    if weights is None:
        return None
    arc_weights, final_weights = _select(weights, is_arc), _select(weights, ~is_arc)
    as_tensor = torch.from_numpy
    num_states = 1 + max(int(states.max()), int(dst.max()) if dst.size else 0)
    return assemble_fst(num_states, int(states[0]), as_tensor(states[arc_rows]), as_tensor(dst),
                        as_tensor(labels[0]), as_tensor(labels[-1]), arc_weights,
                        as_tensor(states[final_rows]), final_weights, compact)


def _is_compact(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, first: np.ndarray,
                counts: np.ndarray) -> Optional[bool]:
    """True for a CompactLattice, False for a Lattice, None for a mix (the line parser's error)."""
    four = np.flatnonzero(counts == 4)
    last = first[four] + 3  # a 4-field line is a Lattice arc when its last field is digits
    _, digits = parse_ints(chars, starts[last], ends[last], python_fallback=False)
    lattice_lines = (counts == 5).any() or bool(digits.any())
    compact_lines = (counts == 3).any() or bool((~digits).any())
    if lattice_lines and compact_lines:
        return None
    return not lattice_lines


def _ints(starts: np.ndarray, ends: np.ndarray, chars: np.ndarray, tokens: np.ndarray
          ) -> Optional[np.ndarray]:
    """1-D int64 array: the ``tokens`` as plain digit strings in 0..INT32_MAX, or None."""
    values, ok = parse_ints(chars, starts[tokens], ends[tokens], python_fallback=False)
    if not bool(ok.all()) or (values.size and int(values.max()) > INT32_MAX):
        return None
    return values


def _weights(chars: np.ndarray, starts: np.ndarray, ends: np.ndarray, first: np.ndarray,
             counts: np.ndarray, column: np.ndarray, compact: bool
             ) -> Optional[Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Each line's weight, in field ``column[line]`` (One where absent), or None (line parser).

    A weight is ``graph,acoustic`` or, in a CompactLattice, ``graph,acoustic,ids``
    with the transition ids joined by ``_`` (possibly none).

    Returns:
      ``(graph, acoustic, id_counts, ids)``: float64, float64 and int64 arrays of
      shape (L,), and the int64 ids of all lines in line order.
    """
    present = counts > column  # (L,)
    token = (first + column)[present]  # (P,)
    begin, end = starts[token], ends[token]
    commas = np.flatnonzero(chars == _COMMA)
    # Each comma's weight token (commas elsewhere: the line parser's business).
    owner = np.searchsorted(begin, commas, side="right") - 1
    if commas.size and (owner.min() < 0 or bool((commas >= end[owner]).any())):
        return None
    num_commas = np.bincount(owner, minlength=token.size)  # (P,)
    if bool((num_commas < 1).any()) or int(num_commas.max(initial=1)) > (2 if compact else 1):
        return None
    first_comma = splits_from_counts(torch.from_numpy(num_commas)).numpy()[:-1]  # (P,)
    comma1 = commas[first_comma]
    comma2 = np.where(num_commas == 2, commas[np.minimum(first_comma + 1, commas.size - 1)], end)
    costs, ok = parse_floats(chars, np.concatenate([begin, comma1 + 1]),
                             np.concatenate([comma1, comma2]), python_fallback=False)
    ids = _transition_ids(chars, np.minimum(comma2 + 1, end), end)
    if not bool(ok.all()) or ids is None:
        return None
    graph, acoustic = np.zeros(counts.size), np.zeros(counts.size)  # One: 0,0 without ids
    graph[present], acoustic[present] = np.split(costs, 2)
    id_counts = np.zeros(counts.size, dtype=np.int64)
    id_counts[present] = ids[0]
    return graph, acoustic, id_counts, ids[1]


def _select(weights: Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], rows: np.ndarray
            ) -> Weights:
    """The weights of the lines where ``rows`` (1-D bool, (L,)) is True, as tensors."""
    graph, acoustic, id_counts, ids = weights
    id_rows = np.repeat(rows, id_counts)  # (I,) the row mask of each id's line
    return (torch.from_numpy(graph[rows].astype(np.float32)),
            torch.from_numpy(acoustic[rows].astype(np.float32)),
            splits_from_counts(torch.from_numpy(id_counts[rows])), torch.from_numpy(ids[id_rows]))


def _transition_ids(chars: np.ndarray, begin: np.ndarray, end: np.ndarray
                    ) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Per segment ``chars[begin:end]`` (``"12_7_3"``, maybe empty) its ids, ragged.

    Args:
      begin: 1-D int64 array of shape (P,), sorted disjoint segment starts.
      end: 1-D int64 array of shape (P,), their ends.

    Returns:
      ``(counts, ids)``: 1-D int64 arrays of shape (P,) and (counts.sum(),), or
      None when an id is empty, not digits, longer than 10 digits or above
      INT32_MAX, or an underscore lies outside the segments.
    """
    underscores = np.flatnonzero(chars == _UNDERSCORE)  # (U,) sorted
    inside = np.searchsorted(underscores, end) - np.searchsorted(underscores, begin)  # (P,)
    if int(inside.sum()) != underscores.size:
        return None  # an underscore outside the id fields
    nonempty = end > begin
    counts = np.where(nonempty, inside + 1, 0)
    # Segment s's ids fill slots offset[s] .. offset[s] + counts[s] - 1, in order: the
    # first starts at begin[s], the others after an underscore; the last ends at
    # end[s], the others at an underscore (segments are sorted and disjoint).
    total = int(counts.sum())
    offset = np.cumsum(counts) - counts
    first_slot = np.zeros(total, dtype=bool)
    first_slot[offset[nonempty]] = True
    last_slot = np.zeros(total, dtype=bool)
    last_slot[(offset + counts - 1)[nonempty]] = True
    id_starts = np.empty(total, dtype=np.int64)
    id_starts[first_slot], id_starts[~first_slot] = begin[nonempty], underscores + 1
    id_ends = np.empty(total, dtype=np.int64)
    id_ends[last_slot], id_ends[~last_slot] = end[nonempty], underscores
    lengths = id_ends - id_starts
    if lengths.size and (lengths.min() < 1 or lengths.max() > 10):
        return None
    values, ok = parse_ints(chars, id_starts, id_ends, python_fallback=False)
    if not bool(ok.all()) or (values.size and int(values.max()) > INT32_MAX):
        return None
    return counts, values
