"""Lattice inputs of a run: read once, deduplicated, sharded, cut into work units.

Every input is read in the parent process, in file order (folders recursed,
sorted; any detected format). Without ``--words`` one growing table collects
the words of all SLF files (k2 and Kaldi text files then fail: they need
``--words``). A second lattice with an utterance id already seen is a
failure naming its file.

Sharding (``--shard I/N``): utterance ``u`` belongs to shard
``shard_of(u, N) = crc32(utf-8 bytes of u) mod N + 1``. The rule looks only at
the utterance id, so it does not depend on which files hold the utterance or
in which order files are listed, and both copies of a repeated id land in the
same shard. Every shard reads every input (give each the same inputs); a
file that cannot be read at all is reported by every shard and once by
``fprescore merge``.

Work units: consecutive runs of at most ``--batch-size`` lattices, split
further so that ``--jobs N`` workers all get work, however few files there
are (one k2 file with 10,000 lattices feeds every worker).
"""
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Set, Tuple

from rescorer.errors import InputFormatError
from rescorer.formats.detect import iter_lattices, lattice_files
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, LatticeFailure
from rescorer.lattice.symbols import SymbolTable


def shard_of(utt_id: str, count: int) -> int:
    """The 1-based shard of utterance ``utt_id`` among ``count`` shards."""
    return zlib.crc32(utt_id.encode("utf-8")) % count + 1


@dataclass
class Inputs:
    """Everything read for one run.

    Attributes:
      items:
        (file, lattice) of every lattice to rescore, in reading order.
      failures:
        Unreadable files and utterances, and repeated ids, in reading order.
      files:
        The input files.
      lattices_read:
        Lattices of this shard read, failed ones included.
      lattices_seen:
        Lattices read in all (every shard's), failed ones included.
    """

    items: List[Tuple[Path, Lattice]] = field(default_factory=list)
    failures: List[LatticeFailure] = field(default_factory=list)
    files: List[Path] = field(default_factory=list)
    lattices_read: int = 0
    lattices_seen: int = 0


def read_inputs(paths: List[Path], symbols: SymbolTable,
                shard: Optional[Tuple[int, int]] = None) -> Inputs:
    """Read every lattice of ``paths``; keep this shard's.

    Args:
      paths:
        Files and folders.
      symbols:
        The frozen ``--words`` table or a growing one (SLF words are added).
      shard:
        (I, N) to keep shard I of N only; None keeps everything.

    Raises:
      InputFormatError: no input file at all.
    """
    inputs = Inputs(files=lattice_files(paths))
    if not inputs.files:
        raise InputFormatError("no lattice files found (expected files, or folders holding them)",
                               path=", ".join(map(str, paths)))
    seen: Set[str] = set()
    for path in inputs.files:
        for item in iter_lattices([path], symbols):
            utt_id = item.utt_id
            if utt_id is not None:
                inputs.lattices_seen += 1
                if shard is not None and shard_of(utt_id, shard[1]) != shard[0]:
                    continue
                inputs.lattices_read += 1
            if isinstance(item, LatticeFailure):
                inputs.failures.append(item)
            elif utt_id in seen:
                inputs.failures.append(LatticeFailure(path, utt_id, InputFormatError(
                    "utterance id appears twice (expected unique ids across all inputs; skipped "
                    "the second)", path=path, utt_id=utt_id)))
            else:
                seen.add(utt_id)
                inputs.items.append((path, item))
    return inputs


def work_units(count: int, batch_size: int, jobs: int) -> List[Tuple[int, int]]:
    """[start, stop) ranges over ``count`` lattices: at most ``batch_size`` each, >= ``jobs`` when possible."""
    size = max(1, min(batch_size, -(-count // jobs)))  # ceil(count / jobs)
    return [(start, min(start + size, count)) for start in range(0, count, size)]


def make_unit(items: List[Tuple[Path, Lattice]]) -> Tuple[LatticeBatch, List[Path]]:
    """The ``LatticeBatch`` of some (file, lattice) items, and the file of each lattice."""
    return LatticeBatch.from_lattices([lattice for _, lattice in items]), [path for path, _ in items]
