"""Combining an n-gram and a neural LM per token.

Two forms, both per predicted token t with history h:

- **log-linear** (what ``fprescore rescore`` does today with separate scales):
  ``ngram_scale * ln P_ngram(t|h) + lm_scale * ln P_nnlm(t|h)``, a weighted sum
  of log-scores; the result is not a normalised distribution, and it is what a
  lattice's total score adds per arc.
- **linear interpolation** (``interpolate_log_probs``), the classic mixture
  (as SRILM's ``-lambda`` and Kaldi's ``lmrescore_rnnlm_lat.sh`` weight):
  ``ln((1 - lam) * P_ngram(t|h) + lam * P_nnlm(t|h))``, a proper distribution
  when both are, computed stably as a log-sum-exp.

Both arguments must be log-probabilities of the same event. When the two LMs
tokenize a word the same way, that is each token; when they do not (the
PTB-mini neural LM reads "wasn't" as "was n't", while the asr-dev-ptb3g ARPA
has "wasn't" as one word), interpolate per word: sum each LM's token
log-probs of the word first, then mix the two word log-probs.
"""
import math

import torch
from torch import Tensor


def interpolate_log_probs(ngram_log_probs: Tensor, nnlm_log_probs: Tensor, lam: float) -> Tensor:
    """ln((1 - lam) * exp(ngram) + lam * exp(nnlm)), elementwise and stable.

    Args:
      ngram_log_probs:
        Float tensor of any shape, natural-log n-gram probabilities.
      nnlm_log_probs:
        Float tensor of the same shape, natural-log neural LM probabilities.
      lam:
        The neural LM's weight, in [0, 1]; 0 gives the n-gram, 1 the neural LM.

    Returns:
      float64 tensor of the same shape.

    Raises:
      ValueError: if ``lam`` is outside [0, 1] or the shapes differ.
    """
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"the interpolation weight must be in [0, 1] (got {lam})")
    if ngram_log_probs.shape != nnlm_log_probs.shape:
        raise ValueError(f"shapes differ: {tuple(ngram_log_probs.shape)} vs {tuple(nnlm_log_probs.shape)}")
    ngram = ngram_log_probs.double()
    nnlm = nnlm_log_probs.double()
    if lam == 0.0:
        return ngram.clone()
    if lam == 1.0:
        return nnlm.clone()
    return torch.logaddexp(ngram + math.log1p(-lam), nnlm + math.log(lam))
