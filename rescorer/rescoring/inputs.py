"""Lattice inputs of a run: read once, deduplicated, sharded, cut into work units.

Every input is read once, in file order (folders recursed, sorted; any
detected format) and pruned as read (``read_pruning.read_inputs``): by the
parent, or under ``--jobs N`` by workers reading consecutive groups of files
whose words are renumbered onto the run's table in file order
(``renumber_words``), which gives the same ids as one reader (one input file:
the parent reads it and the workers prune it). Without ``--words`` one growing
table collects the words of all SLF files (k2 and Kaldi text files then fail:
they need ``--words``). A second lattice with an utterance id already seen (as
a lattice or as a failed utterance) is a failure naming its file.

Sharding (``--shard I/N``): utterance ``u`` belongs to shard
``shard_of(u, N) = crc32(utf-8 bytes of u) mod N + 1``. The rule looks only at
the utterance id, so it does not depend on which files hold the utterance or
in which order files are listed, and both copies of a repeated id land in the
same shard. Every shard reads every input (give each the same inputs); a
file that cannot be read at all is reported by every shard and once by
``fprescore merge``.

Work units: consecutive runs of at most ``--batch-size`` lattices, of even
sizes, as many for each of ``--jobs N`` workers, however few files there are
(one k2 file with 10,000 lattices feeds every worker).
"""
import zlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import List, Optional, Set, Tuple, Union

import torch

from rescorer.errors import Failure, InputFormatError
from rescorer.formats.detect import lattice_files
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice
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
    failures: List[Failure] = field(default_factory=list)
    files: List[Path] = field(default_factory=list)
    lattices_read: int = 0
    lattices_seen: int = 0


FileItems = List[Tuple[Path, Union[Lattice, Failure]]]


def input_files(paths: List[Path]) -> List[Path]:
    """The files of ``paths`` (folders recursed, sorted, hidden files skipped).

    Raises:
      InputFormatError: no input file at all.
    """
    files = lattice_files(paths)
    if not files:
        raise InputFormatError("no lattice files found (expected files, or folders holding them)",
                               path=", ".join(map(str, paths)))
    return files


def renumber_words(items: FileItems, local: SymbolTable, table: SymbolTable) -> FileItems:
    """Move lattices read with ``local`` (a worker's copy of growing ``table``) onto ``table``.

    Words of ``local`` are added to ``table`` in ``local``'s id order, so reading
    file groups in workers and renumbering them in file order gives the table
    and ids of one reader going through every file.
    """
    words = list(local)  # in id order
    remap = torch.full((local.max_id + 1,), -1, dtype=torch.int64)  # (local ids,)
    remap[torch.tensor([local.id(word) for word in words], dtype=torch.int64)] = \
        torch.tensor(table.lookup_all(words), dtype=torch.int64)
    moved: FileItems = []
    for path, item in items:
        if isinstance(item, Lattice):
            labels = item.labels
            item = replace(item, word_ids=remap[item.word_ids],
                           labels=torch.where(labels > 0, remap[labels.clamp(min=0)], labels))
        moved.append((path, item))
    return moved


def select_inputs(files: List[Path], items: FileItems, shard: Optional[Tuple[int, int]] = None) -> Inputs:
    """Keep this shard's lattices; a repeated utterance id becomes a failure.

    Args:
      files:
        The input files.
      items:
        Every lattice or failure read, in file order.
      shard:
        (I, N) to keep shard I of N only; None keeps everything.
    """
    inputs = Inputs(files=files)
    seen: Set[str] = set()
    for path, item in items:
        utt_id = item.utt_id
        if utt_id is not None:
            inputs.lattices_seen += 1
            if shard is not None and shard_of(utt_id, shard[1]) != shard[0]:
                continue
            inputs.lattices_read += 1
        if isinstance(item, Failure):
            inputs.failures.append(item)
            if utt_id is not None:
                seen.add(utt_id)  # a failed first copy still claims its id
        elif utt_id in seen:
            inputs.failures.append(Failure(path, utt_id, InputFormatError(
                "utterance id appears twice (expected unique ids across all inputs; skipped "
                "the second)", path=path, utt_id=utt_id)))
        else:
            seen.add(utt_id)
            inputs.items.append((path, item))
    return inputs


def work_units(count: int, batch_size: int, jobs: int) -> List[Tuple[int, int]]:
    """[start, stop) ranges over ``count`` lattices, at most ``batch_size`` each.

    As few units as that allows, rounded up to a multiple of ``jobs`` (at most
    ``count``) so that every worker gets as many, and sizes that differ by at
    most one: 240 lattices at 64 make 4 units of 60, not 64, 64, 64, 48.
    """
    units = -(-count // max(1, batch_size))  # ceil
    units = min(count, -(-units // jobs) * jobs)
    if units == 0:
        return []
    bounds = [count * index // units for index in range(units + 1)]
    return list(zip(bounds, bounds[1:]))


def make_unit(items: List[Tuple[Path, Lattice]]) -> Tuple[LatticeBatch, List[Path]]:
    """The ``LatticeBatch`` of some (file, lattice) items, and the file of each lattice."""
    return LatticeBatch.from_lattices([lattice for _, lattice in items]), [path for path, _ in items]
