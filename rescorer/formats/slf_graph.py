"""The parsed content of one SLF file.

``slf.py`` (line by line) and ``slf_columns.py`` (uniform blocks in bulk) fill an
``SlfGraph``; ``slf_lattice.graph_to_lattice`` turns it into a ``Lattice``.
"""
import array
import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from rescorer.errors import InputFormatError
from rescorer.paths import PathLike


@dataclass(frozen=True)
class NodeBlock:
    """The node lines of one uniform block, as ``slf_columns.fast_nodes`` read them.

    Attributes:
      nodes:
        1-D int64 array of shape (V,), the I= of each line (distinct, >= 0).
      codes:
        1-D int64 array of shape (V,), each line's index into ``distinct``.
      distinct:
        The distinct W= values (``[None]`` when the layout has no W=).
      times:
        1-D float64 array of shape (V,), each line's t= (0 where ``timed`` is False).
      timed:
        1-D bool array of shape (V,), True where the line has a t= that is a number.
      first_line:
        The line number of the first line.
    """

    nodes: np.ndarray
    codes: np.ndarray
    distinct: List[Optional[str]]
    times: np.ndarray
    timed: np.ndarray
    first_line: int


@dataclass(frozen=True)
class LinkBlock:
    """The link lines of one uniform block, as ``slf_columns.fast_links`` read them.

    Attributes:
      src, dst:
        1-D int64 arrays of shape (L,), the S= and E= of each line.
      am, lm:
        1-D float64 arrays of shape (L,), the raw a= and l= (0 where the layout has none).
      words:
        ``(distinct, codes)``: the distinct W= values and, 1-D int64 array of
        shape (L,), each line's index into them; None when the layout has no W=.
    """

    src: np.ndarray
    dst: np.ndarray
    am: np.ndarray
    lm: np.ndarray
    words: Optional[Tuple[List[str], np.ndarray]]


