"""Reading k2 lattice files (``torch.save(fsa.as_dict())``) without k2; layout in ``k2_pt``."""
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple, Union

import torch
from torch import Tensor

from rescorer.errors import Failure, InputFormatError
from rescorer.formats.torch_pickle import load_torch_dict
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.checks import split_invalid
from rescorer.lattice.fsavec import Lattice, splits_from_counts, words_from_labels
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike


# Lattices are batched and checked at most this many arcs at a time (at least one
# lattice): only one chunk's columns and check temporaries are allocated at once.
CHUNK_ARCS = 1_000_000


def read_k2_batch(path: PathLike, symbols: Optional[SymbolTable] = None
                  ) -> Tuple[LatticeBatch, List[Failure]]:
    """Read a k2 ``.pt`` file (Fsa or FsaVec) straight into a batch.

    Args:
      path:
        The file written by ``torch.save(fsa.as_dict())``.
      symbols:
        If given, every word id must be in it (else that lattice fails).

    Returns:
      ``(batch of the good lattices in file order, one failure per bad lattice)``.
      Per-arc float entries other than ``scores``/``lm_scores`` (``nnlm_scores``)
      are the batch's ``arc_extras``.

    Raises:
      InputFormatError: the file as a whole cannot be read (truncated, not a dict,
        malformed ``arcs``, ``utt_ids`` or attributes).
    """
    return k2_batch(load_torch_dict(path), Path(path), symbols)


def read_k2_chunks(path: PathLike, symbols: Optional[SymbolTable] = None,
                   max_arcs: int = CHUNK_ARCS) -> Tuple[List[LatticeBatch], List[Failure]]:
    """``read_k2_batch`` in consecutive batches of at most ``max_arcs`` arcs each.

    A lattice of more arcs is a chunk of its own. The lattices, in order, and
    the failures are those of ``read_k2_batch``; each chunk's columns and checks
    are built and freed before the next, so the peak is the file plus the batches.

    Raises:
      InputFormatError: as ``read_k2_batch``.
    """
    parts = _K2Parts.of(load_torch_dict(path), Path(path))
    batches: List[LatticeBatch] = []
    failures: List[Failure] = []
    for first, last in _chunks(parts.arc_splits, max_arcs):
        batch, chunk_failures = parts.batch(first, last, symbols)
        batches.append(batch)
        failures.extend(chunk_failures)
    return batches, failures


def iter_k2(path: PathLike, symbols: Optional[SymbolTable] = None
            ) -> Iterator[Union[Lattice, Failure]]:
    """Each good lattice of a k2 file, then a ``Failure`` per bad one.

    Raises:
      InputFormatError: the file as a whole cannot be read (see ``read_k2_batch``).
    """
    batches, failures = read_k2_chunks(path, symbols)
    for batch in batches:
        yield from batch.to_lattices()
    yield from failures


def k2_batch(content: dict, path: Optional[Path], symbols: Optional[SymbolTable] = None
             ) -> Tuple[LatticeBatch, List[Failure]]:
    """The batch of a k2 ``as_dict`` layout and a failure per bad lattice.

    Lattices claiming more states than their arcs can touch are refused before
    anything is allocated per state (see ``lattice.checks.split_invalid``).
    """
    parts = _K2Parts.of(content, path if path is not None else Path("<k2 dict>"))
    return parts.batch(0, len(parts.utt_ids), symbols)


def _chunks(arc_splits: Tensor, max_arcs: int) -> Iterator[Tuple[int, int]]:
    """Consecutive ``[first, last)`` lattice ranges of at most ``max_arcs`` arcs (>= 1 lattice)."""
    ends = arc_splits[1:].tolist()
    first, base = 0, 0
    for index, end in enumerate(ends):
        if index > first and end - base > max_arcs:
            yield first, index
            first, base = index, ends[index - 1]
    if first < len(ends) or not ends:
        yield first, len(ends)


