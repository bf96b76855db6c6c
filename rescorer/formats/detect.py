"""Pick the reader from a file's content and read files of any format, never raising.

Detection (extensions are ignored): zip magic ``PK\\x03\\x04`` or a pickle
protocol byte ``\\x80`` -> k2 ``torch.save`` file; otherwise the (possibly
gunzipped) content is a binary Kaldi archive when it starts ``KEY `` + the FST magic
number; otherwise the text is SLF when its first non-comment line is a ``key=value``
field (``VERSION=``, ``UTTERANCE=``, ``N=``...), else a Kaldi text lattice archive.
Kaldi specifiers (``ark:...``, ``scp:...``) are read by ``kaldi_archive``.
"""
import gzip
import zlib
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from rescorer.errors import Failure, InputFormatError, RescorerError, SymbolError
from rescorer.formats.k2_read import read_k2_chunks
from rescorer.formats.kaldi_archive import is_binary_archive, starts_binary_archive
from rescorer.formats.kaldi_specifier import is_specifier
from rescorer.formats.kaldi_text import iter_kaldi_text
from rescorer.formats.slf import clean_slf_text, open_text, parse_slf_file, slf_lattice
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.checks import lattice_failure
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike

K2, SLF, KALDI = "k2", "slf", "kaldi"
# What reading a damaged or truncated (possibly gzipped) file can raise.
READ_ERRORS = (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile, zlib.error)


def unreadable(path: PathLike, error: BaseException) -> InputFormatError:
    """The one-line error for a file that cannot be read or decompressed."""
    return InputFormatError(f"cannot read ({type(error).__name__}: {error}; truncated or "
                            "corrupt?)", path=path)


def detect_format(path: PathLike) -> str:
    """``"k2"``, ``"slf"`` or ``"kaldi"`` from the file's first bytes and line.

    Raises:
      InputFormatError: the file cannot be read or is empty.
    """
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
        if magic.startswith(b"PK\x03\x04") or magic[:1] == b"\x80":
            return K2
        if is_binary_archive(path):
            return KALDI
        with open_text(path) as text:
            for line in text:
                stripped = line.strip()
                if stripped and not stripped.startswith("#"):
                    head = stripped.split()[0]
                    return SLF if "=" in head and not head.startswith("=") else KALDI
    except READ_ERRORS as error:
        raise unreadable(path, error) from error
    raise InputFormatError("empty file (expected a k2, SLF or Kaldi text lattice)", path=path)


def lattice_files(paths: Sequence[PathLike]) -> List[Path]:
    """Files given, plus the files under given directories (recursive, sorted)."""
    files: List[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()
                                and not p.name.startswith(".")))
        else:
            files.append(path)
    return files


# What one file gives: valid lattices already in batches (k2, in file order), lattices
# still to be validated (SLF, Kaldi text), and failures.
FileContent = Tuple[List[LatticeBatch], List[Lattice], List[Failure]]


def read_file(path: Path, symbols: SymbolTable) -> FileContent:
    """Every lattice of one file of any format; bad content becomes failures, never raises.

    Args:
      path:
        The file.
      symbols:
        The --words table (frozen) or a growing table that SLF words are added to;
        k2 and Kaldi input carry word ids and need a frozen table.

    Returns:
      ``(batches, lattices, failures)``: a k2 file's valid lattices as consecutive
      batches (``read_k2_chunks``; else none); SLF and Kaldi lattices not yet checked
      by ``Lattice.validate``; one failure per bad lattice, or one for the whole file.
    """
    lattices: List[Lattice] = []
    try:
        text = None if is_specifier(str(path)) else clean_slf_text(path, starts_binary_archive)
        if text is not None:  # most SLF files: read once, not once to detect and once to parse
            return [], [slf_lattice(text, path, symbols)], []
        kind = KALDI if is_specifier(str(path)) else detect_format(path)
        if kind == SLF:
            return [], [parse_slf_file(path, symbols)], []
        if not symbols.frozen:
            raise SymbolError(f"this is a {'k2' if kind == K2 else 'Kaldi text'} lattice "
                              "with word ids: --words words.txt is required", path=path)
        if kind == K2:
            batches, failures = read_k2_chunks(path, symbols)
            return batches, [], failures
        failures = []
        # iter_kaldi_text reads every Kaldi form: text or binary, files or specifiers.
        for item in iter_kaldi_text(path, symbols):
            (failures if isinstance(item, Failure) else lattices).append(item)
        return [], lattices, failures
    except RescorerError as error:
        return [], lattices, [Failure(path, error.utt_id, error)]
    except READ_ERRORS as error:  # raised while a reader streams a damaged file
        return [], lattices, [Failure(path, None, unreadable(path, error))]


def iter_lattices(paths: Sequence[PathLike], symbols: Optional[SymbolTable]
                  ) -> Iterator[Union[Lattice, Failure]]:
    """``iter_inputs`` with each batch as its lattices, one by one."""
    for item in iter_inputs(paths, symbols):
        if isinstance(item, LatticeBatch):
            yield from item.to_lattices()
        else:
            yield item


def iter_inputs(paths: Sequence[PathLike], symbols: Optional[SymbolTable]
                ) -> Iterator[Union[Lattice, LatticeBatch, Failure]]:
    """Read every lattice of every file; a bad utterance or file becomes a failure.

    Args:
      paths:
        Files and directories (recursed, sorted).
      symbols:
        The --words table (frozen: SLF words missing from it are errors), or a
        growing ``SymbolTable()`` that SLF words are added to (the caller keeps it,
        e.g. to write words.txt), or None. k2 and Kaldi input carry word ids and
        need a frozen table.

    Yields:
      Per file: its lattices in file order (a ``Failure(path, utt_id,
      error)`` in place of each invalid one), then the failures of its reading.
      The lattices of a k2 file come as ``LatticeBatch`` chunks (``read_k2_chunks``).
    """
    table = SymbolTable() if symbols is None else symbols
    for path in lattice_files(paths):
        batches, lattices, failures = read_file(path, table)
        yield from batches
        for lattice in lattices:
            failure = lattice_failure(lattice, path)
            yield lattice if failure is None else failure
        yield from failures
