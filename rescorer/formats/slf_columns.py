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

The same columns come from one of two routes: the compiled ``_slf_block`` (one
pass of C over the block, when the package was built with a C compiler) and,
where it refuses or is missing, the numpy route of ``text_fields.py``. Where the
C route accepts a block, both give the same values bit for bit
(``tests/formats/test_slf_block_native.py``).
"""
import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from rescorer.formats.slf_graph import MAX_NODE_ID, LinkBlock, NodeBlock, SlfGraph, line_words
from rescorer.formats.text_fields import (has_control_bytes, parse_floats, parse_ints,
                                          token_bounds, token_matrix)

# Keys with a meaning on node/link lines, under any of their names; a layout may
# only use the short names, each once.
_ALIAS_KEYS = frozenset(["NODE", "LINK", "WORD", "START", "END", "acoustic", "language"])
_LEADS = frozenset(["I", "J"])
# White space other than space/tab/newline: str.split splits on it, lines don't.
_OTHER_SPACE = re.compile(r"[^\S \t\n]")
MAX_WORD_BYTES = 256  # blocks with longer words go to the line parser

try:
    from rescorer.formats import _slf_block
except ImportError:  # installed without a C compiler: the numpy route reads the same values
    _slf_block = None


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
    if len(names) != width or not _layout_ok(names, lead):
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


def _layout_ok(names: Sequence[str], lead: str) -> bool:
    """True for a layout the fast path takes: ``lead`` first, short keys, each once."""
    return (names[0] == lead and len(set(names)) == len(names)
            and not _ALIAS_KEYS.intersection(names) and _LEADS.intersection(names) == {lead})


def column_words(columns: BlockColumns, key: str) -> Optional[Tuple[List[str], np.ndarray]]:
    """The values of column ``key`` as strings, decoding each distinct value once.

    Returns:
      ``(distinct, codes)`` as ``BlockValues.words``, or None when a value is
      longer than ``MAX_WORD_BYTES``.
    """
    starts, ends = columns.values[key]
    lengths = ends - starts
    width = int(lengths.max())
    if width > MAX_WORD_BYTES:
        return None
    matrix = token_matrix(columns.chars, starts, width).T.copy()  # (lines, W)
    matrix[np.arange(width)[None, :] >= lengths[:, None]] = 0  # no NUL in the block
    unique, inverse = np.unique(matrix.view(f"S{width}").ravel(), return_inverse=True)
    return [value.decode("utf-8") for value in unique.tolist()], inverse.ravel().astype(np.int64)


@dataclass(frozen=True)
class BlockValues:
    """The parsed columns of a uniform block.

    Attributes:
      num_lines:
        The number of lines.
      numbers:
        ``{key: (values, ok)}`` for the block's int and float keys: 1-D int64 or
        float64 arrays of shape (lines,) and 1-D bool arrays of shape (lines,),
        False where the value does not parse (the value is 0 there).
      words:
        ``(distinct, codes)``: the distinct values of the word key and, 1-D int64
        array of shape (lines,), each line's index into them; None when the
        layout lacks the key.
    """

    num_lines: int
    numbers: Dict[str, Tuple[np.ndarray, np.ndarray]]
    words: Optional[Tuple[List[str], np.ndarray]]

    def word_list(self) -> List[Optional[str]]:
        """The word of each line (None for all without the word key)."""
        if self.words is None:
            return [None] * self.num_lines
        return line_words(*self.words)


def block_values(text: str, lead: str, int_keys: Tuple[str, ...], float_keys: Tuple[str, ...],
                 word_key: str, bounds: Optional[Tuple[int, int]] = None) -> Optional[BlockValues]:
    """The int, float and word columns of a uniform block (those in its layout), or None.

    The compiled route first; where it refuses (or was not built), the numpy
    route, which takes more number forms and decides the rest (see the module
    docstring).

    Args:
      text:
        The block, or the text holding it at ``bounds``.
      bounds:
        ``(start, end)``: the block is ``text[start:end]`` (default: all of ``text``).
    """
    start, end = (0, len(text)) if bounds is None else bounds
    if _slf_block is not None:
        values = _native_values(text, start, end, lead, int_keys, float_keys, word_key)
        if values is not None:
            return values
    block = text if bounds is None else text[start:end]
    columns = block_columns(block, lead, (*int_keys, *float_keys, word_key))
    if columns is None:
        return None
    numbers = {}
    for keys, parse in ((int_keys, parse_ints), (float_keys, parse_floats)):
        present = [key for key in keys if key in columns.values]
        if present:  # one parse call for all columns of a kind
            values, ok = parse(columns.chars, *_joined(columns, present))
            numbers.update(zip(present, zip(np.split(values, len(present)),
                                            np.split(ok, len(present)))))
    words = None
    if word_key in columns.values:
        words = column_words(columns, word_key)
        if words is None:
            return None
    return BlockValues(columns.num_lines, numbers, words)


def _native_values(text: str, start: int, end: int, lead: str, int_keys: Tuple[str, ...],
                   float_keys: Tuple[str, ...], word_key: str) -> Optional[BlockValues]:
    """``block_values`` of ``text[start:end]`` by the compiled ``_slf_block``, or None where it refuses.

    An ASCII text is read in place; any other is encoded first (the block only).
    """
    if text.isascii():
        parsed = _slf_block.block_values(text, start, end, lead, int_keys, float_keys, word_key)
    else:
        data = text[start:end].encode("utf-8")
        parsed = _slf_block.block_values(data, 0, len(data), lead, int_keys, float_keys, word_key)
    if parsed is None:
        return None
    names, num_lines, columns, word_index, distinct = parsed
    if not _layout_ok(names, lead) or any(_OTHER_SPACE.search(word) for word in distinct
                                           if not word.isascii()):
        return None
    numbers = {}
    for key, raw in columns.items():
        values = np.frombuffer(raw, dtype=np.int64 if key in int_keys else np.float64)
        numbers[key] = (values, np.ones(num_lines, dtype=bool))
    words = None if word_index is None else (distinct, np.frombuffer(word_index, dtype=np.int64))
    return BlockValues(num_lines, numbers, words)


def fast_nodes(graph: SlfGraph, text: str, bounds: Tuple[int, int], first_line: int) -> bool:
    """Add the node lines of the block ``text[start:end]`` (line ``first_line`` first) if uniform.

    Returns:
      True when added; False (graph untouched) when the line parser must do it.
    """
    values = block_values(text, "I", ("I",), ("t",), "W", bounds)
    if values is None:
        return False
    nodes, ok = values.numbers["I"]
    if not bool(ok.all()) or int(nodes.min()) < 0 or graph.num_node_lines():
        return False  # (the node block comes first: no node line is there yet)
    increasing = bool((nodes[1:] > nodes[:-1]).all())  # the usual order; unique without sorting
    if ((not increasing and np.unique(nodes).size != nodes.size)
            or (graph.num_nodes is not None and int(nodes.max()) >= graph.num_nodes)):
        return False
    distinct, codes = values.words if values.words is not None else \
        ([None], np.zeros(nodes.size, dtype=np.int64))
    times, timed = values.numbers.get("t", (np.zeros(nodes.size), np.zeros(nodes.size, dtype=bool)))
    graph.node_block = NodeBlock(nodes, codes, distinct, times, timed, first_line)
    return True


def fast_links(graph: SlfGraph, text: str, bounds: Tuple[int, int]) -> bool:
    """Add the link lines of the block ``text[start:end]`` if uniform (see ``fast_nodes``)."""
    values = block_values(text, "J", ("S", "E"), ("a", "l"), "W", bounds)
    if values is None or "S" not in values.numbers or "E" not in values.numbers:
        return False
    if not all(bool(ok.all()) for _, ok in values.numbers.values()):
        return False
    num_links = values.num_lines
    src, dst = values.numbers["S"][0], values.numbers["E"][0]
    top = graph.num_nodes if graph.num_nodes is not None else MAX_NODE_ID
    if min(int(src.min()), int(dst.min())) < 0 or max(int(src.max()), int(dst.max())) >= top:
        return False
    if graph.num_link_lines():
        return False  # (the link block comes last: no link line is there yet)
    zeros = np.zeros(num_links)
    graph.link_block = LinkBlock(src, dst, values.numbers.get("a", (zeros,))[0],
                                 values.numbers.get("l", (zeros,))[0], values.words)
    graph.links_word = True
    return True


def _joined(columns: BlockColumns, keys: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
    """The value ranges of several columns, one after the other (one parse call for all)."""
    return (np.concatenate([columns.values[key][0] for key in keys]),
            np.concatenate([columns.values[key][1] for key in keys]))