@dataclass(frozen=True)
class _K2Parts:
    """A k2 dict's parts, each checked once for the whole file (views where the dtypes allow).

    Attributes:
      path:
        The file (for messages).
      state_splits, arc_splits:
        1-D int64 (U+1,) row splits.
      arc_rows:
        int32 (A, 4): src, dst, label, score bits (states local to each FSA).
      utt_ids:
        U utterance ids.
      scores, lm_scores:
        float32 (A,), the total and (or None) the n-gram part.
      aux_labels:
        None (words = labels), an int (A,) tensor, or ragged ``(row_splits (A+1,),
        values)`` int64.
      extras:
        The other per-arc float entries, float32 (A,) each.
    """

    path: Path
    state_splits: Tensor
    arc_splits: Tensor
    arc_rows: Tensor
    utt_ids: List[str]
    scores: Tensor
    lm_scores: Optional[Tensor]
    aux_labels: Union[None, Tensor, Tuple[Tensor, Tensor]]
    extras: Dict[str, Tensor]

    @classmethod
    def of(cls, content: dict, path: Path) -> "_K2Parts":
        """The parts of ``content``; raises ``InputFormatError`` for a malformed file."""
        state_splits, arc_splits, arc_rows = _fsas(content, path)
        utt_ids = _utt_ids(content, state_splits.numel() - 1, path)
        num_arcs = arc_rows.shape[0]
        scores = _float_attribute(content, "scores", num_arcs, path)
        if scores is None:
            scores = arc_rows[:, 3].contiguous().view(torch.float32)
        lm_scores = _float_attribute(content, "lm_scores", num_arcs, path)
        aux_labels = _aux_labels_of(content.get("aux_labels"), num_arcs, path)
        extras = {name: value.to(torch.float32) for name, value in content.items()
                  if name not in ("scores", "lm_scores") and isinstance(value, Tensor)
                  and value.is_floating_point() and tuple(value.shape) == (num_arcs,)}
        return cls(path, state_splits, arc_splits, arc_rows, utt_ids, scores, lm_scores,
                   aux_labels, extras)

    def batch(self, first: int, last: int, symbols: Optional[SymbolTable]
              ) -> Tuple[LatticeBatch, List[Failure]]:
        """The checked batch of lattices ``[first, last)`` and a failure per bad one."""
        state_splits = self.state_splits[first:last + 1] - self.state_splits[first]
        first_arc, last_arc = int(self.arc_splits[first]), int(self.arc_splits[last])
        arc_splits = self.arc_splits[first:last + 1] - first_arc
        arcs = slice(first_arc, last_arc)
        rows = self.arc_rows[arcs]
        offsets = torch.repeat_interleave(state_splits[:-1], arc_splits[1:] - arc_splits[:-1])
        src = rows[:, 0].to(torch.int64)
        src += offsets
        dst = rows[:, 1].to(torch.int64)
        dst += offsets
        del offsets
        labels = rows[:, 2].to(torch.int64)
        word_splits, word_ids = self._words(labels, first_arc, last_arc)
        scores = self.scores[arcs]
        lm_scores = None if self.lm_scores is None else self.lm_scores[arcs]
        batch = LatticeBatch(
            utt_ids=self.utt_ids[first:last], state_splits=state_splits, arc_splits=arc_splits,
            src=src, dst=dst, labels=labels, word_splits=word_splits, word_ids=word_ids,
            am_scores=scores if lm_scores is None else scores - lm_scores,
            ngram_scores=torch.zeros_like(scores) if lm_scores is None else lm_scores,
            arc_extras={name: value[arcs] for name, value in self.extras.items()})
        batch, failures, _ = split_invalid(batch, [self.path] * batch.num_utts, symbols)
        return batch, failures

    def _words(self, labels: Tensor, first_arc: int, last_arc: int) -> Tuple[Tensor, Tensor]:
        """Ragged ``[arc][word]`` (splits, ids) of arcs ``[first_arc, last_arc)``."""
        if self.aux_labels is None:
            return words_from_labels(labels)
        if isinstance(self.aux_labels, Tensor):
            return words_from_labels(self.aux_labels[first_arc:last_arc])
        row_splits, values = self.aux_labels
        row_splits = row_splits[first_arc:last_arc + 1]
        values = values[int(row_splits[0]):int(row_splits[-1])]
        counts = row_splits[1:] - row_splits[:-1]
        arc_of_value = torch.repeat_interleave(torch.arange(counts.numel()), counts)
        is_word = values > 0  # drop epsilon 0 and the final -1
        words_per_arc = torch.zeros(counts.numel(), dtype=torch.int64).index_add_(
            0, arc_of_value, is_word.to(torch.int64))
        return splits_from_counts(words_per_arc), values[is_word]


def _fsas(content: dict, path: PathLike) -> Tuple[Tensor, Tensor, Tensor]:
    """(state_splits, arc_splits) int64 (F+1,) and arc rows int32 (A, 4) of a k2 dict."""
    arcs = _arcs_tensor(content, path)
    if arcs.dim() == 1:
        return _split_fsa_vec(arcs, path)
    state_splits = torch.tensor([0, int(arcs[:, :2].max()) + 1 if arcs.numel() else 0])
    return state_splits, torch.tensor([0, arcs.shape[0]]), arcs


def _arcs_tensor(content: dict, path: PathLike) -> Tensor:
    """The ``arcs`` entry, checked for dtype and rank."""
    arcs = content.get("arcs")
    if not isinstance(arcs, Tensor) or arcs.dtype != torch.int32 or arcs.dim() not in (1, 2):
        described = type(arcs).__name__ if not isinstance(arcs, Tensor) else \
            f"{arcs.dtype} tensor of rank {arcs.dim()}"
        raise InputFormatError(f"not a k2 lattice file: 'arcs' is {described} "
                               "(expected an int32 tensor of rank 1 or 2)", path=path)
    if arcs.dim() == 2 and arcs.shape[1] != 4:
        raise InputFormatError(f"'arcs' has shape {tuple(arcs.shape)} (expected (A, 4))", path=path)
    return arcs


