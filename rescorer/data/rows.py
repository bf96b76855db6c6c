"""Batches read straight from a token cache: the same rows as ``contiguous_rows`` / ``sentence_rows``.

A ``StreamRows`` is a set of rows, row r covering stream positions
``[row_starts[r], row_stops[r])``, cut into column segments of ``bptt``. Each
segment is gathered from the memory-mapped cache when asked for, so memory
holds one (B, bptt) batch, whatever the corpus size::

    training (contiguous_rows):  row r = [r * W, (r + 1) * W), W = T // B, every row full
    evaluation (sentence_rows):  rows start at sentence starts, shorter rows padded

At position p the target is ``tokens[p]``, the input is ``bos_id`` at a sentence
start and ``tokens[p - 1]`` elsewhere, and ``resets`` is True at sentence starts
(and on padding, whose target is ``IGNORE_INDEX``): exactly ``encode_sentences``'s
stream. ``tests/data/test_data_rows.py`` checks equality with the in-memory path.
"""
from typing import Tuple

import numpy as np
import torch

from rescorer.data.batching import IGNORE_INDEX, Batch, shard_rows
from rescorer.data.cache import TokenCache


class StreamRows:
    """Rows of a cached stream, served one segment at a time.

    Args:
      cache:
        The token cache (or a prefix of it).
      row_starts, row_stops:
        1-D int64 arrays of shape (B,): each row's first and one-past-last position.
    """

    def __init__(self, cache: TokenCache, row_starts: np.ndarray, row_stops: np.ndarray) -> None:
        self.cache = cache
        self.row_starts = np.asarray(row_starts, dtype=np.int64)
        self.row_stops = np.asarray(row_stops, dtype=np.int64)
        self.width = int((self.row_stops - self.row_starts).max()) if self.row_starts.shape[0] else 0

    @property
    def num_rows(self) -> int:
        return self.row_starts.shape[0]

    def rows(self, start: int, stop: int) -> "StreamRows":
        """Rows [start, stop), e.g. one DDP rank's share (it reads only those positions)."""
        return StreamRows(self.cache, self.row_starts[start:stop], self.row_stops[start:stop])

    def shard(self, rank: int, world_size: int) -> "StreamRows":
        """This rank's rows under ``shard_rows``."""
        return self.rows(*shard_rows(self.num_rows, rank, world_size))

    def num_segments(self, bptt: int) -> int:
        return -(-self.width // bptt)

    def segment(self, index: int, bptt: int) -> Batch:
        """Columns [index * bptt, (index + 1) * bptt) of every row, as int64/bool tensors (B, t)."""
        columns = np.arange(index * bptt, min((index + 1) * bptt, self.width), dtype=np.int64)  # (t,)
        positions = self.row_starts[:, None] + columns[None, :]  # (B, t)
        valid = positions < self.row_stops[:, None]  # (B, t), False on padding
        positions = np.where(valid, positions, 0)
        targets = self.cache.tokens[positions].astype(np.int64)  # (B, t)
        previous = self.cache.tokens[np.maximum(positions - 1, 0)].astype(np.int64)  # (B, t)
        starts = self.cache.offsets
        found = np.minimum(np.searchsorted(starts, positions), starts.shape[0] - 1)  # (B, t)
        resets = (starts[found] == positions) | ~valid  # sentence starts, and padding
        inputs = np.where(resets, self.cache.bos_id, previous)
        return Batch(
            torch.from_numpy(np.where(valid, inputs, 0)),
            torch.from_numpy(np.where(valid, targets, IGNORE_INDEX)),
            torch.from_numpy(resets),
        )


def training_rows(cache: TokenCache, rows: int) -> StreamRows:
    """``contiguous_rows``: B rows of W = T // B positions, the tail dropped.

    Raises:
      ValueError: if the stream is shorter than ``rows`` tokens.
    """
    width = len(cache) // rows
    if width == 0:
        raise ValueError(f"stream of {len(cache)} tokens is shorter than {rows} rows")
    starts = np.arange(rows, dtype=np.int64) * width
    return StreamRows(cache, starts, starts + width)


def sentence_bounds(cache: TokenCache, rows: int) -> Tuple[np.ndarray, np.ndarray]:
    """``sentence_rows``'s row bounds: row r begins at the first sentence start at or after r * T / B."""
    total = len(cache)
    sentence_starts = np.asarray(cache.offsets[:-1])  # (S,)
    wanted = np.arange(rows, dtype=np.int64) * total // rows  # (B,)
    first = np.minimum(np.searchsorted(sentence_starts, wanted), sentence_starts.shape[0] - 1)
    bounds = np.unique(sentence_starts[first])
    return bounds, np.append(bounds[1:], total)


def evaluation_rows(cache: TokenCache, rows: int) -> StreamRows:
    """``sentence_rows``: at most B rows starting at sentence starts, padded."""
    return StreamRows(cache, *sentence_bounds(cache, rows))
