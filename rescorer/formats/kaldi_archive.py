"""Reading Kaldi lattice archives: binary and text entries, plain or gzipped, any specifier.

An archive is a sequence of entries ``KEY`` + one space + an object (Kaldi's
``util/kaldi-table-inl.h``). A lattice object is either an OpenFst binary FST
(it starts with the FST magic number: lattice holders write no ``\\0B`` marker)
or the text form (a newline, then lines up to a blank line). Entries of both
kinds may follow each other. For text entries the whole key line is the key
(TheanoLM's sample has a space in its key).

A damaged entry becomes a ``Failure`` naming the file, the key and the
byte offset of the entry (offsets count decompressed bytes for gzipped input);
reading resumes at the next blank line (text) or the next FST magic number
(binary). A read error of the file itself (a corrupt gzip stream) ends the file
with one failure. Declared counts are checked against the bytes present before
anything is allocated, so memory stays O(input size).
"""
import re
import zlib
from pathlib import Path
from typing import Iterator, Optional, Tuple, Union

from rescorer.errors import Failure, InputFormatError, RescorerError, SymbolError
from rescorer.formats import kaldi_binary
from rescorer.formats.kaldi_binary import HEADER_MAX_BYTES, MAGIC_BYTES, NeedMoreData
from rescorer.formats.kaldi_lattice import KaldiFst, fst_to_lattice
from rescorer.formats.kaldi_specifier import (InputStream, is_specifier, open_file,
                                              parse_specifier, split_rxfilename)
from rescorer.formats.kaldi_text_columns import parse_text_entry
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike

Item = Union[Lattice, Failure]
CHUNK = 1 << 20
MAX_KEY_BYTES = 1 << 16
_BLANK_LINE = re.compile(rb"\n[ \t\r]*(?:\n|\Z)")
_RESYNC = re.compile(rb"[ \t]" + re.escape(MAGIC_BYTES + b"\x06\x00\x00\x00vector"))
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
_SPACE = re.compile(rb"[ \t\r\n]")
_LINE_END = re.compile(rb"\n|\Z")


class _Buffer:
    """A growing window over a binary stream, with its offset and line count.

    Args:
      handle:
        The binary file object.
      name:
        The file's name for messages.
    """

    def __init__(self, handle, name: str) -> None:
        self.handle, self.name = handle, name
        self.data = bytearray()
        self.pos = 0  # index in data of the next unread byte
        self.base = 0  # stream offset of data[0]
        self.line = 1  # line number of data[pos]
        self.eof = False
        self.failure: Optional[InputFormatError] = None
        self.bytes_per_state = 512.0  # the largest seen so far: sizes the binary parse window
        self._read = getattr(handle, "read1", handle.read)

    @property
    def offset(self) -> int:
        """Stream offset of the next unread byte."""
        return self.base + self.pos

    def available(self) -> int:
        return len(self.data) - self.pos

    def fill(self, count: int) -> None:
        """Read until ``count`` bytes are available or the stream ends.

        A read error (I/O, corrupt gzip) ends the stream there and is kept in
        ``failure``: the bytes decoded before it stay readable.
        """
        while self.available() < count and not self.eof:
            try:
                # read1: at most one read below, so the bytes decoded before a damaged
                # part of a gzip stream still arrive before its error.
                chunk = self._read(max(CHUNK, count - self.available()))
            except (OSError, EOFError, zlib.error) as error:
                self.eof = True
                self.failure = InputFormatError(
                    f"cannot read past byte {self.base + len(self.data)} "
                    f"({type(error).__name__}: {error})", path=self.name)
                return
            if chunk:
                self.data += chunk
            else:
                self.eof = True

    def search(self, pattern: "re.Pattern", start: int = 0) -> Optional["re.Match"]:
        """The first match at or after ``pos + start``, reading more until found or EOF."""
        checked = self.pos + start
        while True:
            match = pattern.search(self.data, checked)
            if match is not None and (match.end() < len(self.data) or self.eof):
                return match
            if self.eof:
                return None
            checked = max(self.pos + start, len(self.data) - 64)  # patterns are short
            self.fill(self.available() + CHUNK)

    def take(self, count: int) -> bytes:
        """The next ``count`` bytes (fewer at EOF), consumed."""
        self.fill(count)
        chunk = bytes(self.data[self.pos:self.pos + count])
        self.advance(len(chunk))
        return chunk

    def advance(self, count: int) -> None:
        """Consume ``count`` bytes (they must be available)."""
        self.line += self.data.count(b"\n", self.pos, self.pos + count)
        self.pos += count
        if self.pos > CHUNK and self.pos * 2 > len(self.data):
            del self.data[:self.pos]
            self.base += self.pos
            self.pos = 0


