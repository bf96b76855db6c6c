"""Whole-sentence LM queries, for ``--mode nbest``.

A hypothesis with tokens ``t1 .. tT`` is scored as the LM was trained: inputs
``<bos> t1 .. tT``, targets ``t1 .. tT <eos>``, the state reset at ``<bos>``.
Position i queries ``P(target_i | inputs[:i+1])``; the history is truncated to
the last ``window`` inputs when the model only sees that many (Jacobi, same
values, fewer distinct rows), and kept whole for unbounded-history models::

    tokens a b, window 2:   [bos] -> a    [bos a] -> b    [a b] -> eos
"""
from typing import List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.data.vocab import Vocabulary
from rescorer.outputs.text import Hypothesis
from rescorer.rescoring.scoring import ScoreRequest, score_requests


def sentence_request(
    sentences: Sequence[Tensor], bos_id: int, eos_id: int, window: Optional[int]
) -> "tuple[ScoreRequest, Tensor]":
    """The queries that score whole sentences, one per token and one for eos.

    Args:
      sentences:
        1-D int64 tensors, the LM tokens of each sentence (may be empty).
      bos_id / eos_id:
        The LM's sentence-start input and sentence-end target.
      window:
        Keep only the last ``window`` inputs of each history; None keeps all.

    Returns:
      ``(request, owner)``: the ``ScoreRequest`` (one history per query) and a
      1-D int64 tensor of shape (Q,), the sentence of each query.
    """
    counts = torch.tensor([int(sentence.numel()) + 1 for sentence in sentences], dtype=torch.int64)
    if counts.numel() == 0:
        empty = torch.zeros(0, dtype=torch.int64)
        return ScoreRequest(torch.zeros(0, 1, dtype=torch.int64), empty, empty, empty), empty
    bos = torch.tensor([bos_id], dtype=torch.int64)
    eos = torch.tensor([eos_id], dtype=torch.int64)
    inputs = torch.cat([torch.cat([bos, sentence]) for sentence in sentences])  # (Q,)
    targets = torch.cat([torch.cat([sentence, eos]) for sentence in sentences])  # (Q,)
    owner = torch.repeat_interleave(torch.arange(counts.numel()), counts)  # (Q,)
    starts = torch.cumsum(counts, 0) - counts  # (sentences,) first input of each
    position = torch.arange(inputs.numel()) - starts[owner]  # (Q,) index i inside its sentence
    width = int(counts.max()) if window is None else min(window, int(counts.max()))
    lengths = torch.clamp(position + 1, max=width)  # (Q,)
    first = torch.arange(inputs.numel()) + 1 - lengths  # (Q,) flat index of the oldest input
    columns = torch.arange(width)  # (W,)
    index = (first.unsqueeze(1) + columns).clamp(max=inputs.numel() - 1)  # (Q, W)
    histories = inputs[index].masked_fill(columns >= lengths.unsqueeze(1), 0)  # (Q, W) left-aligned
    request = ScoreRequest(
        histories=histories,
        lengths=lengths,
        query_history=torch.arange(inputs.numel()),
        query_token=targets,
    )
    return request, owner


def sentence_log_probs(query_scores: Tensor, owner: Tensor, num_sentences: int) -> List[float]:
    """Sum query log-probabilities per sentence (float64).

    Args:
      query_scores:
        1-D float32 tensor of shape (Q,), from ``score_requests``.
      owner:
        1-D int64 tensor of shape (Q,), the sentence of each query.
      num_sentences:
        Number of sentences.
    """
    sums = torch.zeros(num_sentences, dtype=torch.float64)
    sums.index_add_(0, owner, query_scores.to(torch.float64))
    return sums.tolist()


def history_mismatch(
    model: torch.nn.Module, vocabulary: Vocabulary, hypotheses: Sequence[Hypothesis],
    oov_penalty: float, chunk_rows: int,
) -> Tuple[float, float]:
    """How far ``--history-approx`` scores are from full-history scores.

    Re-scores each hypothesis as a whole sentence with unbounded history and
    compares with its ``nnlm`` (both include the OOV penalty).

    Returns:
      (mean, max) absolute difference in nats over the hypotheses.
    """
    sentences = [
        torch.tensor([token for word in hypothesis.words for token in vocabulary.encode_word(word)],
                     dtype=torch.int64)
        for hypothesis in hypotheses
    ]
    request, owner = sentence_request(sentences, vocabulary.bos_id, vocabulary.eos_id, None)
    (scores,), _ = score_requests(model, [request], chunk_rows)
    exact = sentence_log_probs(scores, owner, len(sentences))
    differences = [
        abs(hypothesis.nnlm - (full + oov_penalty * sum(vocabulary.is_oov(w) for w in hypothesis.words)))
        for hypothesis, full in zip(hypotheses, exact)
    ]
    return sum(differences) / len(differences), max(differences)
