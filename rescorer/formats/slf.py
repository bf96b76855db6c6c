"""HTK Standard Lattice Format (``.slf``/``.lat``, optionally gzipped), read and written.

Reading (one lattice per file):

- Words may sit on nodes (``W=`` on ``I=`` lines) or on links (``W=`` on ``J=``
  lines; a link's own word wins). As in HTK, a node's word ends at that node, so
  the link S->E carries W(E) when the link has no word of its own. Words in
  ``FILLER_WORDS``, ``++...++`` and ``[...]`` words become epsilon.
- Scores: am = acscale * a; ngram = lmscale * l + wdpenalty, the penalty only on
  links whose word is real or which enter the end node. This reproduces the
  decoder's path score for pocketsphinx lattices (asr-dev README); HTK's habit of
  adding it on every link is not followed. ``base=`` (log base) rescales a and l
  to natural logs. Missing header values: lmscale 1, wdpenalty 0, acscale 1.
- Start/end nodes come from ``start=``/``end=`` or, by default, the only node
  without incoming / outgoing links. State 0 is the start node; a real word on it
  gets its own arc from a new start state. If every link into the end node is
  epsilon and none leaves it, those links become the -1 arcs and the end node the
  final state; otherwise a super-final state is added, entered by -1 arcs with
  score 0 from the end node.
- Node times ``t=`` (seconds) become ``LatticeBatch.state_times``, on the state
  of each node; an added start state gets the start node's time and an added
  super-final state the end node's. A lattice gets times only when every node
  has a ``t=`` that is a number (otherwise none, as before times were read).

Writing puts words on links (``W=!NULL`` for none) with ``a`` = am, ``l`` = ngram,
``lmscale=1.0`` and ``wdpenalty=0.0``, so reading back is exact (floats printed
with repr); an arc with several words becomes a chain through extra nodes.
"""
import functools
import gzip
import io
import re
import zlib
from pathlib import Path
from typing import IO, Callable, Dict, List, Optional, Tuple

from rescorer.errors import InputFormatError
from rescorer.formats.slf_columns import fast_links, fast_nodes
from rescorer.formats.slf_graph import SlfGraph
from rescorer.formats.slf_lattice import graph_to_lattice
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.atomic import atomic_write_text
from rescorer.paths import PathLike

# Words that are epsilon in every lattice (plus ++...++ and [...] fillers).
FILLER_WORDS = frozenset(
    ["!NULL", "!ENTER", "!EXIT", "<s>", "</s>", "<sil>", "!SENT_START", "!SENT_END"]
)
_FIELD = re.compile(r'([A-Za-z]+)=("(?:[^"\\]|\\.)*"|\S*)')
_BODY = re.compile(r"^(?:I|J)=", re.MULTILINE)  # the first node or link line
_ALIASES = {"NODE": "I", "LINK": "J", "WORD": "W", "START": "S", "END": "E",
            "acoustic": "a", "language": "l", "NODES": "N", "LINKS": "L"}


@functools.lru_cache(maxsize=2**16)  # asked once per distinct word of each lattice
def is_filler(word: str) -> bool:
    """True for words that never reach the LM (``FILLER_WORDS``, ``++x++``, ``[x]``)."""
    return (word in FILLER_WORDS or (len(word) > 4 and word.startswith("++") and word.endswith("++"))
            or (len(word) > 1 and word.startswith("[") and word.endswith("]")))


try:  # python-isal: the same bytes and checks as zlib, inflated 3x faster (asr-dev: 0.13 s vs 0.39 s)
    from isal import isal_zlib as _INFLATE
except ImportError:
    _INFLATE = zlib

# A gzipped lattice expanding beyond this ratio (and 1 MiB) is refused: no real
# lattice text compresses that well (asr-dev: 3.5x), a gzip bomb does.
MAX_GZIP_RATIO = 100


