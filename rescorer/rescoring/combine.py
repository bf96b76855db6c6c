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

With an ARPA n-gram (``--ngram-lm``; ``arpa`` = its exact natural-log
probability of the arc's words, end of sentence included, on the lattice
expanded to both LMs' histories) the formula has three forms:

* ``--ngram-source arpa`` (log-linear): the ARPA *replaces* the lattice's
  n-gram part, ``ngram`` above reads ``arpa``, weighed by ``ngram_scale``
  (for asr-dev-ptb3g: ``--ngram-scale 9.5 --word-penalty -0.629606``, the SLF
  header's lmscale and wdpenalty, is the decoder's own bestpath score)::

    total = am_scale * am + ngram_scale * arpa + lm_scale * nnlm + word_penalty * num_words

* ``--ngram-source lattice`` (log-linear, the default): the ARPA is one more
  component with its own weight ``arpa_scale`` (``--arpa-scale``, default 1)::

    total = am_scale * am + ngram_scale * ngram + arpa_scale * arpa + lm_scale * nnlm
            + word_penalty * num_words

* ``--interpolate LAMBDA`` (``interpolation``): the LM term is the linear
  mixture ``mix = ln((1 - LAMBDA) * P_arpa + LAMBDA * P_nnlm)``, weighed by
  ``lm_scale``; the ARPA is then only inside the mixture (no ``arpa_scale``
  term; with ``--ngram-source arpa`` the lattice's n-gram is dropped too)::

    total = am_scale * am + ngram_scale * [ngram, or 0 for --ngram-source arpa]
            + lm_scale * mix + word_penalty * num_words

  The mixture is taken per arc: each LM's log-probabilities of the arc's
  words are summed first, then mixed (one word per arc in SLF lattices, so
  per word there), and the end-of-sentence query of an arc into the final
  state is mixed on its own. ``nnlm`` includes ``--oov-penalty`` when mixed.

The first pass (pruning, the first-pass 1-best row) never sees the ARPA: with
``--ngram-source arpa`` it is the lattice's own score ``am_scale * am +
ngram`` (unit n-gram weight, no word penalty: the decoder's weights and
penalty are already in the lattice's ``ngram``), otherwise as above.
"""
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Dict, Optional, Union

import torch
from torch import Tensor

from rescorer.ngram.interpolate import interpolate_log_probs

Value = Union[float, Tensor]  # a float, or a float64 tensor of per-arc values


@dataclass(frozen=True)
class Scales:
    """The weights of the combination (see the module docstring)."""

    am: float = 1.0
    ngram: float = 1.0
    lm: float = 1.0
    word_penalty: float = 0.0
    arpa: float = 1.0
    interpolation: Optional[float] = None  # LAMBDA of --interpolate; None: log-linear

    def first_pass(self, arpa_source: bool = False) -> "Scales":
        """The first-pass combination: the same scales without the neural LM.

        With ``arpa_source`` (``--ngram-source arpa``), the lattice's own score:
        unit n-gram weight, no word penalty (module docstring).
        """
        if arpa_source:
            return replace(self, ngram=1.0, lm=0.0, word_penalty=0.0)
        return replace(self, lm=0.0)


def combine(scales: Scales, am: Value, ngram: Value, nnlm: Value, num_words: Value) -> Value:
    """The score formula (module docstring), for floats or tensors alike.

    The terms are added left to right. A tensor term is first taken to float64
    (exactly) and scaled there, in one scratch tensor reused by every term of
    the total's shape: the sums of float64 inputs, with two (A,) tensors made.
    """
    total: Value = 0.0
    scratch: Optional[Tensor] = None
    for index, (scale, value) in enumerate(((scales.am, am), (scales.ngram, ngram),
                                            (scales.lm, nnlm), (scales.word_penalty, num_words))):
        if index == 0 and isinstance(value, Tensor):
            total = value.to(torch.float64, copy=True).mul_(scale)
        elif index == 0:
            total = scale * value
        elif isinstance(value, Tensor) and isinstance(total, Tensor) and value.shape == total.shape:
            scratch = torch.empty_like(total) if scratch is None else scratch
            total.add_(scratch.copy_(value).mul_(scale))
        elif isinstance(value, Tensor):
            total = total + scale * value.to(torch.float64)
        else:
            total = total.add_(scale * value) if isinstance(total, Tensor) else total + scale * value
    return total


def first_pass_scores(am: Tensor, ngram: Tensor, num_words: Tensor, scales: Scales,
                      arpa_source: bool = False) -> Tensor:
    """1-D float64 tensor of shape (A,): each arc's first-pass score.

    Args:
      am, ngram:
        1-D float tensors of shape (A,), the lattice's own score parts.
      num_words:
        1-D int64 tensor of shape (A,), words on each arc.
      scales:
        The run's scales (their first pass is used).
      arpa_source:
        ``--ngram-source arpa``: the lattice's own score (``Scales.first_pass``).
    """
    return combine(scales.first_pass(arpa_source), am, ngram, 0.0, num_words)


@dataclass(frozen=True)
class ArcComponents:
    """Unscaled score parts of every arc of a (possibly expanded) lattice.

    Attributes:
      am:
        1-D float32 tensor of shape (A,), acoustic scores.
      ngram:
        1-D float32 tensor of shape (A,), the lattice's own n-gram scores.
      nnlm:
        1-D float32 tensor of shape (A,), neural LM log-probabilities of the
        arc's tokens (and of the end of sentence on arcs into the final state).
      num_words:
        1-D float32 tensor of shape (A,), lattice words on each arc.
      arpa:
        1-D float64 tensor of shape (A,), the ARPA n-gram's natural-log
        probability of the arc's words (end of sentence included), or None
        without ``--ngram-lm``.
      arpa_end / nnlm_end:
        1-D float64 tensors of shape (A,): the end-of-sentence parts of
        ``arpa`` and ``nnlm`` (0 on arcs not into the final state), mixed on
        their own by ``--interpolate``; None without ``--ngram-lm``.
      arpa_source:
        True for ``--ngram-source arpa``: ``arpa`` replaces ``ngram``.
    """

    am: Tensor
    ngram: Tensor
    nnlm: Tensor
    num_words: Tensor
    arpa: Optional[Tensor] = None
    arpa_end: Optional[Tensor] = None
    nnlm_end: Optional[Tensor] = None
    arpa_source: bool = False

    def total(self, scales: Scales) -> Tensor:
        """1-D float64 tensor of shape (A,), the combined score of each arc (module docstring)."""
        am, ngram, nnlm, num_words = (getattr(self, name).to(torch.float64) for name in _PARTS)
        if self.arpa is None:
            return combine(scales, am, ngram, nnlm, num_words)
        if scales.interpolation is None:
            if self.arpa_source:
                return combine(scales, am, self.arpa, nnlm, num_words)
            return combine(scales, am, ngram, nnlm, num_words) + scales.arpa * self.arpa
        lam = scales.interpolation
        mixed = interpolate_log_probs(self.arpa - self.arpa_end, nnlm - self.nnlm_end, lam) + \
            interpolate_log_probs(self.arpa_end, self.nnlm_end, lam)
        return combine(scales, am, torch.zeros_like(am) if self.arpa_source else ngram, mixed,
                       num_words)

    def path_sums(self, arc_ids: Tensor) -> Dict[str, float]:
        """Sums of each component over a path, in float64.

        Args:
          arc_ids:
            1-D int64 tensor, the arcs of the path.

        Returns:
          ``{"am", "ngram", "nnlm", "num_words"}`` -> float, and ``"arpa"`` with
          ``--ngram-lm``.
        """
        names = _PARTS if self.arpa is None else _PARTS + ("arpa",)
        return dict(zip(names, self._path_columns.index_select(1, arc_ids).sum(dim=1).tolist()))

    @cached_property
    def _path_columns(self) -> Tensor:
        """2-D float64 tensor of shape (P, A): the components ``path_sums`` adds, one per row.

        One gather and one row sum per path instead of one per component (the
        same float64 sums, row by row).
        """
        names = _PARTS if self.arpa is None else _PARTS + ("arpa",)
        return torch.stack([getattr(self, name).to(torch.float64) for name in names])


_PARTS = ("am", "ngram", "nnlm", "num_words")  # combine's argument order


def combine_sums(sums: Dict[str, float], scales: Scales) -> float:
    """The total of a hypothesis from its summed components (float64 arithmetic).

    Log-linear scores only: the ``--interpolate`` mixture is not a function of
    sums (``ArcComponents.total`` computes it per arc).
    """
    return combine(scales, *(sums[name] for name in _PARTS))
