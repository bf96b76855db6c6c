"""The conversion of a parsed SLF file (``SlfGraph``) to a ``Lattice``.

``graph_to_lattice`` applies the score and word conventions documented in
``slf.py``: the arc columns are built in numpy, each becomes a tensor once.
"""
import math
from typing import Callable, Optional

import numpy as np
import torch
from torch import Tensor

from rescorer.errors import InputFormatError
from rescorer.formats.slf_graph import SlfGraph
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike

def _terminal(graph: SlfGraph, nodes: np.ndarray, header: Optional[int], side: str,
              num_nodes: int, path: PathLike) -> int:
    """The start (end) node: the header value or the only node without in (out) links.

    Args:
      nodes:
        1-D int64 array of shape (L,), the E= (S=) node of each link.
    """
    if header is not None:
        if not 0 <= header < num_nodes:
            raise InputFormatError(f"{side}={header} out of range (expected 0..{num_nodes - 1})",
                                   path=path, utt_id=graph.utt_id)
        return header
    has = np.zeros(num_nodes, dtype=bool)
    has[nodes] = True
    candidates = np.flatnonzero(~has).tolist()
    if len(candidates) != 1:
        kind = "incoming" if side == "start" else "outgoing"
        raise InputFormatError(f"cannot tell the {side} node: {len(candidates)} nodes without "
                               f"{kind} links {candidates[:5]} (add a {side}= header)",
                               path=path, utt_id=graph.utt_id)
    return candidates[0]


def graph_to_lattice(graph: SlfGraph, symbols: SymbolTable,
                     is_filler: Callable[[str], bool], path: PathLike) -> Lattice:
    """Apply the SLF conventions (see ``slf.py``) and build the ``Lattice``.

    The arc columns are built in numpy and become tensors once, at the end.
    """
    num_nodes = graph.node_count()
    src, dst, raw_am, raw_lm = graph.link_columns()
    graph.check_defined(src, dst, num_nodes, path)
    start = _terminal(graph, dst, graph.start, "start", num_nodes, path)
    end = _terminal(graph, src, graph.end, "end", num_nodes, path)
    if start == end:
        raise InputFormatError(f"start and end are the same node {start}", path=path,
                               utt_id=graph.utt_id)
    if not graph.base > 0 or graph.base == 1:
        raise InputFormatError(f"unsupported base={graph.base} (expected a log base > 0, != 1)",
                               path=path, utt_id=graph.utt_id)
    words = _link_word_ids(graph, dst, num_nodes, symbols, is_filler, path)  # (L,)
    start_word = symbols.lookup_words([graph.node_word(start)], is_filler, path=path,
                                      utt_id=graph.utt_id)[0]
    into_end = dst == end  # (L,)
    collapse = not bool((src == end).any()) and not bool((words[into_end] > 0).any())
    # New state numbers: [extra start], start node, other nodes, end node, [super-final].
    offset = 1 if start_word else 0
    num_states = offset + num_nodes + (0 if collapse else 1)
    state_of_node = _state_of_node(num_nodes, start, end, offset)  # (num_nodes,)
    arcs = _ArcColumns(offset + src.size + (0 if collapse else 1))
    links = slice(offset, offset + src.size)
    arcs.src[links] = state_of_node[src]
    arcs.dst[links] = state_of_node[dst]
    arcs.words[links] = words
    arcs.labels[links] = np.where(into_end, -1, words) if collapse else words
    to_ln = math.log(graph.base) if graph.base != math.e else 1.0
    with np.errstate(all="ignore"):  # inf and nan scores are the batch check's to report
        arcs.am[links] = raw_am * (graph.acscale * to_ln)  # float64, rounded to float32
        arcs.ngram[links] = raw_lm * (graph.lmscale * to_ln) + \
            graph.wdpenalty * ((words > 0) | into_end).astype(np.float64)
        if start_word:  # the arc that carries the start node's word, first
            arcs.set(0, 0, offset, start_word, start_word, 0.0, graph.wdpenalty)
    if not collapse:  # the -1 arc (score 0, no word) from the end node to the super-final state
        arcs.set(-1, offset + num_nodes - 1, num_states - 1, -1, 0, 0.0, 0.0)
    return arcs.lattice(graph.utt_id, num_states,
                        _state_times(graph, state_of_node, num_states, start, end))


def _state_of_node(num_nodes: int, start: int, end: int, offset: int) -> np.ndarray:
    """1-D int64 array of shape (num_nodes,): each node's state.

    The start node gets ``offset``, the other nodes in increasing order the next
    states and the end node ``offset + num_nodes - 1``.
    """
    nodes = np.arange(num_nodes)
    state_of_node = nodes + (offset + 1) - (nodes > start) - (nodes > end)  # the other nodes
    state_of_node[start] = offset
    state_of_node[end] = offset + num_nodes - 1
    return state_of_node


