"""Perplexity with exactly the training-time inference (the model's solver and K, sentence resets).

The text is tokenized into a cache (``prepare_corpus``), cut at sentence
boundaries into padded rows (``evaluation_rows``, the rows of ``sentence_rows``),
each row is scored in segments read from the cache with the solver carry passed
along, and the negative log-likelihood of every token (``<eos>`` included) is
summed in float64. Memory holds one segment, whatever the size of the text.
"""
import math
import tempfile
from dataclasses import dataclass
from typing import Optional, Sequence, Union

import torch
import torch.nn.functional as F

from rescorer.data.batching import IGNORE_INDEX
from rescorer.data.cache import TokenCache
from rescorer.data.prepare import DataProgress, prepare_corpus
from rescorer.data.rows import evaluation_rows
from rescorer.data.vocab import Vocabulary
from rescorer.model.lm import FixedPointLM
from rescorer.paths import PathLike
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
def evaluate_cache(
    model: FixedPointLM,
    cache: TokenCache,
    rows: int = DEFAULT_EVAL_ROWS,
    bptt: int = DEFAULT_EVAL_BPTT,
    context: Optional[DistributedContext] = None,
) -> EvalResult:
    """Total NLL of a cached text under ``model`` in eval mode, float32.

    Args:
      model:
        The LM (its mode is restored afterwards).
      cache:
        The tokenized text (or a prefix of it, ``TokenCache.prefix``).
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
    share = evaluation_rows(cache, rows).shard(context.rank, context.world_size)
    was_training = model.training
    model.eval()
    totals = torch.zeros(2, dtype=torch.float64, device=device)  # (nll, tokens)
    state = None
    try:
        for index in range(share.num_segments(bptt) if share.num_rows else 0):
            segment = share.segment(index, bptt).to(device)
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
    return EvalResult(float(totals[0]), int(totals[1]), cache.words, cache.oov_words)


def evaluate_file(
    model: FixedPointLM,
    vocab: Vocabulary,
    path: Union[PathLike, Sequence[PathLike]],
    rows: int = DEFAULT_EVAL_ROWS,
    cache_dir: Optional[PathLike] = None,
    max_tokens: Optional[int] = None,
    progress: Optional[DataProgress] = None,
) -> EvalResult:
    """Tokenize (``vocab.encode_word``, OOV -> ``<unk>``) and score text files.

    Args:
      path:
        A file, a glob, or several: one text.
      cache_dir:
        Keep the token cache here (reused next time); None: a temporary folder.
      max_tokens:
        Score only the leading whole sentences holding at most this many tokens.

    Raises:
      InputFormatError: naming the file if it is missing, not UTF-8 or empty.
    """
    if cache_dir is not None:
        cache, _ = prepare_corpus(path, cache_dir, vocab, progress=progress)
        return evaluate_cache(model, cache.prefix(max_tokens), rows=rows)
    with tempfile.TemporaryDirectory(prefix="fprescore-eval-") as folder:
        cache, _ = prepare_corpus(path, folder, vocab, progress=progress)
        result = evaluate_cache(model, cache.prefix(max_tokens), rows=rows)
        del cache  # release the memory maps before the folder goes
        return result
