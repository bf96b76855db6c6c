"""Column-wise reading of SLF node and link blocks: the fast path of ``slf.py``.

Machine-written SLF files repeat one layout on every node line and on every link
line: the same ``key=value`` fields in the same order (asr-dev: ``I= t= W= v=`` and
``J= S= E= a= l= p=``). For such a block the tokens of all lines are split once,
each key's values are one column (every ``width``-th token), and the numbers are
converted a column at a time instead of line by line (about 10x faster than the
line parser on asr-dev, see docs/results/lattice_formats.md).

A block that does not fit exactly (layouts that vary between lines, comments or
blank lines inside, quotes, alias or repeated keys, an empty value, white space
other than space/tab/newline) or whose values would make the line parser raise
(bad numbers, node ids out of range or repeated) is refused: ``fast_nodes`` and
``fast_links`` then return False without touching the graph and ``slf.py`` parses
that block line by line, which gives the same result or the exact error with its
line number. So both paths agree on every input by construction.
"""
import array
from typing import Dict, List, Optional, Sequence

import torch

from rescorer.formats.slf_graph import MAX_NODE_ID, SlfGraph

# Keys with a meaning on node/link lines, under any of their names; a layout may
# only use the short names, each once.
_ALIAS_KEYS = frozenset(["NODE", "LINK", "WORD", "START", "END", "acoustic", "language"])
_LEADS = frozenset(["I", "J"])


def block_columns(block: str, lead: str, wanted: Sequence[str]
                  ) -> Optional[Dict[str, List[str]]]:
    """The value strings of the ``wanted`` keys of a uniform block, or None.

    Args:
      block:
        Lines joined by ``\\n`` without a trailing newline, each expected to start
        with ``{lead}=``.
      lead:
        ``"I"`` for node lines, ``"J"`` for link lines.
      wanted:
        Keys whose values are returned (those missing from the layout are left out).

    Returns:
      ``{key: [value of line 0, value of line 1, ...]}`` for each wanted key in the
      layout, or None when the block does not have one layout on every line.
    """
    if not block or '"' in block:
        return None
    tokens = block.split()
    num_lines = block.count("\n") + 1
    width = len(tokens) // num_lines
    if width == 0 or width * num_lines != len(tokens):
        return None
    # Every line starts with lead= and no other token contains it: the lead tokens
    # are the line starts, so (with column 0 checked below) every line has `width`.
    head = lead + "="
    if (not block.startswith(head) or block.count("\n" + head) != num_lines - 1
            or block.count(head) != num_lines):
        return None
    keys = [token.partition("=")[0] for token in tokens[:width]]
    if ("" in keys or len(set(keys)) != width or _ALIAS_KEYS.intersection(keys)
            or _LEADS.intersection(keys) != {lead}):
        return None
    columns, token_chars = {}, 0
    for column, key in enumerate(keys):
        joined = " " + " ".join(tokens[column::width])
        token_chars += len(joined) - num_lines
        prefix = " " + key + "="
        if joined.count(prefix) != num_lines:
            return None
        if key in wanted:
            values = joined.replace(prefix, " ").split()
            if len(values) != num_lines:  # an empty value: let the line parser decide
                return None
            columns[key] = values
    # str.split also splits on other (Unicode) white space; the line parser's lines don't.
    if token_chars + block.count(" ") + block.count("\t") + num_lines - 1 != len(block):
        return None
    return columns


def fast_nodes(graph: SlfGraph, block: str, first_line: int) -> bool:
    """Add the node lines of ``block`` (its first line is ``first_line``) if uniform.

    Returns:
      True when added; False (graph untouched) when the line parser must do it.
    """
    columns = block_columns(block, "I", ("I", "W"))
    if columns is None:
        return False
    try:
        nodes = list(map(int, columns["I"]))
    except ValueError:
        return False
    top = graph.num_nodes
    if (len(set(nodes)) != len(nodes) or not graph.node_lines.keys().isdisjoint(nodes)
            or min(nodes) < 0 or (top is not None and max(nodes) >= top)):
        return False
    words = columns.get("W", [None] * len(nodes))
    graph.node_words.update(zip(nodes, words))
    graph.node_lines.update(zip(nodes, range(first_line, first_line + len(nodes))))
    return True


def fast_links(graph: SlfGraph, block: str) -> bool:
    """Add the link lines of ``block`` if uniform (see ``fast_nodes``)."""
    columns = block_columns(block, "J", ("S", "E", "W", "a", "l"))
    if columns is None or "S" not in columns or "E" not in columns:
        return False
    num_links = len(columns["S"])
    zeros = bytes(8 * num_links)
    try:  # whole columns at once: one C-level conversion per column
        src = array.array("q", map(int, columns["S"]))
        dst = array.array("q", map(int, columns["E"]))
        am = array.array("d", map(float, columns["a"])) if "a" in columns else array.array("d", zeros)
        lm = array.array("d", map(float, columns["l"])) if "l" in columns else array.array("d", zeros)
    except (ValueError, OverflowError):
        return False
    ends = torch.cat([torch.frombuffer(src, dtype=torch.int64),
                      torch.frombuffer(dst, dtype=torch.int64)])  # (2L,)
    top = graph.num_nodes if graph.num_nodes is not None else MAX_NODE_ID
    if int(ends.min()) < 0 or int(ends.max()) >= top:
        return False
    graph.link_src.extend(src)
    graph.link_dst.extend(dst)
    graph.link_words.extend(columns.get("W", [None] * num_links))
    graph.link_am.extend(am)
    graph.link_lm.extend(lm)
    graph.links_word = True
    return True
