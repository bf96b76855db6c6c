"""Batched neural-LM scoring of (history, next token) queries.

Every lattice of a batch brings its histories (rows of LM tokens) and its
queries (a history index and a next token). The histories of the whole batch
are deduplicated and run through ``model.query_log_probs`` (their windows'
prefix trie, products of ``chunk_rows`` rows, bounding memory at
chunk_rows x V floats), and each query picks its log-probability from its
history's row::

    lattice 0: histories h0 h1     queries (h0,a) (h1,b) (h1,</s>)
    lattice 1: histories h0' h1'   queries (h0',c) ...
           \\___ unique rows u0 u1 u2 ... ___/  -> query_log_probs
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence

import torch
from torch import Tensor

from rescorer.errors import CheckpointError, RescorerError


@dataclass(frozen=True)
class ScoreRequest:
    """The LM queries of one lattice (or one set of sentences).

    Attributes:
      histories:
        2-D int64 tensor of shape (N, W), left-aligned token histories; row n
        holds ``histories[n, :lengths[n]]``, the rest is padding (any id).
      lengths:
        1-D int64 tensor of shape (N,), 1 <= lengths[n] <= W.
      query_history:
        1-D int64 tensor of shape (Q,), the history row of each query.
      query_token:
        1-D int64 tensor of shape (Q,), the next token of each query.
    """

    histories: Tensor
    lengths: Tensor
    query_history: Tensor
    query_token: Tensor


@dataclass(frozen=True)
class ScoreStats:
    """What one batched scoring pass did.

    Attributes:
      histories:
        Histories before deduplication (sum over requests).
      unique_histories:
        Distinct histories actually run through the model.
      queries:
        (history, token) pairs scored.
    """

    histories: int
    unique_histories: int
    queries: int


def unique_histories(requests: Sequence[ScoreRequest]) -> "tuple[Tensor, Tensor, Tensor]":
    """Deduplicate the histories of all requests.

    Returns:
      ``(rows, lengths, inverse)``: rows is a 2-D int64 tensor (U, W) of
      distinct histories (padding set to 0), lengths (U,) int64, and inverse a
      1-D int64 tensor mapping every history of the concatenated requests to
      its row.
    """
    width = max(int(request.histories.shape[1]) for request in requests)
    padded = [
        torch.nn.functional.pad(request.histories, (0, width - int(request.histories.shape[1])))
        for request in requests
    ]
    histories = torch.cat(padded, dim=0)  # (N, W)
    lengths = torch.cat([request.lengths for request in requests])  # (N,)
    columns = torch.arange(width)  # (W,)
    histories = histories.masked_fill(columns >= lengths.unsqueeze(1), 0)  # canonical padding
    keys = torch.cat([lengths.unsqueeze(1), histories], dim=1)  # (N, W+1): length tells apart
    unique_keys, inverse = torch.unique(keys, dim=0, return_inverse=True)  # (U, W+1), (N,)
    return unique_keys[:, 1:].contiguous(), unique_keys[:, 0].contiguous(), inverse


def score_requests(
    model: torch.nn.Module,
    requests: Sequence[ScoreRequest],
    chunk_rows: int = 256,
) -> "tuple[List[Tensor], ScoreStats]":
    """Log-probabilities of the queries of every request, in one batched pass.

    Args:
      model:
        A ``FixedPointLM`` in eval mode (its device is used).
      requests:
        One ``ScoreRequest`` per lattice; requests without histories are allowed.
      chunk_rows:
        Rows per matrix product of the model.

    Returns:
      A list with one 1-D float32 CPU tensor of shape (Q,) per request, the
      natural-log probability of each query, and the pass's ``ScoreStats``.
    """
    cpu = torch.device("cpu")  # dedupe on the CPU; only the model runs on its device
    requests = [ScoreRequest(*(value.to(cpu) for value in (request.histories, request.lengths,
                                                           request.query_history,
                                                           request.query_token)))
                for request in requests]
    sizes = [int(request.histories.shape[0]) for request in requests]
    counts = [int(request.query_token.numel()) for request in requests]
    nonempty = [request for request, size in zip(requests, sizes) if size > 0]
    if not nonempty:
        return [torch.zeros(count) for count in counts], ScoreStats(0, 0, 0)
    rows, lengths, inverse = unique_histories(nonempty)
    starts = torch.tensor([0] + sizes[:-1], dtype=torch.int64).cumsum(0).tolist()
    query_rows = torch.cat(
        [inverse[start + request.query_history] for request, start in zip(requests, starts)]
    )  # (Q,) unique row of each query
    query_tokens = torch.cat([request.query_token for request in requests])  # (Q,)
    with torch.inference_mode():
        scores = model.query_log_probs(rows, lengths, query_rows, query_tokens, chunk_rows).cpu()
    stats = ScoreStats(sum(sizes), int(rows.shape[0]), int(query_tokens.numel()))
    return list(torch.split(scores, counts)), stats


def nonfinite_failures(query_scores: Tensor, query_utt: Tensor, utt_ids: List[str],
                        query_token: Tensor) -> Dict[int, RescorerError]:
    """Utterance -> error, for the utterances with a non-finite LM log-probability.

    Args:
      query_scores:
        1-D float32 tensor of shape (Q,), ``score_requests`` output.
      query_utt:
        1-D int64 tensor of shape (Q,), the utterance (index into ``utt_ids``) of each query.
      utt_ids:
        The utterance ids.
      query_token:
        1-D int64 tensor of shape (Q,), the token of each query (named in the message).
    """
    bad = (~torch.isfinite(query_scores)).nonzero().squeeze(1)
    failures: Dict[int, RescorerError] = {}
    for query in bad.tolist():
        utt = int(query_utt[query])
        if utt not in failures:
            failures[utt] = CheckpointError(
                f"the neural LM gave a non-finite log-probability ({float(query_scores[query])}) "
                f"to token {int(query_token[query])} (expected finite scores; the model's "
                "weights are broken)", utt_id=utt_ids[utt])
    return failures
