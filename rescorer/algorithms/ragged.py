"""Ragged-array and segment operations shared by the lattice algorithms.

Everything here is a vectorised building block over flat tensors plus row splits
(k2's ``RaggedTensor`` layout without k2): expanding ``[row][item]`` ranges,
selecting rows of a ragged array, per-segment max / log-sum-exp, distinct rows.
"""
import math
from typing import Tuple

import torch
from torch import Tensor


def expand_ranges(starts: Tensor, counts: Tensor) -> Tensor:
    """Concatenate the integer ranges ``starts[i] .. starts[i] + counts[i] - 1``.

    One running sum of steps: 1 inside a range, a jump where one begins. Two
    linear passes over the output, a fifth of ``repeat_interleave`` + ``arange``
    on CPU (the output's pages are touched once).

    Args:
      starts:
        1-D int64 tensor of shape (N,), first value of each range.
      counts:
        1-D int64 tensor of shape (N,), length of each range (>= 0).

    Returns:
      1-D int64 tensor of shape (counts.sum(),), the ranges one after another.
    """
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64, device=starts.device)
    if not bool((counts > 0).all()):
        used = (counts > 0).nonzero().squeeze(1)
        starts, counts = starts.index_select(0, used), counts.index_select(0, used)
    firsts = torch.cumsum(counts, dim=0) - counts  # (N,) where each range begins
    lasts = starts + counts - 1  # (N,) each range's last value
    steps = torch.ones(total, dtype=torch.int64, device=starts.device)
    steps[0] = starts[0]
    steps.index_copy_(0, firsts[1:], starts[1:] - lasts[:-1])
    return steps.cumsum_(0)


def select_rows(splits: Tensor, values: Tensor, rows: Tensor) -> Tuple[Tensor, Tensor]:
    """Rows ``rows`` of the ragged array ``(splits, values)``, in that order.

    Args:
      splits:
        1-D int64 tensor of shape (R+1,), row splits.
      values:
        1-D tensor of shape (splits[-1],), the items.
      rows:
        1-D int64 tensor of shape (N,), rows to take (repeats allowed).

    Returns:
      ``(new_splits, new_values)``: (N+1,) splits and the concatenated items.
    """
    counts = splits[1:][rows] - splits[:-1][rows]  # (N,)
    new_splits = torch.zeros(rows.numel() + 1, dtype=torch.int64, device=rows.device)
    torch.cumsum(counts, dim=0, out=new_splits[1:])
    return new_splits, values[expand_ranges(splits[:-1][rows], counts)]


def segment_max(values: Tensor, segments: Tensor, num_segments: int) -> Tensor:
    """Per-segment maximum; empty segments give -inf.

    Args:
      values:
        1-D float tensor of shape (N,).
      segments:
        1-D int64 tensor of shape (N,), the segment of each value.
      num_segments:
        Number of segments G.

    Returns:
      1-D float tensor of shape (G,).
    """
    result = torch.full((num_segments,), float("-inf"), dtype=values.dtype, device=values.device)
    return result.scatter_reduce(0, segments, values, "amax", include_self=True)


def segment_logsumexp(values: Tensor, segments: Tensor, num_segments: int) -> Tensor:
    """Per-segment log-sum-exp, stable, with -inf for empty or all -inf segments.

    Args:
      values:
        1-D float tensor of shape (N,).
      segments:
        1-D int64 tensor of shape (N,), the segment of each value.
      num_segments:
        Number of segments G.

    Returns:
      1-D float tensor of shape (G,).
    """
    maxima = segment_max(values, segments, num_segments)
    shift = torch.where(torch.isinf(maxima), torch.zeros_like(maxima), maxima)  # (G,)
    sums = torch.zeros(num_segments, dtype=values.dtype, device=values.device)
    sums = sums.scatter_add(0, segments, torch.exp(values - shift[segments]))
    return shift + torch.log(sums)


def unique_rows(rows: Tensor) -> Tuple[Tensor, Tensor]:
    """The distinct rows of an integer matrix, sorted lexicographically.

    Same result as ``torch.unique(rows, dim=0, return_inverse=True)``, several
    times faster on CPU: columns are packed into one int64 key per row (one
    weighted sum when all the columns' spans fit 62 bits, else column by column,
    re-ranked by a 1-D unique whenever the next column would overflow).

    Args:
      rows:
        2-D int64 tensor of shape (N, C).

    Returns:
      ``(distinct, inverse)``: 2-D int64 (U, C) distinct rows in lexicographic
      order, and 1-D int64 (N,) with ``distinct[inverse] == rows``.
    """
    num_rows, num_columns = rows.shape
    if num_rows == 0:
        return rows, torch.zeros(0, dtype=torch.int64, device=rows.device)
    low = rows.min(dim=0).values  # (C,)
    spans = (rows.max(dim=0).values - low + 1).tolist()
    if math.prod(spans) < 1 << 62:  # the usual case: one weighted sum packs every column
        weights = [math.prod(spans[column + 1:]) for column in range(num_columns)]
        key = ((rows - low) * torch.tensor(weights, device=rows.device)).sum(dim=1)
    else:
        key = torch.zeros(num_rows, dtype=torch.int64, device=rows.device)
        key_span = 1
        for column in range(num_columns):
            if key_span * spans[column] >= 1 << 62:
                distinct_keys, key = torch.unique(key, return_inverse=True)  # re-rank
                key_span = distinct_keys.numel()
            key = key * spans[column] + (rows[:, column] - low[column])
            key_span *= spans[column]
    distinct_keys, inverse = torch.unique(key, return_inverse=True)
    first = torch.full((distinct_keys.numel(),), num_rows, dtype=torch.int64, device=rows.device)
    first = first.scatter_reduce(0, inverse, torch.arange(num_rows, device=rows.device), "amin",
                                 include_self=True)
    return rows[first], inverse