def _split_fsa_vec(arcs: Tensor, path: PathLike) -> Tuple[Tensor, Tensor, Tensor]:
    """Header of a 1-D FsaVec ``arcs``: (state_splits, arc_splits, arc rows (A, 4))."""
    def fail(problem: str) -> None:
        raise InputFormatError(f"malformed FsaVec 'arcs': {problem}", path=path)

    if arcs.numel() < 4:
        fail(f"{arcs.numel()} values (expected a header of at least 4)")
    num_fsas = int(arcs[0])
    header = 2 + 2 * (num_fsas + 1)
    if num_fsas < 0 or arcs.numel() < header:
        fail(f"{num_fsas} FSAs need a header of {header} values (got {arcs.numel()} in all)")
    state_splits = arcs[2:3 + num_fsas].to(torch.int64)
    arc_splits = arcs[3 + num_fsas:header].to(torch.int64)
    for name, splits in (("row_splits1", state_splits), ("row_splits12", arc_splits)):
        if int(splits[0]) != 0 or bool((splits[1:] < splits[:-1]).any()):
            fail(f"{name} {splits.tolist()[:10]} is not non-decreasing from 0")
    num_arcs = int(arc_splits[-1])
    if arcs.numel() != header + 4 * num_arcs:
        fail(f"{arcs.numel() - header} arc values (expected 4 x {num_arcs}; truncated?)")
    return state_splits, arc_splits, arcs[header:].view(num_arcs, 4)


def _utt_ids(content: dict, num_fsas: int, path: PathLike) -> List[str]:
    """The ``utt_ids`` entry, or ``STEM-INDEX`` (``STEM`` for one FSA) when absent."""
    utt_ids = content.get("utt_ids")
    if utt_ids is None:
        stem = Path(path).name.split(".")[0]
        return [stem] if num_fsas == 1 else [f"{stem}-{index}" for index in range(num_fsas)]
    if not isinstance(utt_ids, (list, tuple)) or not all(isinstance(u, str) for u in utt_ids):
        raise InputFormatError("'utt_ids' is not a list of str", path=path)
    if len(utt_ids) != num_fsas:
        raise InputFormatError(f"'utt_ids' has {len(utt_ids)} entries (expected one per "
                               f"FSA, {num_fsas})", path=path)
    return list(utt_ids)


def _float_attribute(content: dict, name: str, num_arcs: int, path: PathLike) -> Optional[Tensor]:
    """An optional float32 per-arc attribute, checked for shape."""
    value = content.get(name)
    if value is None:
        return None
    if not isinstance(value, Tensor) or not value.is_floating_point() or \
            tuple(value.shape) != (num_arcs,):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise InputFormatError(f"'{name}' is {shape} (expected a float tensor of shape "
                               f"({num_arcs},))", path=path)
    return value.to(torch.float32)


def _aux_labels_of(aux_labels: object, num_arcs: int, path: PathLike
                   ) -> Union[None, Tensor, Tuple[Tensor, Tensor]]:
    """The ``aux_labels`` entry checked: None, an int (A,) tensor, or ragged (row_splits, values)."""
    if aux_labels is None:
        return None
    if isinstance(aux_labels, Tensor):
        if aux_labels.dtype not in (torch.int32, torch.int64) or \
                tuple(aux_labels.shape) != (num_arcs,):
            raise InputFormatError(f"'aux_labels' is a {aux_labels.dtype} tensor of shape "
                                   f"{tuple(aux_labels.shape)} (expected int32 ({num_arcs},))",
                                   path=path)
        return aux_labels
    return _ragged_parts(aux_labels, num_arcs, path)


def _ragged_parts(aux_labels: object, num_arcs: int, path: PathLike) -> Tuple[Tensor, Tensor]:
    """(row_splits int64 (A+1,), values int64) of a 2-axis ragged aux_labels stand-in."""
    state = getattr(aux_labels, "state", None)
    if not isinstance(state, tuple) or len(state) != 3 or not all(
        isinstance(part, Tensor) for part in (state[0], state[2])
    ):
        raise InputFormatError("'aux_labels' is neither an int tensor nor a 2-axis k2 "
                               f"RaggedTensor (got {type(aux_labels).__name__})", path=path)
    row_splits, values = state[0].to(torch.int64), state[2].to(torch.int64)
    if row_splits.numel() != num_arcs + 1 or int(row_splits[0]) != 0 or \
            int(row_splits[-1]) != values.numel() or bool((row_splits[1:] < row_splits[:-1]).any()):
        raise InputFormatError(f"ragged 'aux_labels' has row splits of length "
                               f"{row_splits.numel()} over {values.numel()} values (expected "
                               f"{num_arcs + 1} non-decreasing splits, one row per arc)", path=path)
    return row_splits, values


def batch_from_k2_dict(content: dict, path: Optional[PathLike] = None) -> LatticeBatch:
    """``LatticeBatch`` of a k2 ``as_dict`` layout; raises ``InputFormatError``.

    Per-arc float entries other than ``scores``/``lm_scores`` become ``arc_extras``.
    """
    batch, failures = k2_batch(content, None if path is None else Path(path))
    if failures:
        raise failures[0].error
    return batch