def read_text(path: PathLike) -> str:
    """The whole text of a file, gunzipped when it starts with the gzip magic bytes.

    Line ends are normalised as Python's text files do (``\r\n`` and ``\r`` -> ``\n``).

    Raises:
      InputFormatError: the gzip data expands more than ``MAX_GZIP_RATIO`` times.
    """
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:2] == b"\x1f\x8b":
        limit = max(MAX_GZIP_RATIO * len(data), 2**20)
        data = _gunzip(data, limit + 1)
        if len(data) > limit:
            raise InputFormatError(f"gzip data expands more than {MAX_GZIP_RATIO} times "
                                   f"(beyond {limit:,} bytes); refused as corrupt", path=path)
    text = data.decode("utf-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def _gunzip(data: bytes, size: int) -> bytes:
    """At most ``size`` bytes of the gzip data ``data``, as ``gzip.GzipFile.read(size)`` gives.

    One inflate call when ``data`` is exactly one whole member; anything else
    (damage, several members, trailing bytes, output beyond ``size``) goes
    through the ``gzip`` module, so its errors are the same.
    """
    out = _inflate_member(data, size)
    if out is not None:
        return out
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as unzipped:
        return unzipped.read(size)


def _inflate_member(data: bytes, size: int) -> Optional[bytes]:
    """The content of ``data`` if it is exactly one whole gzip member of at most ``size`` bytes.

    None for anything else; never raises. The CRC and length of the trailer are checked.
    """
    unzip = _INFLATE.decompressobj(wbits=31)  # 16 + 15: a gzip header and trailer
    try:
        out = unzip.decompress(data, size)
    except _INFLATE.error:
        return None
    return out if unzip.eof and not unzip.unused_data else None


def open_text(path: PathLike) -> IO[str]:
    """Open a text file, gunzipping when it starts with the gzip magic bytes."""
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def read_slf(path: PathLike, symbols: Optional[SymbolTable] = None
             ) -> Tuple[List[Lattice], SymbolTable]:
    """Read one SLF lattice and check it (``Lattice.validate``).

    Args:
      path:
        The ``.slf``/``.lat`` file, plain or gzipped.
      symbols:
        A table read from --words (frozen: unknown words are a ``SymbolError``) or
        a growing table shared across files; None starts a new growing table.

    Returns:
      ``([lattice], symbols)``.

    Raises:
      InputFormatError: bad syntax, numbers, counts or structure (with the line).
      SymbolError: a word is missing from a frozen table.
    """
    symbols = SymbolTable() if symbols is None else symbols
    lattice = parse_slf_file(path, symbols)
    lattice.validate(path)
    return [lattice], symbols


def parse_slf_file(path: PathLike, symbols: SymbolTable) -> Lattice:
    """The lattice of one SLF file, not yet validated (``read_lattices`` checks a whole batch).

    Raises:
      As ``read_slf``, except the checks of ``Lattice.validate``.
    """
    try:
        text = read_text(path)
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error) as error:
        raise InputFormatError(f"cannot read ({type(error).__name__}: {error}; truncated or "
                               "corrupt?)", path=path) from error
    return slf_lattice(text, path, symbols)


def slf_lattice(text: str, path: PathLike, symbols: SymbolTable) -> Lattice:
    """The lattice of the SLF ``text`` of file ``path``, not yet validated."""
    return graph_to_lattice(parse_slf_text(text, path), symbols, is_filler, path)


def clean_slf_text(path: PathLike, binary_archive: Callable[[bytes], bool]) -> Optional[str]:
    """The text of ``path`` if it is an SLF file that reads cleanly, else None; never raises.

    One read and one gunzip for what ``detect.detect_format`` and ``read_text``
    would each read: None whenever the file is not SLF by ``detect_format``'s rules
    or reading it would raise anything, so that the caller takes their route and
    its errors.

    Args:
      binary_archive:
        True for the first 8,192 bytes of a binary Kaldi archive.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if data.startswith(b"PK\x03\x04") or data[:1] == b"\x80":
            return None
        if data[:2] == b"\x1f\x8b":
            data = _inflate_member(data, max(MAX_GZIP_RATIO * len(data), 2**20) + 1)
            if data is None:
                return None  # damaged, several members or too large: the gzip module decides
        if binary_archive(data[:8192]):
            return None
        text = data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    text = text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text
    head = _first_field(text)
    return text if head is not None and "=" in head and not head.startswith("=") else None


def _first_field(text: str) -> Optional[str]:
    """The first white-space token of the first line that is not blank or a ``#`` comment."""
    start = 0
    while start < len(text):
        end = text.find("\n", start)
        line = text[start:end if end >= 0 else len(text)].strip()
        if line and not line.startswith("#"):
            return line.split()[0]
        if end < 0:
            break
        start = end + 1
    return None


