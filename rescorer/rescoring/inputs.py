"""Lattice inputs of a run: files and folders, any detected format.

Yields ``(path, lattice, symbols)`` for every readable lattice and a
``LatticeFailure`` for every unreadable one (or unreadable file). Without
``--words`` one growing table collects the words of all SLF files (k2 and
Kaldi text files then fail: they need ``--words``).
"""
from pathlib import Path
from typing import Iterator, List, Tuple, Union

from rescorer.formats.detect import iter_lattices, lattice_files
from rescorer.lattice.fsavec import Lattice, LatticeFailure
from rescorer.lattice.symbols import SymbolTable

Item = Union[Tuple[Path, Lattice, SymbolTable], LatticeFailure]


def iter_inputs(paths: List[Path], symbols: SymbolTable) -> Iterator[Item]:
    """Every lattice of ``paths`` (folders recursed, sorted) with its file and word table.

    ``symbols`` is the frozen ``--words`` table or a growing one (SLF words are
    added to it).
    """
    for path in lattice_files(paths):
        for item in iter_lattices([path], symbols):
            yield item if isinstance(item, LatticeFailure) else (path, item, symbols)