class _ArcColumns:
    """The arc columns of one lattice under construction, numpy arrays of shape (A,)."""

    def __init__(self, num_arcs: int) -> None:
        self.src = np.empty(num_arcs, dtype=np.int64)
        self.dst = np.empty(num_arcs, dtype=np.int64)
        self.labels = np.empty(num_arcs, dtype=np.int64)
        self.words = np.empty(num_arcs, dtype=np.int64)  # one word id per arc, 0: none
        self.am = np.empty(num_arcs, dtype=np.float32)
        self.ngram = np.empty(num_arcs, dtype=np.float32)

    def set(self, arc: int, src: int, dst: int, label: int, word: int, am: float,
            ngram: float) -> None:
        """Fill in one arc added by the reader (the extra start arc or the -1 arc)."""
        self.src[arc], self.dst[arc], self.labels[arc], self.words[arc] = src, dst, label, word
        self.am[arc], self.ngram[arc] = am, ngram

    def lattice(self, utt_id: str, num_states: int, state_times: Optional[Tensor]) -> Lattice:
        """The ``Lattice`` of these columns (each becomes a tensor without a copy)."""
        is_word = self.words > 0
        word_splits = np.zeros(self.words.size + 1, dtype=np.int64)
        np.cumsum(is_word, out=word_splits[1:])
        return Lattice(
            utt_id=utt_id, num_states=num_states,
            src=torch.from_numpy(self.src), dst=torch.from_numpy(self.dst),
            labels=torch.from_numpy(self.labels), word_splits=torch.from_numpy(word_splits),
            word_ids=torch.from_numpy(self.words[is_word]),
            am_scores=torch.from_numpy(self.am), ngram_scores=torch.from_numpy(self.ngram),
            state_times=state_times,
        )


def _state_times(graph: SlfGraph, state_of_node: np.ndarray, num_states: int, start: int,
                 end: int) -> Optional[Tensor]:
    """1-D float64 tensor of shape (num_states,): each state's node time, or None.

    None unless every node has a t= that parses as a number. An added start
    state gets the start node's time, an added super-final state the end node's.

    Args:
      state_of_node:
        1-D int64 array of shape (N,), the state of each node.
    """
    num_nodes = state_of_node.size
    block = graph.node_block
    if block is not None:
        if block.nodes.size != num_nodes or not bool(block.timed.all()):
            return None
        node_times = np.empty(num_nodes)
        node_times[block.nodes] = block.times
    else:
        if len(graph.node_times) != num_nodes:
            return None
        nodes = np.fromiter(graph.node_times.keys(), dtype=np.int64, count=num_nodes)
        node_times = np.empty(num_nodes)
        node_times[nodes] = np.fromiter(graph.node_times.values(), dtype=np.float64,
                                        count=num_nodes)
    times = np.empty(num_states, dtype=np.float64)
    times[0] = node_times[start]  # the added start state, if any
    times[-1] = node_times[end]  # the added super-final state, if any
    times[state_of_node] = node_times
    return torch.from_numpy(times)


def _link_word_ids(graph: SlfGraph, dst: np.ndarray, num_nodes: int, symbols: SymbolTable,
                   is_filler: Callable[[str], bool], path: PathLike) -> np.ndarray:
    """1-D int64 array of shape (L,): each link's word id, its own word else its end node's.

    Each distinct word is looked up once, in order of first appearance along the
    links, so a growing table numbers new words as a link-by-link walk would.
    With words on nodes only, that is done per node, not per link.
    """
    have_words = graph.links_have_words()
    if have_words is False:
        return _node_word_ids(graph, dst, num_nodes, symbols, is_filler, path)[dst]
    if have_words is None:  # a mix: the rare layout of hand-written files
        words = [word if word is not None else graph.node_words.get(end_node)
                 for word, end_node in zip(graph.link_words, dst.tolist())]
    else:
        words = graph.link_words
    distinct = list(dict.fromkeys(words))  # in order of first appearance
    ids = dict(zip(distinct, symbols.lookup_words(distinct, is_filler, path=path,
                                                  utt_id=graph.utt_id)))
    return np.fromiter(map(ids.__getitem__, words), dtype=np.int64, count=len(words))


def _node_word_ids(graph: SlfGraph, dst: np.ndarray, num_nodes: int, symbols: SymbolTable,
                   is_filler: Callable[[str], bool], path: PathLike) -> np.ndarray:
    """1-D int64 array of shape (num_nodes,): the word id of each node (0: none, filler).

    Words are looked up in the order in which links first enter their nodes; a
    word the table answered before needs no lookup (``SymbolTable.remembered_ids``),
    so only the others are put in that order. The words of nodes that no link
    enters are not looked up (their ids are never used).

    Args:
      dst:
        1-D int64 array of shape (L,), the E= node of each link.
    """
    nodes, codes, distinct = graph.node_word_codes()
    remembered = symbols.remembered_ids(distinct, is_filler)
    if None in remembered:
        missing = np.zeros(len(distinct) + 1, dtype=bool)  # the last code: nodes without I= line
        missing[[code for code, word_id in enumerate(remembered) if word_id is None]] = True
        code_of_node = np.full(num_nodes, len(distinct), dtype=np.int64)
        code_of_node[nodes] = codes
        link_codes = code_of_node[dst]  # (L,) the code of each link's end node
        wanted = link_codes[missing[link_codes]]  # (L',) in link order
        in_order = wanted[np.sort(np.unique(wanted, return_index=True)[1])].tolist()
        new = symbols.lookup_words([distinct[code] for code in in_order], is_filler, path=path,
                                   utt_id=graph.utt_id)
        for code, word_id in zip(in_order, new):
            remembered[code] = word_id
        remembered = [word_id or 0 for word_id in remembered]  # None: a node no link enters
    id_of_code = np.array(remembered + [0], dtype=np.int64)  # (len(distinct) + 1,)
    node_ids = np.zeros(num_nodes, dtype=np.int64)
    node_ids[nodes] = id_of_code[codes]
    return node_ids
