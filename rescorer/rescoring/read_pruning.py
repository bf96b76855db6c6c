"""Beam pruning as lattices are read, and what a run keeps of each lattice as read.

In lattice mode with a beam, only the arcs within the beam of the first-pass
best path can reach an output, and on real lattices they are few (asr-dev at
beam 8: 9,291 of 2,967,977 arcs). So ``read_inputs`` prunes groups of
lattices as soon as they are read (levels, forward-backward and selection over
the whole group at once, in the reading worker under ``--jobs``), and only the
pruned lattices are kept, moved between processes and cut into work units.

Pruning a pruned lattice again with the same or a tighter beam keeps exactly
the arcs that pruning the lattice as read would: the best path through a
surviving arc survives, so the forward and backward scores of the surviving
states are the same maxima, bit for bit. The job's ``--max-arcs`` retries
(halved beams) therefore start from the pruned lattice.

What the outputs need of the lattice as read is kept beside it, by utterance
id (``InputFacts``): its arcs, its word and OOV counts (``summary.json``) and,
with references, its oracle error count. A lattice with a graph problem (a
cycle, no path) fails here, with the message the job would give.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Iterable, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor

from rescorer.algorithms.oracle import oracle_counts
from rescorer.algorithms.prune import beam_survivors
from rescorer.algorithms.topsort import LevelSchedule, select_arcs
from rescorer.errors import Failure, LatticeError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.combine import first_pass_scores
from rescorer.rescoring.config import RescoreConfig
from rescorer.formats.detect import iter_inputs, iter_lattices
from rescorer.rescoring.inputs import FileItems, shard_of
from rescorer.rescoring.search import reference_word_ids
from rescorer.rescoring.timing import stage
from rescorer.rescoring.tokens import ArcTokenizer

if TYPE_CHECKING:
    from rescorer.rescoring.context import RescoreContext

# Arcs of the lattices pruned together, at most: the group is held unpruned, with its
# forward, backward and through-arc float64 scores and, with references, the oracle's
# (states x longest reference) int32 costs.
GROUP_ARCS = 1_000_000


@dataclass(frozen=True)
class InputFacts:
    """A lattice as read, as far as the outputs need it once it is pruned.

    Attributes:
      arcs:
        Its arcs.
      words:
        Word occurrences on its arcs (each arc's words once per arc).
      oov_words:
        Those the neural LM only knows as ``<unk>``.
      arpa_oov_words:
        Those the ``--ngram-lm`` ARPA only knows as ``<unk>`` (0 without one).
      oracle:
        (errors, reference words) of its best path against the reference, or
        None without a reference.
    """

    arcs: int
    words: int
    oov_words: int
    arpa_oov_words: int
    oracle: Optional[Tuple[int, int]] = None


def prunes_as_read(config: RescoreConfig) -> bool:
    """Whether a run prunes its lattices as it reads them (lattice mode, a finite beam)."""
    return config.mode == "lattice" and config.beam is not None and math.isfinite(config.beam)


def word_counts(batch: LatticeBatch, tokenizer: ArcTokenizer) -> Tuple[Tensor, Tensor]:
    """Word occurrences on each lattice's arcs, and how many of them the LM lacks.

    Args:
      batch:
        U lattices whose word ids are all in the tokenizer's table.
      tokenizer:
        Maps word ids to LM tokens (cached per word id); tells which are OOV.

    Returns:
      ``(words, oov_words)``: two 1-D int64 tensors of shape (U,).
    """
    word_ids = batch.word_ids.cpu()  # (W,) every word occurrence, arc by arc
    present = torch.bincount(word_ids)  # (max id + 1,) linear time, where unique() sorts
    types = present.nonzero().squeeze(1)  # (T,) each word type once
    is_oov = torch.zeros_like(present)  # (max id + 1,) 1 for the LM's OOV word ids
    is_oov[types] = tokenizer.oov_flags(types)
    bounds = batch.word_splits.cpu()[batch.arc_splits.cpu()]  # (U+1,) each lattice's words
    oov_before = splits_from_counts(is_oov[word_ids])  # (W+1,) OOV words before each position
    return bounds[1:] - bounds[:-1], oov_before[bounds[1:]] - oov_before[bounds[:-1]]


def input_facts(batch: LatticeBatch, context: "RescoreContext", symbols: SymbolTable,
                schedule: Optional[LevelSchedule] = None) -> List[InputFacts]:
    """The ``InputFacts`` of every lattice of ``batch`` (word ids in ``symbols``), in order.

    ``schedule``: the batch's ``LevelSchedule``, for the oracle of the lattices
    with a reference (none without it).
    """
    words, oov = word_counts(batch, context.tokenizer(symbols))
    arpa_oov = torch.zeros_like(oov)
    if context.ngram is not None:
        _, arpa_oov = word_counts(batch, context.ngram_tokenizer(symbols))
    oracles: Dict[int, Tuple[int, int]] = {}
    if context.references is not None and schedule is not None:
        references = {index: reference_word_ids(context.references[utt], symbols)
                      for index, utt in enumerate(batch.utt_ids) if utt in context.references}
        oracles = oracle_counts(schedule, references, range(batch.num_utts))
    arcs = (batch.arc_splits[1:] - batch.arc_splits[:-1]).tolist()
    return [InputFacts(arcs[index], int(words[index]), int(oov[index]), int(arpa_oov[index]),
                       oracles.get(index)) for index in range(batch.num_utts)]


Item = Union[Lattice, LatticeBatch, Failure]


def read_items(files: List[Path], symbols: SymbolTable) -> Iterator[Tuple[Path, Union[Lattice, Failure]]]:
    """(file, lattice or failure) of ``files`` in order, as ``iter_lattices`` reads them."""
    for path in files:
        for item in iter_lattices([path], symbols):
            yield path, item


def _read_batched(files: List[Path], symbols: SymbolTable) -> Iterator[Tuple[Path, Item]]:
    """``read_items``, with a k2 file's lattices in ``LatticeBatch`` chunks (``iter_inputs``)."""
    for path in files:
        for item in iter_inputs([path], symbols):
            yield path, item


def read_inputs(files: List[Path], symbols: SymbolTable, context: "RescoreContext",
                config: RescoreConfig) -> Tuple[FileItems, Dict[str, InputFacts]]:
    """``prune_items`` of ``files`` as they are read: unpruned, only the lattices of the file
    being read (a reader returns a file's lattices together) and one group are held.

    ``symbols`` is the frozen ``--words`` table, or a growing table (SLF words are added).
    """
    with stage("read"):
        return prune_items(_read_batched(files, symbols), context, config, symbols)


def prune_items(items: Iterable[Tuple[Path, Item]], context: "RescoreContext",
                config: RescoreConfig, symbols: SymbolTable
                ) -> Tuple[FileItems, Dict[str, InputFacts]]:
    """Keep the ``InputFacts`` of each lattice of ``items``; prune it if the run does.

    Lattices are taken in groups of up to ``GROUP_ARCS`` arcs, in order; each
    group is checked for graph problems and, when ``prunes_as_read(config)``,
    pruned with ``config.beam``. Under ``--shard`` only the shard's lattices
    are: the others pass as read (``inputs.select_inputs`` counts and drops them).

    Args:
      items:
        (file, lattice or failure) in reading order (any iterable: a reader's
        lattices are pruned while the next ones are read); word ids in ``symbols``.
        A ``LatticeBatch`` item stands for its lattices in order; without
        ``--shard`` it is pruned as one group, as it is.
      context, config:
        The run's model context (tokenizers, references) and settings.
      symbols:
        The lattices' word table.

    Returns:
      ``(items, facts)``: the items in the same order, each lattice pruned (or
      replaced by the ``Failure`` of its graph problem), and utterance id ->
      ``InputFacts`` (of the first good lattice of a repeated id; ``select_inputs``
      keeps the first lattice, good or not).
    """
    out: List[Optional[Tuple[Path, Union[Lattice, Failure]]]] = []  # None: a group's place
    facts: Dict[str, InputFacts] = {}
    group: List[Tuple[int, Path, Lattice]] = []  # (place in out, file, lattice)
    group_arcs = 0

    def flush() -> None:
        with stage("prune"):
            batch = LatticeBatch.from_lattices([lattice for _, _, lattice in group])
        done = _prune_group([path for _, path, _ in group], batch, context, config, symbols, facts,
                            [lattice for _, _, lattice in group])
        for (place, _, _), item in zip(group, done):
            out[place] = item
        group.clear()

    for path, item in _unbatched_under_shard(items, config):
        if isinstance(item, LatticeBatch):  # a reader's chunk: pruned as it is
            if group:
                flush()
                group_arcs = 0
            out.extend(_prune_group([path] * item.num_utts, item, context, config, symbols, facts))
            continue
        if not isinstance(item, Lattice) or (
                config.shard is not None and shard_of(item.utt_id, config.shard[1]) != config.shard[0]):
            out.append((path, item))
            continue
        if group and group_arcs + item.num_arcs > GROUP_ARCS:
            flush()
            group_arcs = 0
        out.append(None)
        group.append((len(out) - 1, path, item))
        group_arcs += item.num_arcs
    if group:
        flush()
    return out, facts  # every place is filled


def _unbatched_under_shard(items: Iterable[Tuple[Path, Item]], config: RescoreConfig
                           ) -> Iterator[Tuple[Path, Item]]:
    """``items``, with each batch as its lattices under ``--shard`` (a shard takes some)."""
    for path, item in items:
        if isinstance(item, LatticeBatch) and config.shard is not None:
            for lattice in item.to_lattices():
                yield path, lattice
        else:
            yield path, item


def _prune_group(paths: List[Path], batch: LatticeBatch, context: "RescoreContext",
                 config: RescoreConfig, symbols: SymbolTable, facts: Dict[str, InputFacts],
                 lattices: Optional[List[Lattice]] = None) -> FileItems:
    """The items of the lattices of ``batch`` (lattice u read from ``paths[u]``), pruned.

    Adds their facts to ``facts``. ``lattices``: the batch's lattices, when the
    caller has them (else they are cut from the batch if the run does not prune).
    """
    with stage("prune"):
        schedule, problems = LevelSchedule.checked(batch)
        good = [index for index in range(batch.num_utts) if index not in problems]
        if problems and good:
            schedule = LevelSchedule.of(batch.select(good))
    if lattices is None and not prunes_as_read(config):
        lattices = batch.to_lattices()
    # Each place gets a failure or its pruned lattice below, or keeps its lattice as read.
    out: list = [(path, None) for path in paths] if lattices is None else list(zip(paths, lattices))
    for index, error in problems.items():
        path = paths[index]
        error.path = error.path or str(path)
        out[index] = (path, Failure(path, batch.utt_ids[index], error))
    if not good:
        return out
    batch = schedule.batch
    with stage("read"):
        for utt, lattice_facts in zip(batch.utt_ids, input_facts(batch, context, symbols, schedule)):
            facts.setdefault(utt, lattice_facts)
    if not prunes_as_read(config):
        return out
    with stage("prune"):
        first_pass = first_pass_scores(batch.am_scores, batch.ngram_scores, batch.words_per_arc,
                                       config.scales, arpa_source=config.ngram_source == "arpa")
        pruned, _ = select_arcs(batch, beam_survivors(schedule, first_pass, config.beam))
    kept = (pruned.arc_splits[1:] - pruned.arc_splits[:-1]).tolist()
    for index, lattice, arcs in zip(good, pruned.to_lattices(), kept):
        path = out[index][0]
        # A finite best path always survives: no arc left means no finite first-pass path.
        out[index] = (path, lattice) if arcs else (path, Failure(path, lattice.utt_id, LatticeError(
            "no path has a finite first-pass score (do --am-scale or --ngram-scale overflow?)",
            path=path, utt_id=lattice.utt_id)))
    return out
