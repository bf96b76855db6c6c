"""Column-wise reading of SLF node and link blocks: the fast path of ``slf.py``.

Machine-written SLF files repeat one layout on every node line and on every link
line: the same ``key=value`` fields in the same order (asr-dev: ``I= t= W= v=`` and
``J= S= E= a= l= p=``). For such a block the bytes of the whole block are
parsed at once with numpy (``text_fields.py``): token boundaries from masks,
each key's values one column (every ``width``-th token), numbers parsed as
array arithmetic and words mapped once per distinct word. No Python code runs
per line or per link.

A block that does not fit exactly (layouts that vary between lines, comments or
blank lines inside, quotes, alias or repeated keys, an empty value, white space
other than space/tab/newline, indented lines) or whose values would make the
line parser raise (bad numbers, node ids out of range or repeated) is refused:
``fast_nodes`` and ``fast_links`` then return False without touching the graph
and ``slf.py`` parses that block line by line, which gives the same result or
the exact error with its line number. So both paths agree on every input by
construction.
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rescorer.formats.slf_graph import MAX_NODE_ID, SlfGraph
from rescorer.formats.text_fields import (has_control_bytes, parse_floats, parse_ints,
                                          token_bounds, token_matrix)

# Keys with a meaning on node/link lines, under any of their names; a layout may
# only use the short names, each once.
_ALIAS_KEYS = frozenset(["NODE", "LINK", "WORD", "START", "END", "acoustic", "language"])
_LEADS = frozenset(["I", "J"])
# White space other than space/tab/newline: str.split splits on it, lines don't.
_OTHER_SPACE = re.compile(r"[^\S \t\n]")
MAX_WORD_BYTES = 256  # blocks with longer words go to the line parser


@dataclass(frozen=True)
class BlockColumns:
    """The values of a uniform block, as byte ranges into its buffer.

    Attributes:
      chars:
        1-D uint8 array of shape (C,), the block's bytes.
      num_lines:
        The number of lines.
      values:
        ``{key: (starts, ends)}``: 1-D int64 arrays of shape (lines,), the byte
        range of the key's value on each line.
    """

    chars: np.ndarray
    num_lines: int
    values: Dict[str, Tuple[np.ndarray, np.ndarray]]


def block_columns(block: str, lead: str, wanted: Sequence[str]) -> Optional[BlockColumns]:
    """The value ranges of the ``wanted`` keys of a uniform block, or None.

    Args:
      block:
        Lines joined by ``\\n`` without a trailing newline, each expected to start
        with ``{lead}=``.
      lead:
        ``"I"`` for node lines, ``"J"`` for link lines.
      wanted:
        Keys whose values are returned (those missing from the layout are left out).

    Returns:
      The ``BlockColumns`` of each wanted key in the layout, or
      None when the block does not have one layout on every line.
    """
    if not block or (not block.isascii() and _OTHER_SPACE.search(block)):
        return None
    data = block.encode("utf-8")
    chars = np.frombuffer(data, dtype=np.uint8)
    line_starts = np.concatenate([[0], np.flatnonzero(chars == 10) + 1])  # (lines,)
    num_lines = line_starts.size
    if b'"' in data or has_control_bytes(chars):
        return None  # quotes, NUL and odd white space: the line parser's business
    starts, ends = token_bounds(chars)
    width = starts.size // num_lines
    if width == 0 or width * num_lines != starts.size:
        return None
    if not np.array_equal(starts[::width], line_starts):
        return None  # with as many tokens as width x lines: every line has `width` of them
    keys = [data[starts[column]:ends[column]].partition(b"=") for column in range(width)]
    names = [key.decode() for key, equals, _ in keys if equals]
    if (len(names) != width or names[0] != lead or len(set(names)) != width
            or _ALIAS_KEYS.intersection(names) or _LEADS.intersection(names) != {lead}):
        return None
    values = {}
    for column, name in enumerate(names):
        first, last = starts[column::width], ends[column::width]  # (lines,)
        prefix = np.frombuffer(name.encode() + b"=", dtype=np.uint8)
        if bool((last - first < prefix.size).any()):
            return None
        for offset, byte in enumerate(prefix.tolist()):
            if not bool((chars[first + offset] == byte).all()):
                return None
        if name in wanted:
            if bool((last - first == prefix.size).any()):
                return None  # an empty value: let the line parser decide
            values[name] = (first + prefix.size, last)
    return BlockColumns(chars, num_lines, values)


def column_words(columns: BlockColumns, key: str) -> Optional[List[str]]:
    """The values of column ``key`` as strings, decoding each distinct value once.

    Returns:
      One string per line, or None when a value is longer than ``MAX_WORD_BYTES``.
    """
    starts, ends = columns.values[key]
    lengths = ends - starts
    width = int(lengths.max())
    if width > MAX_WORD_BYTES:
        return None
    matrix = token_matrix(columns.chars, starts, width).T.copy()  # (lines, W)
    matrix[np.arange(width)[None, :] >= lengths[:, None]] = 0  # no NUL in the block
    unique, inverse = np.unique(matrix.view(f"S{width}").ravel(), return_inverse=True)
    decoded = np.array([value.decode("utf-8") for value in unique.tolist()], dtype=object)
    return decoded[inverse.ravel()].tolist()


def fast_nodes(graph: SlfGraph, block: str, first_line: int) -> bool:
    """Add the node lines of ``block`` (its first line is ``first_line``) if uniform.

    Returns:
      True when added; False (graph untouched) when the line parser must do it.
    """
    columns = block_columns(block, "I", ("I", "W", "t"))
    if columns is None:
        return False
    nodes, ok = parse_ints(columns.chars, *columns.values["I"])
    times, times_ok = parse_floats(columns.chars, *columns.values["t"]) if "t" in columns.values \
        else (np.zeros(0), np.zeros(0, dtype=bool))
    words = column_words(columns, "W") if "W" in columns.values else [None] * nodes.size
    if not bool(ok.all()) or words is None or int(nodes.min()) < 0:
        return False
    top = graph.num_nodes
    if (np.unique(nodes).size != nodes.size or (top is not None and int(nodes.max()) >= top)
            or not graph.node_lines.keys().isdisjoint(nodes.tolist())):
        return False
    node_list = nodes.tolist()
    graph.node_words.update(zip(node_list, words))
    graph.node_lines.update(zip(node_list, range(first_line, first_line + len(node_list))))
    graph.node_times.update(zip(nodes[:times.size][times_ok].tolist(), times[times_ok].tolist()))
    return True


def fast_links(graph: SlfGraph, block: str) -> bool:
    """Add the link lines of ``block`` if uniform (see ``fast_nodes``)."""
    columns = block_columns(block, "J", ("S", "E", "W", "a", "l"))
    if columns is None or "S" not in columns.values or "E" not in columns.values:
        return False
    num_links = columns.num_lines
    ends, ends_ok = parse_ints(columns.chars, *_joined(columns, ("S", "E")))  # (2L,)
    scores = [key for key in ("a", "l") if key in columns.values]
    values, values_ok = parse_floats(columns.chars, *_joined(columns, scores))
    words = column_words(columns, "W") if "W" in columns.values else [None] * num_links
    if not (bool(ends_ok.all()) and bool(values_ok.all())) or words is None:
        return False
    top = graph.num_nodes if graph.num_nodes is not None else MAX_NODE_ID
    if int(ends.min()) < 0 or int(ends.max()) >= top:
        return False
    zeros = np.zeros(num_links)
    graph.link_src.frombytes(ends[:num_links].tobytes())
    graph.link_dst.frombytes(ends[num_links:].tobytes())
    columns_of = dict(zip(scores, np.split(values, len(scores)) if scores else []))
    graph.link_am.frombytes(columns_of.get("a", zeros).tobytes())
    graph.link_lm.frombytes(columns_of.get("l", zeros).tobytes())
    graph.link_words.extend(words)
    graph.links_word = True
    return True


def _joined(columns: BlockColumns, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """The value ranges of several columns, one after the other (one parse call for all)."""
    if not keys:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return (np.concatenate([columns.values[key][0] for key in keys]),
            np.concatenate([columns.values[key][1] for key in keys]))
