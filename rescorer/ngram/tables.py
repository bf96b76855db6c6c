"""Sorted n-gram tables: ARPA sections -> int64 keys for ``torch.searchsorted``.

Each n-gram of order k >= 2 is stored at a position of the order-k table, and
its key is ``(position of its (k-1)-word prefix in the order-(k-1) table) * V +
(its last word)``; a unigram's position is its word id. Keys of one order are
sorted, so finding an n-gram is a chain of searchsorted calls, one per word,
over a whole batch at once. A key needs N_{k-1} * V < 2^63, which holds for
any real model (10^9 n-grams times 10^6 words is 10^15).

ARPA files from pruning toolkits can hold an n-gram whose prefix was pruned
away (SRILM's "holes"). Such prefixes are added as entries with a NaN
probability (never matched as a prediction) and a zero back-off weight, which
is what the back-off formula gives for a context that is not in the model.

Layout per order k (``tables[k-1]``)::

    keys      (N_k,) int64 sorted, unique
    log_probs (N_k,) float32, ln P(w_k | w_1..w_{k-1}); NaN for added prefixes
    backoffs  (N_k,) float32, ln back-off weight of the context w_1..w_k
"""
from dataclasses import dataclass
from typing import List

import torch
from torch import Tensor

from rescorer.errors import InputFormatError
from rescorer.ngram.arpa import ArpaFile
from rescorer.paths import PathLike

MAX_KEY = 2 ** 63 - 1


@dataclass(frozen=True)
class OrderTable:
    """The n-grams of one order (see the module docstring).

    Attributes:
      keys:
        1-D int64 tensor of shape (N_k,), sorted unique keys (for unigrams:
        ``arange(V)``).
      log_probs:
        1-D float32 tensor of shape (N_k,), natural-log probabilities, NaN for
        prefixes added to fill holes.
      backoffs:
        1-D float32 tensor of shape (N_k,), natural-log back-off weights.
    """

    keys: Tensor
    log_probs: Tensor
    backoffs: Tensor


def find(table: OrderTable, vocab_size: int, prefix: Tensor, word: Tensor) -> Tensor:
    """Positions of the n-grams (prefix, word) in ``table``, -1 where absent.

    Args:
      table:
        The order-k table.
      vocab_size:
        V.
      prefix:
        1-D int64 tensor of shape (N,), positions of the (k-1)-word prefixes in
        the order-(k-1) table, -1 for an absent prefix.
      word:
        1-D int64 tensor of shape (N,), last words, -1 for none.

    Returns:
      1-D int64 tensor of shape (N,), positions in ``table`` or -1.
    """
    valid = (prefix >= 0) & (word >= 0)
    # Keys are >= 0, so the -1 of an invalid query never matches.
    query = torch.where(valid, prefix * vocab_size + word, torch.full_like(prefix, -1))  # (N,)
    return find_keys(table.keys, query)


def build_tables(arpa: ArpaFile, path: PathLike) -> List[OrderTable]:
    """Turn parsed ARPA sections into sorted tables, one per order.

    Args:
      arpa:
        The parsed file (its vocabulary already holds any added ``<unk>``).
      path:
        The file, for error messages.

    Returns:
      ``tables[k-1]`` for k = 1..n.

    Raises:
      InputFormatError: for a duplicate n-gram or keys that would overflow int64.
    """
    vocab_size = len(arpa.vocabulary)
    unigrams = arpa.sections[0]
    log_probs = torch.full((vocab_size,), float("-inf"), dtype=torch.float64)
    backoffs = torch.zeros(vocab_size, dtype=torch.float64)
    log_probs[unigrams.words[:, 0]] = unigrams.log_probs
    backoffs[unigrams.words[:, 0]] = unigrams.backoffs
    tables = [OrderTable(torch.arange(vocab_size), log_probs.float(), backoffs.float())]
    # prefixes[k] = positions, in the table of order t (the last one built), of the
    # first t words of every n-gram of order k > t.
    prefixes = {k: arpa.sections[k - 1].words[:, 0].clone() for k in range(2, arpa.order + 1)}
    for order in range(2, arpa.order + 1):
        if (len(tables[-1].keys) + 1) * vocab_size > MAX_KEY:
            raise InputFormatError(f"too many {order - 1}-grams for int64 keys "
                                   f"({len(tables[-1].keys)} x {vocab_size} words)", path=path)
        table = _build_order(arpa, order, prefixes, vocab_size, path)
        tables.append(table)
        for higher in range(order + 1, arpa.order + 1):
            word = arpa.sections[higher - 1].words[:, order - 1]
            prefixes[higher] = find(table, vocab_size, prefixes[higher], word)
            assert bool((prefixes[higher] >= 0).all()), "every prefix was added as an entry"
    return tables


def _build_order(arpa: ArpaFile, order: int, prefixes: dict, vocab_size: int,
                 path: PathLike) -> OrderTable:
    """The order-``order`` table: its own n-grams plus the missing prefixes of longer ones."""
    section = arpa.sections[order - 1]
    keys = prefixes[order] * vocab_size + section.words[:, order - 1]  # (N_k,)
    keys, sort = torch.sort(keys)
    duplicate = (keys[1:] == keys[:-1]).nonzero()
    if duplicate.numel() > 0:
        words = section.words[sort[int(duplicate[0])]].tolist()
        raise InputFormatError(f"duplicate {order}-gram {' '.join(arpa.vocabulary[w] for w in words)!r}",
                               path=path)
    log_probs = section.log_probs[sort]
    backoffs = section.backoffs[sort]
    needed = [prefixes[k] * vocab_size + arpa.sections[k - 1].words[:, order - 1]
              for k in range(order + 1, arpa.order + 1)]
    if needed:
        wanted = torch.unique(torch.cat(needed))  # (M,) sorted keys of prefixes of longer n-grams
        holes = wanted[find_keys(keys, wanted) < 0]  # prefixes that are not n-grams
        if holes.numel() > 0:
            keys, merge = torch.sort(torch.cat([keys, holes]))
            log_probs = torch.cat([log_probs, torch.full((holes.numel(),), float("nan"),
                                                         dtype=torch.float64)])[merge]
            backoffs = torch.cat([backoffs, torch.zeros(holes.numel(), dtype=torch.float64)])[merge]
    return OrderTable(keys, log_probs.float(), backoffs.float())


def find_keys(keys: Tensor, query: Tensor) -> Tensor:
    """Positions of ``query`` in the sorted ``keys``, -1 where absent.

    Args:
      keys:
        1-D int64 tensor of shape (M,), sorted.
      query:
        1-D int64 tensor of shape (N,).

    Returns:
      1-D int64 tensor of shape (N,).
    """
    if keys.numel() == 0:
        return torch.full_like(query, -1)
    position = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
    return torch.where(keys[position] == query, position, torch.full_like(position, -1))