@dataclass
class SlfGraph:
    """Nodes, links and header values of one SLF lattice, as read."""

    utt_id: str
    lmscale: float = 1.0
    wdpenalty: float = 0.0
    acscale: float = 1.0
    base: float = math.e
    start: Optional[int] = None
    end: Optional[int] = None
    num_nodes: Optional[int] = None  # N= header
    num_links: Optional[int] = None  # L= header
    # Node lines read in bulk (slf_columns.fast_nodes), kept as columns until a dict of
    # them is asked for (node_words, node_lines, node_times) or a node line is added.
    node_block: Optional["NodeBlock"] = None
    _node_words: Dict[int, Optional[str]] = field(default_factory=dict)
    _node_lines: Dict[int, int] = field(default_factory=dict)
    _node_times: Dict[int, float] = field(default_factory=dict)  # t= (seconds), where it parses
    # Link lines read in bulk (slf_columns.fast_links), kept as they came, or else the
    # columns the line parser appends to: S= and E= (int64), raw a= and l= (float64),
    # W= (None if absent).
    link_block: Optional[LinkBlock] = None
    link_src: array.array = field(default_factory=lambda: array.array("q"))
    link_dst: array.array = field(default_factory=lambda: array.array("q"))
    _link_words: List[Optional[str]] = field(default_factory=list)
    link_am: array.array = field(default_factory=lambda: array.array("d"))
    link_lm: array.array = field(default_factory=lambda: array.array("d"))
    links_word: Optional[bool] = None  # set once a link line is seen

    def add_node(self, node: int, word: Optional[str], time: Optional[float], path: PathLike,
                 line_number: int) -> None:
        """Record node ``node`` with its optional word and time."""
        if self.node_block is not None:
            self._unpack_block()
        if node in self._node_lines:
            raise InputFormatError(f"node {node} defined twice (first on line "
                                   f"{self._node_lines[node]})", path=path, utt_id=self.utt_id,
                                   where=f"line {line_number}")
        if node < 0 or (self.num_nodes is not None and node >= self.num_nodes):
            raise InputFormatError(f"node id {node} out of range (expected 0..{self._top()})",
                                   path=path, utt_id=self.utt_id, where=f"line {line_number}")
        self._node_words[node] = word
        self._node_lines[node] = line_number
        if time is not None:
            self._node_times[node] = time

    @property
    def node_words(self) -> Dict[int, Optional[str]]:
        """``{node: W= or None}`` of every node line, in file order."""
        self._unpack_block()
        return self._node_words

    @property
    def node_lines(self) -> Dict[int, int]:
        """``{node: line number}`` of every node line, in file order."""
        self._unpack_block()
        return self._node_lines

    @property
    def node_times(self) -> Dict[int, float]:
        """``{node: t=}`` of the node lines whose t= is a number."""
        self._unpack_block()
        return self._node_times

    def _unpack_block(self) -> None:
        """Move the bulk-read node lines into the dicts (once, for the rare callers)."""
        block, self.node_block = self.node_block, None
        if block is not None:
            nodes = block.nodes.tolist()
            words = line_words(block.distinct, block.codes)
            self._node_words.update(zip(nodes, words))
            first = block.first_line
            self._node_lines.update(zip(nodes, range(first, first + len(nodes))))
            self._node_times.update(zip(block.nodes[block.timed].tolist(),
                                        block.times[block.timed].tolist()))

    def num_node_lines(self) -> int:
        """How many node lines there are."""
        return self.node_block.nodes.size if self.node_block is not None else len(self._node_lines)

    def highest_node_line(self) -> int:
        """The highest node id with a node line (0 if none)."""
        if self.node_block is not None:
            return int(self.node_block.nodes.max())
        return max(self._node_lines, default=0)

    def node_word(self, node: int) -> Optional[str]:
        """The W= of node ``node`` (None for none or no node line)."""
        block = self.node_block
        if block is None:
            return self._node_words.get(node)
        where = np.flatnonzero(block.nodes == node)
        return block.distinct[block.codes[where[0]]] if where.size else None

    def add_link(self, src: int, dst: int, word: Optional[str], am: float, lm: float,
                 path: PathLike, line_number: int) -> None:
        """Record one link S->E with its optional word and raw a=, l= values."""
        for node in (src, dst):
            top = self.num_nodes if self.num_nodes is not None else MAX_NODE_ID
            if node < 0 or node >= top:
                raise InputFormatError(f"link node {node} out of range (expected "
                                       f"0..{self._top()})", path=path, utt_id=self.utt_id,
                                       where=f"line {line_number}")
        assert self.link_block is None, "the link block is the file's last"
        self.links_word = True
        self.link_src.append(src)
        self.link_dst.append(dst)
        self._link_words.append(word)
        self.link_am.append(am)
        self.link_lm.append(lm)

    def num_link_lines(self) -> int:
        """How many link lines there are."""
        return self.link_block.src.size if self.link_block is not None else len(self.link_src)

    def links_have_words(self) -> Optional[bool]:
        """True if every link line has a W=, False if none has, None for a mix."""
        block = self.link_block
        if block is not None:
            return block.words is not None
        missing = self._link_words.count(None)
        return False if missing == len(self._link_words) else True if missing == 0 else None

    @property
    def link_words(self) -> List[Optional[str]]:
        """The W= of each link line (None where it has none)."""
        block = self.link_block
        if block is None:
            return self._link_words
        if block.words is None:
            return [None] * block.src.size
        return line_words(*block.words)

    def node_word_codes(self) -> Tuple[np.ndarray, np.ndarray, List[Optional[str]]]:
        """``(nodes, codes, distinct)``: the nodes with an ``I=`` line (V,) int64, each one's
        index (V,) int64 into the distinct words (None: no ``W=``)."""
        if self.node_block is not None:
            return self.node_block.nodes, self.node_block.codes, self.node_block.distinct
        index: Dict[Optional[str], int] = {}
        codes = [index.setdefault(word, len(index)) for word in self.node_words.values()]
        nodes = np.fromiter(self.node_words.keys(), dtype=np.int64, count=len(self.node_words))
        return nodes, np.array(codes, dtype=np.int64), list(index)

    def link_columns(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(src, dst) 1-D int64 and (a, l) 1-D float64 arrays of shape (L,), views of the columns."""
        block = self.link_block
        if block is not None:
            return block.src, block.dst, block.am, block.lm
        return (_view(self.link_src, np.int64), _view(self.link_dst, np.int64),
                _view(self.link_am, np.float64), _view(self.link_lm, np.float64))

    def _top(self) -> str:
        return "N-1" if self.num_nodes is None else str(self.num_nodes - 1)

    def check_counts(self, path: PathLike, counts_line: int) -> None:
        """N= and L= must match the node and link lines (each node needs an I= line).

        Also bounds every node id by the size of the input before anything is
        allocated per node: ids must be below N= when declared, else below the
        number of nodes the lines can name (node lines + 2 per link), and a
        declared N= without node lines may not exceed 2 per link.
        """
        where = f"line {counts_line}" if counts_line else None
        if self.num_nodes is not None and self.num_node_lines() not in (0, self.num_nodes):
            raise InputFormatError(f"N={self.num_nodes} but {self.num_node_lines()} node lines",
                                   path=path, utt_id=self.utt_id, where=where)
        num_links = self.num_link_lines()
        if self.num_links is not None and num_links != self.num_links:
            raise InputFormatError(f"L={self.num_links} but {num_links} link lines",
                                   path=path, utt_id=self.utt_id, where=where)
        if not num_links:
            raise InputFormatError("the lattice has no links", path=path, utt_id=self.utt_id)
        if self.num_nodes is not None and not self.num_node_lines() and \
                self.num_nodes > 2 * num_links:
            raise InputFormatError(f"N={self.num_nodes} nodes but only {num_links} "
                                   "links and no node lines (expected N <= 2 x links)",
                                   path=path, utt_id=self.utt_id, where=where)
        limit = self.num_nodes if self.num_nodes is not None else \
            self.num_node_lines() + 2 * num_links
        src, dst, _, _ = self.link_columns()
        highest = max(int(src.max()), int(dst.max()), self.highest_node_line())
        if highest >= limit:
            bound = "" if self.num_nodes is not None else \
                " without N=: at most 2 nodes per link plus the node lines"
            raise InputFormatError(f"node id {highest} out of range (expected 0..{limit - 1}"
                                   f"{bound})", path=path, utt_id=self.utt_id)

    def node_count(self) -> int:
        """The number of nodes: N= or one more than the highest id named (after ``check_counts``)."""
        if self.num_nodes is not None:
            return self.num_nodes
        src, dst, _, _ = self.link_columns()
        return 1 + max(int(src.max()), int(dst.max()), self.highest_node_line())

    def check_defined(self, src: np.ndarray, dst: np.ndarray, num_nodes: int,
                      path: PathLike) -> None:
        """Every link end must have an I= line, when the file has node lines.

        Args:
          src:
            1-D int64 array of shape (L,), the S= node of each link.
          dst:
            1-D int64 array of shape (L,), the E= node of each link.
        """
        if self.num_node_lines() in (0, num_nodes):
            return  # no node lines, or one per node: every id in range is defined
        defined = np.zeros(num_nodes, dtype=bool)
        defined[np.fromiter(self.node_lines, dtype=np.int64, count=len(self.node_lines))] = True
        bad = ~(defined[src] & defined[dst])  # (L,)
        if bool(bad.any()):
            link = int(np.flatnonzero(bad)[0])
            node = int(src[link]) if not bool(defined[src[link]]) else int(dst[link])
            raise InputFormatError(f"link {link} ({int(src[link])}->{int(dst[link])}) names node "
                                   f"{node}, which has no I= line", path=path, utt_id=self.utt_id)


# Node ids beyond this are refused while parsing (they cannot fit an int64 column).
MAX_NODE_ID = 2**62


def line_words(distinct: List[Optional[str]], codes: np.ndarray) -> List[Optional[str]]:
    """The word of each line of a block: ``distinct[code]`` for each of ``codes`` (L,)."""
    return np.array(distinct, dtype=object)[codes].tolist()


def _view(values: array.array, dtype: type) -> np.ndarray:
    """A 1-D array sharing the memory of an ``array`` column (empty when it is)."""
    return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)