def _fields(line: str, path: PathLike, line_number: int) -> Dict[str, str]:
    """``key=value`` pairs of one line (aliases mapped to the short keys)."""
    if '"' not in line:  # fast path: plain key=value tokens
        fields = {}
        for token in line.split():
            key, equals, value = token.partition("=")
            if not equals:
                raise InputFormatError(f"expected key=value, got {token[:40]!r}", path=path,
                                       where=f"line {line_number}")
            fields[_ALIASES.get(key, key)] = value
        return fields
    fields = {}
    for token in _FIELD.finditer(line):
        key, value = token.group(1), token.group(2)
        if value.startswith('"') and value.endswith('"') and len(value) >= 2:
            value = value[1:-1]
        fields[_ALIASES.get(key, key)] = value
    if not fields:
        raise InputFormatError(f"expected key=value fields, got {line.strip()[:60]!r}",
                               path=path, where=f"line {line_number}")
    return fields


def _number(fields: Dict[str, str], key: str, kind: type, default, path: PathLike,
            line_number: int, utt_id: Optional[str]):
    """``fields[key]`` as int/float (``default`` when absent), with a located error."""
    text = fields.get(key)
    if text is None:
        if default is None:
            raise InputFormatError(f"missing {key}=", path=path, utt_id=utt_id,
                                   where=f"line {line_number}")
        return default
    try:
        return kind(text)
    except ValueError:
        raise InputFormatError(f"bad {key}={text!r} (expected {'an integer' if kind is int else 'a number'})",
                               path=path, utt_id=utt_id, where=f"line {line_number}") from None


def parse_slf_text(text: str, path: PathLike) -> SlfGraph:
    """Parse the text of one SLF lattice into an ``SlfGraph`` (nodes, links, header).

    The header is parsed line by line; the node block (from the first ``I=`` line)
    and the link block (from the first ``J=`` line after it) in bulk when uniform
    (``slf_columns.py``), else line by line. Both give the same graph and errors.
    """
    graph = SlfGraph(utt_id=Path(path).name.split(".")[0])
    body = _BODY.search(text)
    body_start = len(text) if body is None else body.start()
    counts_line = _parse_lines(graph, text[:body_start], 1, path)
    links_start = body_start if text.startswith("J=", body_start) else \
        text.find("\nJ=", body_start) + 1 or len(text)
    nodes_line = text.count("\n", 0, body_start) + 1
    nodes = (body_start, _stripped_end(text, body_start, links_start))
    if not fast_nodes(graph, text, nodes, nodes_line):
        _parse_lines(graph, text[nodes[0]:nodes[1]], nodes_line, path)
    links = (links_start, _stripped_end(text, links_start, len(text)))
    if not fast_links(graph, text, links):
        _parse_lines(graph, text[links[0]:links[1]],
                     nodes_line + text.count("\n", body_start, links_start), path)
    graph.check_counts(path, counts_line)
    return graph


def _stripped_end(text: str, start: int, end: int) -> int:
    """Where ``text[start:end].rstrip()`` ends, without copying the block."""
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _parse_lines(graph: SlfGraph, text: str, first_line: int, path: PathLike) -> int:
    """Parse ``text`` (its first line is number ``first_line``) line by line.

    Returns:
      The number of the last header line with ``N=`` or ``L=`` (0 if none).
    """
    counts_line = 0
    for line_number, line in enumerate(text.split("\n"), start=first_line):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        fields = _fields(stripped, path, line_number)
        if "I" in fields:
            _node(graph, fields, path, line_number)
        elif "J" in fields:
            _link(graph, fields, path, line_number)
        else:
            if "N" in fields or "L" in fields:
                counts_line = line_number
            _header(graph, fields, path, line_number)
    return counts_line