def iter_kaldi_archive(source: PathLike, symbols: Optional[SymbolTable] = None
                       ) -> Iterator[Item]:
    """Every lattice of a Kaldi archive file or specifier, or a failure per bad entry.

    Args:
      source:
        A file (binary or text archive, gzipped or not) or a specifier:
        ``ark:FILE``, ``ark:-``, ``ark:CMD |``, ``scp:FILE``.
      symbols:
        If given, every word id must be in it.

    Yields:
      ``Lattice`` (with transition ids) or ``Failure``.
    """
    text = str(source)
    try:
        spec = parse_specifier(text) if is_specifier(text) else None
        if spec is not None and spec.kind == "scp":
            yield from _iter_scp(spec.target, symbols)
            return
        stream = InputStream(text if spec is None else spec.target)
    except RescorerError as error:
        yield Failure(Path(text), None, error)
        return
    completed = False
    try:
        yield from _iter_stream(_Buffer(stream.handle, stream.name), symbols)
        completed = True
    finally:
        error = stream.close()  # also when the caller stops early (no yield in here)
    if completed and error is not None:
        yield Failure(Path(stream.name), None, error)


def _iter_stream(buffer: _Buffer, symbols: Optional[SymbolTable]) -> Iterator[Item]:
    """The entries of one archive stream; a read error ends it with one failure."""
    while True:
        entry = _next_entry(buffer)
        if buffer.failure is not None and buffer.available() == 0:
            # The stream broke: the entry running into the break may be cut short.
            key = None if entry is None else entry[0]
            yield Failure(Path(buffer.name), key, InputFormatError(
                buffer.failure.message, path=buffer.name, utt_id=key))
            return
        if entry is None:
            return
        key, offset, result = entry
        yield _to_item(result, key, buffer.name, symbols)


def _next_entry(buffer: _Buffer) -> Optional[Tuple[str, int, Union[KaldiFst, InputFormatError]]]:
    """``(key, byte offset, FST or the entry's error)``, or None at the end."""
    start = buffer.search(_NOT_SPACE)
    if start is None:
        buffer.advance(buffer.available())
        return None
    buffer.advance(start.start() - buffer.pos)
    offset, line = buffer.offset, buffer.line
    key_end = buffer.search(_SPACE)
    key_length = (key_end.start() if key_end else len(buffer.data)) - buffer.pos
    if key_length > MAX_KEY_BYTES:
        return _skip_damaged(buffer, "?", offset, f"no key within {MAX_KEY_BYTES} bytes")
    key = buffer.take(key_length).decode("utf-8", "replace")
    buffer.fill(2)
    if buffer.data[buffer.pos:buffer.pos + 2] in (b" " + MAGIC_BYTES[:1], b"\t" + MAGIC_BYTES[:1]):
        buffer.advance(1)
        try:
            return key, offset, _read_binary(buffer)
        except InputFormatError as error:
            return _skip_damaged(buffer, key, offset, error.message)
    rest = buffer.search(_LINE_END)
    key = (key + buffer.take(rest.start() - buffer.pos).decode("utf-8", "replace")).strip()
    return key, offset, _read_text(buffer, line)


def _skip_damaged(buffer: _Buffer, key: str, offset: int, message: str) -> tuple:
    """Resume after a damaged binary entry: at the next key followed by an FST magic."""
    error = InputFormatError(message, where=f"byte {offset}")
    match = buffer.search(_RESYNC)
    if match is None:
        buffer.advance(buffer.available())
        return key, offset, error
    key_start = match.start()
    while key_start > buffer.pos and 0x21 <= buffer.data[key_start - 1] <= 0x7E:
        key_start -= 1
    buffer.advance(key_start - buffer.pos)
    return key, offset, error


def _read_binary(buffer: _Buffer) -> KaldiFst:
    """One binary FST at the buffer's position, consumed (window doubling; see kaldi_binary)."""
    while True:
        buffer.fill(HEADER_MAX_BYTES)
        head = bytes(buffer.data[buffer.pos:buffer.pos + HEADER_MAX_BYTES])
        try:
            header = kaldi_binary.parse_header(head, at_eof=buffer.eof)
            break
        except NeedMoreData:
            buffer.fill(buffer.available() + CHUNK)
    # A first guess from the bytes per state seen so far (doubled when short).
    window = max(1 << 14, int(1.25 * buffer.bytes_per_state * header.num_states))
    while True:
        buffer.fill(header.size + window)
        body = bytes(buffer.data[buffer.pos + header.size:buffer.pos + header.size + window])
        at_eof = buffer.eof and buffer.available() <= header.size + window
        try:
            fst, used = kaldi_binary.parse_body(body, header, at_eof)
        except NeedMoreData as short:
            window = max(2 * window, short.args[0] if short.args else 0)
            continue
        buffer.advance(header.size + used)
        if header.num_states:
            buffer.bytes_per_state = max(buffer.bytes_per_state, used / header.num_states)
        return fst


def _read_text(buffer: _Buffer, key_line: int) -> Union[KaldiFst, InputFormatError]:
    """One text FST: the lines after the key line, up to a blank line (consumed)."""
    end = buffer.search(_BLANK_LINE)
    stop = end.start() + 1 if end is not None else len(buffer.data)
    raw = bytes(buffer.data[buffer.pos:stop])
    buffer.advance((end.end() if end is not None else stop) - buffer.pos)
    try:
        return parse_text_entry(raw, key_line + 1)
    except UnicodeDecodeError as error:
        return InputFormatError(f"not UTF-8 text ({error.reason})", where=f"line {key_line}")
    except InputFormatError as error:
        return error


