"""The ARPA n-gram's per-arc terms in lattice mode (``--ngram-lm``).

The job maps arcs' words to ARPA word ids with ``tokens.token_source`` and
``context.ngram_tokenizer`` (the neural LM's rules: ``ArpaVocabulary.encode_word``,
unknown words to ``<unk>``);
``arc_log_probs`` sums per arc the log-probabilities of a query list and
keeps the end-of-sentence part apart (``--interpolate`` mixes it on its own);
``arpa_arc_log_probs`` answers all ARPA queries of an expanded batch in one
vectorised ``NgramLM.log_probs`` call (timed as the ``score`` stage).
"""
from typing import Tuple

import torch
from torch import Tensor

from rescorer.algorithms.history import ExpandedBatch
from rescorer.ngram.model import NgramLM
from rescorer.rescoring.timing import stage


def arc_log_probs(query_arc: Tensor, scores: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-arc sums of query log-probabilities, and their end-of-sentence parts.

    Args:
      query_arc:
        1-D int64 tensor of shape (Q,), the arc of each query, sorted by arc
        with an arc's end-of-sentence query last (``ExpandedBatch``).
      scores:
        1-D float tensor of shape (Q,), the queries' log-probabilities.
      labels:
        1-D int64 tensor of shape (A,), the arcs' labels (-1 exactly on arcs
        into the final state, which end with the end-of-sentence query).

    Returns:
      ``(totals, ends)``: two 1-D float64 tensors of shape (A,), the sum of each
      arc's queries and the end-of-sentence query's value (0 elsewhere).
    """
    scores = scores.to(torch.float64)
    totals = torch.zeros(labels.numel(), dtype=torch.float64, device=labels.device)
    totals.index_add_(0, query_arc, scores)
    last = torch.ones_like(query_arc, dtype=torch.bool)  # (Q,) last query of its arc
    last[:-1] = query_arc[1:] != query_arc[:-1]
    ends = (last & (labels[query_arc] == -1)).nonzero().squeeze(1)
    end_parts = torch.zeros_like(totals)
    end_parts[query_arc[ends]] = scores[ends]
    return totals, end_parts


def arpa_arc_log_probs(expanded: ExpandedBatch, model: NgramLM) -> Tuple[Tensor, Tensor]:
    """The ARPA terms of every arc of an ARPA-expanded batch.

    Args:
      expanded:
        The expansion by ARPA word ids with window >= n-1 (``expand.NgramPass``).
      model:
        The n-gram LM (CPU tables).

    Returns:
      ``(arpa, arpa_end)``: 1-D float64 tensors of shape (A',) on the batch's
      device (``arc_log_probs``).
    """
    with stage("score"):
        rows = expanded.query_history.cpu()  # (Q,)
        scores = model.log_probs(expanded.histories.cpu()[rows], expanded.history_lengths.cpu()[rows],
                                 expanded.query_token.cpu())  # (Q,) float64, one vectorised call
    device = expanded.batch.device
    return arc_log_probs(expanded.query_arc, scores.to(device), expanded.batch.labels)
