"""A batch of lattices up to its LM queries: beam pruning and history expansion.

Every lattice of the batch is pruned and expanded together. Lattices whose
expansion needs more than ``max_arcs`` arcs get a tighter (halved) beam and are
retried together, at most ``beam_tries`` times, as icefall's
``rescore_with_whole_lattice`` prunes and retries; without a ``--beam`` the
first retry uses ``RETRY_BEAM``. A lattice that still does not fit fails with
``ExpansionLimitError``; the others go on.

With an ARPA n-gram (``--ngram-lm``) the neural LM and the ARPA may tokenize
words differently ("wasn't": "was n't" for the PTB-mini LM, one word in the
asr-dev-ptb3g trigram), so the lattice expanded by the neural LM's tokens
(window K) is expanded again by the ARPA words of each arc (window n-1): its
states are (state, last K LM tokens, last n-1 ARPA words) and both LMs are
exact on it. The arc limit applies to both passes.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional

import torch
from torch import Tensor

from rescorer.algorithms.history import ExpandedBatch, expand_histories
from rescorer.algorithms.prune import prune_by_beam
from rescorer.algorithms.ragged import expand_ranges
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import ExpansionLimitError
from rescorer.lattice.batch import LatticeBatch
from rescorer.rescoring.timing import stage
from rescorer.rescoring.tokens import ArcTokens, TokenSource

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
      ngram:
        The second, ARPA expansion, or None.
      pruned:
        The lattices arrive pruned with ``beam`` (``read_pruning``): the first
        round expands them as they are, retries prune them further.
    """

    window: int
    bos_id: int
    eos_id: int
    beam: Optional[float]
    max_arcs: int
    beam_tries: int
    ngram: Optional["NgramPass"] = None
    pruned: bool = False


@dataclass(frozen=True)
class NgramPass:
    """The ARPA expansion of the neural-LM-expanded lattices.

    Attributes:
      tokens:
        ARPA word ids of the input batch's arcs (``ArpaVocabulary``), by arc id.
      window:
        n-1 of the n-gram.
      bos_id / eos_id:
        The ARPA's ``<s>`` and ``</s>``.
    """

    tokens: TokenSource
    window: int
    bos_id: int
    eos_id: int


@dataclass(frozen=True)
class PreparedPart:
    """Lattices pruned with one set of beams and expanded together.

    Attributes:
      utts:
        1-D int64 tensor of shape (U',), the input lattice of each expanded one.
      pruned:
        The ``LevelSchedule`` of the pruned lattices (U'' >= U' of them).
      kept_arcs:
        1-D int64 tensor of shape (A'',), the input batch arc of each pruned arc.
      tokens:
        LM tokens of the pruned arcs.
      expanded:
        The history expansion of the pruned lattices that fit ``max_arcs``
        (neural LM tokens; its queries are the neural LM's).
      beams:
        1-D float64 tensor of shape (U',), the beam each lattice was pruned
        with (inf: not pruned).
      tightened:
        How many times the beam was tightened to get here.
      ngram:
        With ``--ngram-lm``: the ARPA expansion of ``expanded.batch`` (its
        queries are the ARPA's; U' lattices, ``ngram.source_utts`` indexes
        ``expanded``'s), else None.
    """

    utts: Tensor
    pruned: LevelSchedule
    kept_arcs: Tensor
    tokens: ArcTokens
    expanded: ExpandedBatch
    beams: Tensor
    tightened: int
    ngram: Optional[ExpandedBatch] = None

    @property
    def final(self) -> ExpandedBatch:
        """The expansion whose lattices are rescored (the ARPA one when there is one)."""
        return self.expanded if self.ngram is None else self.ngram

    def final_to_expanded(self) -> "tuple[Tensor, Tensor]":
        """(A',) arc of ``expanded`` and (U',) lattice of ``expanded`` of each final arc / lattice."""
        if self.ngram is None:
            expanded = self.expanded.batch
            return (torch.arange(expanded.num_arcs, device=expanded.device),
                    torch.arange(expanded.num_utts, device=expanded.device))
        return self.ngram.orig_arc, self.ngram.source_utts