def _to_item(result: Union[KaldiFst, InputFormatError], key: str, name: str,
             symbols: Optional[SymbolTable]) -> Item:
    """The lattice of a parsed entry, or its failure located at file and key."""
    path = Path(name)
    if isinstance(result, InputFormatError):
        return Failure(path, key, InputFormatError(result.message, path=name, utt_id=key,
                                                          where=result.where))
    try:
        lattice = fst_to_lattice(result, key, name)
        lattice.validate(name)
        if symbols is not None:
            symbols.check_ids(lattice.word_ids, path=name, utt_id=key)
        return lattice
    except (InputFormatError, SymbolError) as error:
        return Failure(path, key, error)


def _iter_scp(target: str, symbols: Optional[SymbolTable]) -> Iterator[Item]:
    """The lattices an scp file points to (``key file.ark:OFFSET``, ``key file``, ``key CMD |``)."""
    listing = InputStream(target)
    try:
        lines = listing.handle.read().decode("utf-8").splitlines()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as error:
        listing.close()
        yield Failure(Path(listing.name), None, InputFormatError(
            f"cannot read the scp file ({type(error).__name__}: {error})", path=listing.name))
        return
    failed = listing.close()
    if failed is not None:
        yield Failure(Path(listing.name), None, failed)
        return
    for number, line in enumerate(lines, start=1):
        parts = line.strip().split(None, 1)
        if not parts:
            continue
        if len(parts) != 2:
            yield Failure(Path(listing.name), parts[0], InputFormatError(
                "expected 'key rxfilename'", path=listing.name, utt_id=parts[0],
                where=f"line {number}"))
            continue
        yield _scp_entry(parts[0], parts[1], symbols)


def _scp_entry(key: str, rxfilename: str, symbols: Optional[SymbolTable]) -> Item:
    """One object of an scp line, read at its offset."""
    name, offset = split_rxfilename(rxfilename)
    try:
        stream = InputStream(name)
    except InputFormatError as error:
        return Failure(Path(name), key, InputFormatError(error.message, path=name,
                                                                utt_id=key))
    try:
        if offset is not None:
            stream.handle.seek(offset)
        buffer = _Buffer(stream.handle, name)
        buffer.base = offset or 0
        result = _read_object(buffer)
        failed = stream.close()
        if failed is not None:
            result = failed
    except (InputFormatError, OSError) as error:
        message = error.message if isinstance(error, InputFormatError) else str(error)
        result = InputFormatError(message, where=f"byte {offset or 0}")
    return _to_item(result, key, name, symbols)


def _read_object(buffer: _Buffer) -> Union[KaldiFst, InputFormatError]:
    """An object without a key (an scp target): binary FST or text (after a newline)."""
    offset = buffer.offset
    buffer.fill(1)
    first = buffer.data[buffer.pos:buffer.pos + 1]
    if first == MAGIC_BYTES[:1]:
        try:
            return _read_binary(buffer)
        except InputFormatError as error:
            return InputFormatError(error.message, where=f"byte {offset}")
    if first in (b" ", b"\t", b"\r", b"\n"):
        return _read_text(buffer, buffer.line)
    return InputFormatError("not a lattice (expected an FST magic number or a newline)",
                            where=f"byte {offset}")


_BINARY_ARCHIVE = re.compile(rb"^[ \t\r\n]*[\x21-\x7e]{1,4096}[ \t]" + re.escape(MAGIC_BYTES))


def is_binary_archive(path: PathLike) -> bool:
    """True when a file (gzipped or not) starts like a binary Kaldi lattice archive.

    Never raises: an unreadable file is False (format detection then reports it).
    """
    try:
        handle = open_file(str(path))
        try:
            head = handle.read(8192)
        finally:
            handle.close()
    except (RescorerError, OSError, EOFError, zlib.error):
        return False
    return starts_binary_archive(head)


def starts_binary_archive(head: bytes) -> bool:
    """True when ``head`` (a file's first bytes, gunzipped) starts a binary Kaldi archive."""
    return _BINARY_ARCHIVE.match(head) is not None


def read_kaldi_fst(path: PathLike, utt_id: Optional[str] = None) -> Lattice:
    """One lattice from a file holding a single FST without a key (``kaldifst``'s
    ``Lattice.write``, OpenFst's ``fstprint`` input), binary or text.

    Raises:
      InputFormatError: unreadable, not a lattice, or invalid.
    """
    stream = InputStream(str(path))
    try:
        result = _read_object(_Buffer(stream.handle, str(path)))
    finally:
        failed = stream.close()
    if failed is not None:
        raise failed
    item = _to_item(result, utt_id or Path(path).stem, str(path), None)
    if isinstance(item, Failure):
        raise item.error
    return item
