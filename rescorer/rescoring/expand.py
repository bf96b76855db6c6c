"""One lattice up to its LM queries: tokens, beam pruning, history expansion.

When the expansion needs more than ``max_arcs`` arcs, the beam tightens
(halves) and the expansion is retried, at most ``beam_tries`` times, as
icefall's ``rescore_with_whole_lattice`` prunes and retries; without a
``--beam`` the first retry uses ``RETRY_BEAM``. If it still does not fit, the
utterance fails with ``ExpansionLimitError``.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from rescorer.algorithms.history import ExpandedLattice, expand_histories
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.ragged import select_rows
from rescorer.errors import ExpansionLimitError
from rescorer.lattice.fsavec import Lattice
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.tokens import ArcTokens

RETRY_BEAM = 16.0  # first beam tried when an unpruned expansion is too big


@dataclass(frozen=True)
class ExpansionPlan:
    """How to expand: the history window and the limits.

    Attributes:
      window:
        K, LM inputs kept per history (the model's window or --history-approx).
      bos_id / eos_id:
        The LM's sentence-start input and sentence-end target.
      beam:
        Initial pruning beam, or None for no pruning.
      max_arcs:
        Arc limit of one expanded lattice.
      beam_tries:
        Beam halvings allowed when the limit is exceeded.
    """

    window: int
    bos_id: int
    eos_id: int
    beam: Optional[float]
    max_arcs: int
    beam_tries: int


@dataclass(frozen=True)
class PreparedLattice:
    """A lattice pruned and expanded, ready for LM scoring.

    Attributes:
      pruned:
        The pruned lattice (the original one when no beam applies).
      kept_arcs:
        1-D int64 tensor of shape (A',), the original arc id of each pruned arc.
      tokens:
        LM tokens of the pruned lattice's arcs.
      expanded:
        The history expansion of ``pruned``.
      beam:
        The beam finally used (None: no pruning).
      tightened:
        How many times the beam was tightened to fit ``max_arcs``.
    """

    pruned: Lattice
    kept_arcs: Tensor
    tokens: ArcTokens
    expanded: ExpandedLattice
    beam: Optional[float]
    tightened: int


def first_pass_scores(lattice: Lattice, scales: Scales) -> Tensor:
    """1-D float32 tensor of shape (A,): am/ngram scaled, plus the word penalty."""
    return (
        scales.am * lattice.am_scores
        + scales.ngram * lattice.ngram_scores
        + scales.word_penalty * lattice.words_per_arc.to(torch.float32)
    )


def _select_tokens(tokens: ArcTokens, arcs: Tensor) -> ArcTokens:
    """The ``ArcTokens`` of the arcs ``arcs`` (1-D int64), in that order."""
    splits, values = select_rows(tokens.splits, tokens.tokens, arcs)
    return ArcTokens(splits=splits, tokens=values, oov_counts=tokens.oov_counts[arcs])


def prepare_lattice(
    lattice: Lattice,
    tokens: ArcTokens,
    scales: Scales,
    plan: ExpansionPlan,
    levels: Tensor,
    path: Optional[Path] = None,
) -> PreparedLattice:
    """Prune ``lattice`` (if a beam applies) and expand it to ``plan.window``.

    Args:
      lattice:
        The original lattice.
      tokens:
        LM tokens of its arcs.
      scales:
        Scales of the first-pass scores the beam applies to.
      plan:
        Window, beam and limits.
      levels:
        1-D int64 tensor of shape (S,), ``topological_levels(lattice)``.
      path:
        The lattice's file, for error messages.

    Raises:
      ExpansionLimitError: still above ``max_arcs`` after ``beam_tries`` halvings.
    """
    scores = first_pass_scores(lattice, scales)
    beam, tightened = plan.beam, 0
    while True:
        if beam is None:
            pruned, kept, pruned_levels = lattice, torch.arange(lattice.num_arcs), levels
        else:
            pruned, kept = prune_by_beam(lattice, scores, beam, levels=levels)
            pruned_levels = None
        pruned_tokens = tokens if beam is None else _select_tokens(tokens, kept)
        try:
            expanded = expand_histories(
                pruned, pruned_tokens.splits, pruned_tokens.tokens, plan.window,
                plan.bos_id, plan.eos_id, plan.max_arcs, levels=pruned_levels,
            )
            return PreparedLattice(pruned, kept, pruned_tokens, expanded, beam, tightened)
        except ExpansionLimitError as error:
            if tightened >= plan.beam_tries:
                raise ExpansionLimitError(
                    f"{error.message}; still too big after {tightened} beam tightenings "
                    f"(last beam {beam}); raise --max-arcs or lower --beam",
                    path=path, utt_id=lattice.utt_id,
                ) from error
        beam = RETRY_BEAM if beam is None else beam / 2.0
        tightened += 1