def prepare_batch(
    schedule: LevelSchedule, tokens: TokenSource, first_pass: Tensor, plan: ExpansionPlan,
) -> "tuple[List[PreparedPart], Dict[int, ExpansionLimitError]]":
    """Prune every lattice of the batch (if a beam applies) and expand it to ``plan.window``.

    Args:
      schedule:
        The batch's ``LevelSchedule`` (no bad lattices).
      tokens:
        LM tokens of the batch's arcs, by arc id (only the pruned arcs' are asked for).
      first_pass:
        1-D float64 tensor of shape (A,), the first-pass arc scores the beam applies to.
      plan:
        Window, beam and limits.

    Returns:
      ``(parts, failures)``: one ``PreparedPart`` per round of beams that fitted
      some lattices (the first holds most), and input lattice index -> ``ExpansionLimitError``
      for those still above ``max_arcs`` after ``beam_tries`` halvings.
    """
    batch = schedule.batch
    device = batch.device
    pending = torch.arange(batch.num_utts, device=device)
    beam = float("inf") if plan.beam is None else plan.beam
    beams = torch.full((batch.num_utts,), beam, dtype=torch.float64, device=device)
    parts: List[PreparedPart] = []
    failures: Dict[int, ExpansionLimitError] = {}
    for tightened in range(plan.beam_tries + 1):
        sub = schedule if tightened == 0 else LevelSchedule.of(batch.select(pending.tolist()))
        sub_arcs = _arcs_of(batch, pending) if tightened else torch.arange(batch.num_arcs, device=device)
        if (tightened == 0 and plan.pruned) or bool(torch.isinf(beams[pending]).all()):
            pruned, kept = sub, sub_arcs  # nothing (more) to prune: expand as given
        else:
            with stage("prune"):
                pruned, local = prune_by_beam(sub, first_pass[sub_arcs], beams[pending])
            kept = sub_arcs[local]
        pruned_tokens = tokens.of(kept)
        expanded = expand_histories(pruned, pruned_tokens.splits, pruned_tokens.tokens,
                                    plan.window, plan.bos_id, plan.eos_id, plan.max_arcs)
        second, over_limit = _ngram_pass(expanded, kept, plan)
        local = expanded.source_utts if second is None else expanded.source_utts[second.source_utts]
        utts = pending[local]
        if utts.numel() > 0:
            parts.append(PreparedPart(utts, pruned, kept, pruned_tokens, expanded, beams[utts],
                                      tightened, second))
        over = torch.tensor(sorted(over_limit), dtype=torch.int64, device=device)
        if over.numel() == 0:
            break
        for local_utt, error in over_limit.items():
            if tightened == plan.beam_tries:
                utt = int(pending[local_utt])
                failures[utt] = ExpansionLimitError(
                    f"{error.message}; still too big after {tightened} beam tightenings "
                    f"(last beam {_beam_text(float(beams[utt]))}); raise --max-arcs or lower --beam",
                    utt_id=batch.utt_ids[utt])
        pending = pending[over]
        beams[pending] = torch.where(torch.isinf(beams[pending]),
                                     torch.full_like(beams[pending], RETRY_BEAM), beams[pending] / 2)
    return parts, failures


def _ngram_pass(expanded: ExpandedBatch, kept: Tensor, plan: ExpansionPlan,
                ) -> "tuple[Optional[ExpandedBatch], Dict[int, ExpansionLimitError]]":
    """The ARPA expansion of ``expanded`` (if planned) and every lattice over the arc limit.

    Args:
      expanded:
        The neural LM expansion of the pruned lattices.
      kept:
        1-D int64 tensor of shape (A'',), the input batch arc of each pruned arc.
      plan:
        The expansion plan.

    Returns:
      ``(second, over_limit)``: the ARPA expansion (None without ``plan.ngram``)
      and pruned-lattice index -> error for the lattices too big in either pass.
    """
    over_limit = dict(expanded.over_limit)
    if plan.ngram is None:
        return None, over_limit
    arcs = kept[expanded.orig_arc]  # (A1,) input batch arc of each expanded arc
    tokens = plan.ngram.tokens.of(arcs)
    second = expand_histories(expanded.schedule, tokens.splits, tokens.tokens, plan.ngram.window,
                              plan.ngram.bos_id, plan.ngram.eos_id, plan.max_arcs)
    for local_utt, error in second.over_limit.items():
        over_limit[int(expanded.source_utts[local_utt])] = error
    return second, over_limit


def _beam_text(beam: float) -> str:
    return "None" if beam == float("inf") else f"{beam:g}"


def _arcs_of(batch: LatticeBatch, utts: Tensor) -> Tensor:
    """1-D int64 batch arc ids of the lattices ``utts``, lattice by lattice."""
    starts = batch.arc_splits[:-1][utts]
    return expand_ranges(starts, batch.arc_splits[1:][utts] - starts)
