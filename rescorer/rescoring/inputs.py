"""Lattice inputs of a run: files and folders, any detected format.

Yields ``(path, lattice, symbols)`` for every readable lattice and a
``LatticeFailure`` for every unreadable one (or unreadable file).
"""
from pathlib import Path
from typing import Iterator, List, Optional, Tuple, Union

from rescorer.errors import RescorerError
from rescorer.formats.k2_pt import iter_k2
from rescorer.lattice.fsavec import Lattice, LatticeFailure
from rescorer.lattice.symbols import SymbolTable

Item = Union[Tuple[Path, Lattice, SymbolTable], LatticeFailure]


def iter_inputs(paths: List[Path], symbols: Optional[SymbolTable]) -> Iterator[Item]:
    """Every lattice of ``paths`` with its file and word table."""
    for path in paths:
        try:
            for item in iter_k2(path, symbols):
                if isinstance(item, LatticeFailure):
                    yield item
                else:
                    yield path, item, symbols
        except RescorerError as error:
            yield LatticeFailure(Path(path), None, error)
