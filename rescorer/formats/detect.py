"""Pick the reader from a file's content and read many files, skipping bad ones.

Detection (extensions are ignored): zip magic ``PK\\x03\\x04`` or a pickle
protocol byte ``\\x80`` -> k2 ``torch.save`` file; otherwise the (possibly
gunzipped) content is a binary Kaldi archive when it starts ``KEY `` + the FST magic
number; otherwise the text is SLF when its first non-comment line is a ``key=value``
field (``VERSION=``, ``UTTERANCE=``, ``N=``...), else a Kaldi text lattice archive.
Kaldi specifiers (``ark:...``, ``scp:...``) are read by ``kaldi_archive``.
"""
import gzip
from pathlib import Path
from typing import Iterator, List, Optional, Sequence, Tuple, Union

from rescorer.errors import InputFormatError, RescorerError, SymbolError
from rescorer.formats.k2_pt import iter_k2
from rescorer.formats.kaldi_archive import is_binary_archive
from rescorer.formats.kaldi_specifier import is_specifier
from rescorer.formats.kaldi_text import iter_kaldi_text
from rescorer.formats.slf import open_text, read_slf
from rescorer.lattice.fsavec import Lattice, LatticeFailure
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike

K2, SLF, KALDI = "k2", "slf", "kaldi"


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
    except (OSError, EOFError, UnicodeDecodeError, gzip.BadGzipFile) as error:
        raise InputFormatError(f"cannot read ({type(error).__name__}: {error})",
                               path=path) from error
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


def iter_lattices(paths: Sequence[PathLike], symbols: Optional[SymbolTable]
                  ) -> Iterator[Union[Lattice, LatticeFailure]]:
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
      Lattices in file order, or ``LatticeFailure(path, utt_id, error)``.
    """
    table = SymbolTable() if symbols is None else symbols
    for path in lattice_files(paths):
        try:
            kind = KALDI if is_specifier(str(path)) else detect_format(path)
            if kind == SLF:
                yield read_slf(path, table)[0][0]
                continue
            if not table.frozen:
                raise SymbolError(f"this is a {'k2' if kind == K2 else 'Kaldi text'} lattice "
                                  "with word ids: --words words.txt is required", path=path)
            # iter_kaldi_text reads every Kaldi form: text or binary, files or specifiers.
            reader = iter_k2 if kind == K2 else iter_kaldi_text
            yield from reader(path, table)
        except RescorerError as error:
            yield LatticeFailure(path, error.utt_id, error)


def read_lattices(paths: Sequence[PathLike], symbols: Optional[SymbolTable] = None
                  ) -> Tuple[List[Lattice], SymbolTable]:
    """All lattices of ``paths``, raising the first failure; plus the symbol table used.

    Without ``symbols`` the table is the one grown from SLF words (``<eps>`` = 0,
    then ids in order of first appearance).
    """
    table = SymbolTable() if symbols is None else symbols
    lattices = []
    for item in iter_lattices(paths, table):
        if isinstance(item, LatticeFailure):
            raise item.error
        lattices.append(item)
    return lattices, table