def _header(graph: SlfGraph, fields: Dict[str, str], path: PathLike, line_number: int) -> None:
    """Apply one header line (unknown keys such as lmname= are ignored)."""
    if graph.links_word is not None or graph.num_node_lines():
        raise InputFormatError(f"header field {next(iter(fields))}= after the node/link lines",
                               path=path, utt_id=graph.utt_id, where=f"line {line_number}")
    if "UTTERANCE" in fields:
        graph.utt_id = fields["UTTERANCE"]
    number = lambda key, kind, default: _number(fields, key, kind, default, path, line_number,
                                                graph.utt_id)
    graph.lmscale = number("lmscale", float, graph.lmscale)
    graph.wdpenalty = number("wdpenalty", float, graph.wdpenalty)
    graph.acscale = number("acscale", float, graph.acscale)
    graph.base = number("base", float, graph.base)
    graph.start = number("start", int, graph.start if graph.start is not None else -1)
    graph.end = number("end", int, graph.end if graph.end is not None else -1)
    graph.start = None if graph.start == -1 else graph.start
    graph.end = None if graph.end == -1 else graph.end
    graph.num_nodes = number("N", int, graph.num_nodes if graph.num_nodes is not None else -1)
    graph.num_links = number("L", int, graph.num_links if graph.num_links is not None else -1)
    graph.num_nodes = None if graph.num_nodes == -1 else graph.num_nodes
    graph.num_links = None if graph.num_links == -1 else graph.num_links


def _node(graph: SlfGraph, fields: Dict[str, str], path: PathLike, line_number: int) -> None:
    """Record one ``I=`` line (a t= that is not a number is left out, as before times were read)."""
    node = _number(fields, "I", int, None, path, line_number, graph.utt_id)
    try:
        time = float(fields["t"]) if "t" in fields else None
    except ValueError:
        time = None
    graph.add_node(node, fields.get("W"), time, path, line_number)


def _link(graph: SlfGraph, fields: Dict[str, str], path: PathLike, line_number: int) -> None:
    """Record one ``J=`` line."""
    number = lambda key, kind, default: _number(fields, key, kind, default, path, line_number,
                                                graph.utt_id)
    graph.add_link(number("S", int, None), number("E", int, None), fields.get("W"),
                   number("a", float, 0.0), number("l", float, 0.0), path, line_number)


def lattice_to_slf(lattice: Lattice, symbols: SymbolTable) -> str:
    """SLF text of ``lattice`` with words on links (see the module docstring)."""
    words = [symbols.word(w, utt_id=lattice.utt_id) for w in lattice.word_ids.tolist()]
    splits = lattice.word_splits.tolist()
    lines: List[str] = []
    next_node = lattice.num_states
    for arc, (src, dst, am, ngram) in enumerate(zip(
        lattice.src.tolist(), lattice.dst.tolist(),
        lattice.am_scores.tolist(), lattice.ngram_scores.tolist(),
    )):
        arc_words = words[splits[arc]:splits[arc + 1]] or ["!NULL"]
        hops = [src] + list(range(next_node, next_node + len(arc_words) - 1)) + [dst]
        next_node += len(arc_words) - 1
        for hop, word in enumerate(arc_words):
            a, l = (am, ngram) if hop == 0 else (0.0, 0.0)
            lines.append(f"J={len(lines)}\tS={hops[hop]}\tE={hops[hop + 1]}\tW={word}"
                         f"\ta={a!r}\tl={l!r}")
    header = [
        "VERSION=1.0", f"UTTERANCE={_quote(lattice.utt_id)}", "lmscale=1.0", "wdpenalty=0.0",
        "start=0", f"end={lattice.num_states - 1}", f"N={next_node}\tL={len(lines)}",
    ]
    nodes = [f"I={node}" for node in range(next_node)]
    return "\n".join(header + nodes + lines) + "\n"


def _quote(text: str) -> str:
    """Quote a header value that contains white space."""
    return f'"{text}"' if any(c.isspace() for c in text) else text


def write_slf(path: PathLike, lattice: Lattice, symbols: SymbolTable) -> None:
    """Write ``lattice`` as plain-text SLF to ``path`` atomically."""
    atomic_write_text(path, lattice_to_slf(lattice, symbols))


_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=@,-]")


def slf_file_name(utt_id: str) -> str:
    """The file name ``NAME.slf`` of an utterance written as SLF, safe in any folder.

    Characters other than ASCII letters, digits and ``_ . + = @ , -`` become
    ``_``, and so do leading dots, so the name has no path separator, is never
    hidden and never ``..``; an empty id gives ``_.slf``. Names are cut to 200
    characters. Distinct ids can share a name (``a/b`` and ``a_b``): callers check.
    """
    name = _UNSAFE.sub("_", utt_id)[:200]
    stripped = name.lstrip(".")
    return ("_" * (len(name) - len(stripped)) + stripped if name else "_") + ".slf"
