"""k2 lattices saved as ``torch.save(fsa.as_dict())``: the layout, and writing it without k2.

Reading is ``k2_read``.

Layout of the dict (checked against k2 1.23.4, see tests/interop/):

- ``arcs``: int32. For an FsaVec a 1-D tensor
  ``[num_fsas, 0, row_splits1 (num_fsas+1 cumulative state counts),
  row_splits12 (num_fsas+1 cumulative arc counts), arc_0 (4 values), arc_1, ...]``;
  for a single Fsa a 2-D tensor of shape (A, 4). Columns: src, dst, label and the
  score's float32 bits. States are local to each FSA; the highest-numbered state is
  the single final state, entered exactly by the label -1 arcs.
- ``aux_labels`` (optional): int32 (A,), or k2's ragged ``[arc][word]`` tensor
  pickled as ``_k2.ragged.RaggedTensor`` with state ``(row_splits, 'row_ids1', values)``
  (read and written through ``torch_pickle.RaggedStandIn``; k2 ends the row of an
  arc into the final state with -1).
- ``lm_scores`` (optional): float32 (A,), the n-gram part of the scores.
- ``utt_ids`` (optional, ours): list of str, one per FSA. k2's ``Fsa.from_dict``
  keeps it as a non-tensor attribute.
- Other per-arc float entries (``nnlm_scores``) become the batch's ``arc_extras``;
  the rest (``labels_version``, ``tokens`` ...) are ignored.

Mapping: words = aux_labels if present else labels (0 and -1 never words);
am = scores - lm_scores (or scores); ngram = lm_scores (or 0).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from torch import Tensor

from rescorer.formats.torch_pickle import RaggedStandIn, save_torch_dict
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.fsavec import Lattice, splits_from_counts
from rescorer.atomic import atomic_save
from rescorer.paths import PathLike


def lattices_to_k2_dict(lattices: Sequence[Lattice],
                        extra_scores: Optional[Dict[str, Sequence[Tensor]]] = None) -> dict:
    """The ``FsaVec.as_dict()`` layout of ``lattices`` (plus ``utt_ids`` and extras).

    Args:
      lattices:
        The lattices, one FSA each, in order.
      extra_scores:
        Optional float attributes by name (e.g. ``nnlm_scores``), one 1-D float32
        tensor of shape (A,) per lattice.

    Returns:
      The ``as_dict`` layout: ``arcs`` (1-D int32), ``lm_scores``, ``aux_labels`` (only
      when words differ from labels: int32, or a ``RaggedStandIn`` when an arc carries
      several words), ``utt_ids``, extras. Save it with ``write_k2`` (or
      ``save_torch_dict``) so the ragged form pickles as k2's class.

    Caution:
      k2 needs each FSA's arcs ordered by source state, so arcs are stably sorted
      by ``src`` (extras with them); reading back gives the lattice in that order.
    """
    orders = [torch.sort(lattice.src, stable=True).indices for lattice in lattices]
    lattices = [_reorder(lattice, order) for lattice, order in zip(lattices, orders)]
    extra_scores = {name: [value[order] for value, order in zip(values, orders)]
                    for name, values in (extra_scores or {}).items()}
    num_states = torch.tensor([lattice.num_states for lattice in lattices], dtype=torch.int64)
    num_arcs = torch.tensor([lattice.num_arcs for lattice in lattices], dtype=torch.int64)
    labels = _cat([lattice.labels for lattice in lattices], torch.int64)
    am = _cat([lattice.am_scores for lattice in lattices], torch.float32)
    ngram = _cat([lattice.ngram_scores for lattice in lattices], torch.float32)
    arc_rows = torch.stack([
        _cat([lattice.src for lattice in lattices], torch.int64).to(torch.int32),
        _cat([lattice.dst for lattice in lattices], torch.int64).to(torch.int32),
        labels.to(torch.int32),
        (am + ngram).view(torch.int32),
    ], dim=1)  # (A, 4)
    header = torch.cat([
        torch.tensor([len(lattices), 0]),
        splits_from_counts(num_states),
        splits_from_counts(num_arcs),
    ]).to(torch.int32)
    content = {
        "arcs": torch.cat([header, arc_rows.reshape(-1)]),
        "lm_scores": ngram,
        "utt_ids": [lattice.utt_id for lattice in lattices],
    }
    aux_labels = _aux_labels(lattices, labels)
    if aux_labels is not None:
        content["aux_labels"] = aux_labels
    for name, values in (extra_scores or {}).items():
        content[name] = _cat(list(values), torch.float32)
    return content


def _reorder(lattice: Lattice, order: Tensor) -> Lattice:
    """``lattice`` with its arcs (and their words) in the order ``order``."""
    counts = lattice.words_per_arc[order]  # (A,) words of each arc in the new order
    splits = splits_from_counts(counts)
    offset_in_arc = torch.arange(int(splits[-1])) - torch.repeat_interleave(splits[:-1], counts)
    word_order = torch.repeat_interleave(lattice.word_splits[order], counts) + offset_in_arc
    return Lattice(
        utt_id=lattice.utt_id, num_states=lattice.num_states,
        src=lattice.src[order], dst=lattice.dst[order], labels=lattice.labels[order],
        word_splits=splits, word_ids=lattice.word_ids[word_order],
        am_scores=lattice.am_scores[order], ngram_scores=lattice.ngram_scores[order],
    )


def _aux_labels(lattices: Sequence[Lattice], labels: Tensor
                ) -> Optional[Union[Tensor, RaggedStandIn]]:
    """The aux_labels of the concatenated arcs, or None when they equal the labels.

    Each arc's aux labels are its words, then -1 if it enters the final state (k2's
    convention). int32 (A,) when every arc has at most one; else ragged ``[arc][label]``.
    """
    counts = _cat([lattice.words_per_arc for lattice in lattices], torch.int64)  # (A,)
    word_ids = _cat([lattice.word_ids for lattice in lattices], torch.int64)
    is_final = labels == -1
    if bool((counts + is_final.to(torch.int64) > 1).any()):
        return _ragged_aux_labels(counts, word_ids, is_final)
    words = torch.zeros_like(labels)
    words[is_final] = -1
    words[counts == 1] = word_ids
    return None if torch.equal(words, labels) else words.to(torch.int32)


def _ragged_aux_labels(counts: Tensor, word_ids: Tensor, is_final: Tensor) -> RaggedStandIn:
    """Ragged aux_labels: the words of each arc, -1 appended on the final arcs.

    Args:
      counts:
        (A,) int64, words per arc.
      word_ids:
        (counts.sum(),) int64, the words of all arcs in arc order.
      is_final:
        (A,) bool, arcs entering their FSA's final state.
    """
    row_splits = splits_from_counts(counts + is_final.to(torch.int64))
    values = torch.full((int(row_splits[-1]),), -1, dtype=torch.int64)
    word_splits = splits_from_counts(counts)
    offset_in_arc = torch.arange(word_ids.numel()) - torch.repeat_interleave(word_splits[:-1], counts)
    values[torch.repeat_interleave(row_splits[:-1], counts) + offset_in_arc] = word_ids
    return RaggedStandIn.from_parts(row_splits, values)


def _cat(tensors: List[Tensor], dtype: torch.dtype) -> Tensor:
    """Concatenate 1-D tensors (an empty list gives an empty tensor)."""
    if not tensors:
        return torch.zeros(0, dtype=dtype)
    return torch.cat([tensor.to(dtype) for tensor in tensors])


def write_k2(path: PathLike, lattices: Sequence[Lattice],
             extra_scores: Optional[Dict[str, Sequence[Tensor]]] = None) -> None:
    """Write ``lattices`` as one FsaVec file, atomically (see ``lattices_to_k2_dict``)."""
    content = lattices_to_k2_dict(lattices, extra_scores)
    atomic_save(path, lambda handle: save_torch_dict(content, handle))


def write_k2_batch(path: PathLike, batch: LatticeBatch) -> None:
    """Write ``batch`` (with its ``arc_extras``) as one FsaVec file, atomically."""
    content = batch_to_k2_dict(batch)
    atomic_save(path, lambda handle: save_torch_dict(content, handle))


def batch_to_k2_dict(batch: LatticeBatch) -> dict:
    """The ``FsaVec.as_dict()`` layout of ``batch`` (see ``lattices_to_k2_dict``)."""
    extras = {name: [batch.arc_extras_of(index)[name] for index in range(batch.num_utts)]
              for name in batch.arc_extras}
    return lattices_to_k2_dict(batch.to_lattices(), extras)
