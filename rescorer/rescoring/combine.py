"""Score combination: per-arc components and the scales that weigh them.

The score of a path (or hypothesis) is::

    total = am_scale * am + ngram_scale * ngram + lm_scale * nnlm + word_penalty * num_words

where ``am`` and ``ngram`` are the lattice's own parts (for SLF, ``ngram``
already includes the header's ``lmscale``), ``nnlm`` the neural LM
log-probability (natural log, end of sentence included, plus ``--oov-penalty``
for each out-of-vocabulary word) and ``num_words`` the lattice words.
The first pass is the same formula without the neural LM (``lm_scale`` 0, the
word penalty kept): it ranks the first-pass 1-best (its WER row), the beam
pruning and the n-best of ``--mode nbest``. ``combine`` is the formula's one
home; everything is summed and ranked in float64.

Defaults (am 1, ngram 1, lm 1, word penalty 0) keep the lattice's own
first-pass score intact (the decoder's weights are already inside ``am`` and
``ngram``) and add the neural LM log-probability with unit weight; tune
``lm_scale`` with ``--grid``. On asr-dev (pocketsphinx SLF, lmscale 9.5) the
PTB-mini LM's best scale was 1.5 and ngram 0.5 was clearly worse
(docs/results/rescoring.md).
"""
from dataclasses import dataclass, replace
from typing import Dict, Union

import torch
from torch import Tensor

Value = Union[float, Tensor]  # a float, or a float64 tensor of per-arc values


@dataclass(frozen=True)
class Scales:
    """The weights of the combination (see the module docstring)."""

    am: float = 1.0
    ngram: float = 1.0
    lm: float = 1.0
    word_penalty: float = 0.0

    def first_pass(self) -> "Scales":
        """The first-pass combination: the same scales without the neural LM."""
        return replace(self, lm=0.0)


def combine(scales: Scales, am: Value, ngram: Value, nnlm: Value, num_words: Value) -> Value:
    """The score formula (module docstring), for floats or float64 tensors alike."""
    return scales.am * am + scales.ngram * ngram + scales.lm * nnlm + scales.word_penalty * num_words


def first_pass_scores(am: Tensor, ngram: Tensor, num_words: Tensor, scales: Scales) -> Tensor:
    """1-D float64 tensor of shape (A,): each arc's first-pass score.

    Args:
      am, ngram:
        1-D float tensors of shape (A,), the lattice's own score parts.
      num_words:
        1-D int64 tensor of shape (A,), words on each arc.
      scales:
        The run's scales (their first pass is used).
    """
    return combine(scales.first_pass(), am.to(torch.float64), ngram.to(torch.float64), 0.0,
                   num_words.to(torch.float64))


@dataclass(frozen=True)
class ArcComponents:
    """Unscaled score parts of every arc of a (possibly expanded) lattice.

    Attributes:
      am:
        1-D float32 tensor of shape (A,), acoustic scores.
      ngram:
        1-D float32 tensor of shape (A,), old n-gram scores.
      nnlm:
        1-D float32 tensor of shape (A,), neural LM log-probabilities of the
        arc's tokens (and of the end of sentence on arcs into the final state).
      num_words:
        1-D float32 tensor of shape (A,), lattice words on each arc.
    """

    am: Tensor
    ngram: Tensor
    nnlm: Tensor
    num_words: Tensor

    def total(self, scales: Scales) -> Tensor:
        """1-D float64 tensor of shape (A,), the combined score of each arc."""
        return combine(scales, *(getattr(self, name).to(torch.float64) for name in _PARTS))

    def path_sums(self, arc_ids: Tensor) -> Dict[str, float]:
        """Sums of each component over a path, in float64.

        Args:
          arc_ids:
            1-D int64 tensor, the arcs of the path.

        Returns:
          ``{"am", "ngram", "nnlm", "num_words"}`` -> float.
        """
        return {
            name: float(getattr(self, name).index_select(0, arc_ids).to(torch.float64).sum())
            for name in _PARTS
        }


_PARTS = ("am", "ngram", "nnlm", "num_words")  # combine's argument order


def combine_sums(sums: Dict[str, float], scales: Scales) -> float:
    """The total of a hypothesis from its summed components (float64 arithmetic)."""
    return combine(scales, *(sums[name] for name in _PARTS))
