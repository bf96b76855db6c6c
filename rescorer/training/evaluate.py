"""Perplexity with exactly the training-time inference (the model's solver and K, sentence resets).

The text is cut at sentence boundaries into padded rows (``sentence_rows``),
each row is scored in segments with the solver carry passed along, and the
negative log-likelihood of every token (``<eos>`` included) is summed in float64.
"""
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F

from rescorer.data.batching import IGNORE_INDEX, TokenStream, encode_sentences, sentence_rows, shard_rows
from rescorer.data.corpus import read_sentences
from rescorer.data.vocab import Vocabulary
from rescorer.model.lm import FixedPointLM
from rescorer.training.distributed import DistributedContext

DEFAULT_EVAL_ROWS = 16
DEFAULT_EVAL_BPTT = 128


@dataclass
class EvalResult:
    """Scores of one text.

    Attributes:
      nll:
        Total negative log-likelihood in nats over all predicted tokens.
      tokens:
        Number of predicted LM tokens (words or pieces, plus one ``<eos>`` per sentence).
      words:
        Number of text words (no ``<eos>``).
      oov_words:
        Words the vocabulary maps (partly) to ``<unk>``.
    """

    nll: float
    tokens: int
    words: int
    oov_words: int

    @property
    def ppl(self) -> float:
        """exp(mean NLL per token)."""
        return math.exp(self.nll / self.tokens)

    @property
    def oov_rate(self) -> float:
        return self.oov_words / self.words if self.words else 0.0


@torch.no_grad()
def evaluate_stream(
    model: FixedPointLM,
    stream: TokenStream,
    rows: int = DEFAULT_EVAL_ROWS,
    bptt: int = DEFAULT_EVAL_BPTT,
    context: Optional[DistributedContext] = None,
) -> EvalResult:
    """Total NLL of ``stream`` under ``model`` in eval mode, float32.

    Args:
      model:
        The LM (its mode is restored afterwards).
      stream:
        The encoded text.
      rows:
        Sentence-aligned rows scored in parallel.
      bptt:
        Tokens per forward call (bounds memory; results do not depend on it
        beyond float rounding, since the carry links the segments).
      context:
        With several processes each scores its share of the rows and the sums
        are all-reduced; every process gets the same result.
    """
    context = context or DistributedContext()
    device = next(model.parameters()).device
    batch = sentence_rows(stream, rows)
    start, stop = shard_rows(batch.inputs.shape[0], context.rank, context.world_size)
    batch = batch.rows(start, stop).to(device)
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (nll, tokens)
    state = None
    segments = batch.segments(bptt) if stop > start else iter(())
    try:
        for segment in segments:
            logits, state = model(segment.inputs, segment.resets, state)  # (B, T, V)
            nll = F.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]),
                segment.targets.reshape(-1),
                ignore_index=IGNORE_INDEX,
                reduction="sum",
            )
            totals[0] += nll.double()
            totals[1] += (segment.targets != IGNORE_INDEX).sum()
    finally:
        model.train(was_training)
    totals = context.all_reduce_sum(totals)
    return EvalResult(float(totals[0]), int(totals[1]), stream.words, stream.oov_words)


def evaluate_file(model: FixedPointLM, vocab: Vocabulary, path: Path, rows: int = DEFAULT_EVAL_ROWS) -> EvalResult:
    """Read, encode (``vocab.encode_word``, OOV -> ``<unk>``) and score a text file.

    Raises:
      InputFormatError: naming ``path`` if it is missing, not UTF-8 or empty.
    """
    stream = encode_sentences(read_sentences(path), vocab)
    return evaluate_stream(model, stream, rows=rows)
