"""The batch job: a ``LatticeBatch`` from LM tokens to rescored material, all at once.

::

    word check (batch) -> levels + problems (batch) -> first-pass scores
      lattice mode: prune (unless pruned as read) + expand, tokens of the kept arcs
                    (batch, retries for lattices over --max-arcs)
      n-best mode:  first-pass n-best (batched heuristics) -> whole-sentence queries
    -> ONE score_requests pass for the whole batch -> per-arc nnlm
    -> ScoredLattice / ScoredList per utterance -> the collector

A bad lattice (unknown word, cycle, no path, too big, non-finite LM output)
becomes one failure; the rest of the batch goes on. In a run, cycles and
missing paths are found as the lattices are read (``read_pruning``).
"""
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.oracle import oracle_counts
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.combine import ArcComponents, first_pass_scores
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.job_state import BatchOutcome, LiveBatch, ReferenceExtras
from rescorer.rescoring.expand import ExpansionPlan, NgramPass, PreparedPart, prepare_batch
from rescorer.rescoring.ngram_terms import arc_log_probs, arpa_arc_log_probs
from rescorer.rescoring.read_pruning import InputFacts, prunes_as_read
from rescorer.rescoring.report import UtteranceStats
from rescorer.rescoring.scoring import ScoreRequest, nonfinite_failures, score_requests
from rescorer.rescoring.search import (ScoredBatch, ScoredLattice, first_pass_words,
                                      reference_word_ids)
from rescorer.rescoring.times import expanded_state_times, lattice_state_times
from rescorer.rescoring.timing import stage
from rescorer.rescoring.tokens import token_source

if TYPE_CHECKING:
    from rescorer.rescoring.collect import ResultCollector
    from rescorer.rescoring.context import RescoreContext


def _known_words(batch: LatticeBatch, paths: Sequence[Optional[Path]],
                 symbols: Sequence[SymbolTable], context: "RescoreContext",
                 outcome: BatchOutcome) -> List[int]:
    """The lattices whose word ids are all in their table; the others fail.

    One check of the batch's distinct ids when its lattices share a table (the
    usual case); lattice by lattice otherwise, or to find the lattice with an
    unknown id.
    """
    cpu_ids = batch.word_ids.cpu()
    table = symbols[0]
    if all(other is table for other in symbols) and (
            cpu_ids.numel() == 0 or int(cpu_ids.max()) <= table.max_id):
        types = torch.bincount(cpu_ids).nonzero().squeeze(1)  # (T,) ids <= the table's largest
        try:
            context.tokenizer(table).prepare(types)
            return list(range(batch.num_utts))
        except RescorerError:
            pass  # some lattice has an unknown word: find it below
    good = []
    bounds = batch.word_splits.cpu()[batch.arc_splits.cpu()].tolist()  # (U+1,) word rows
    for index in range(batch.num_utts):
        try:
            context.tokenizer(symbols[index]).prepare(cpu_ids[bounds[index]:bounds[index + 1]],
                                                      paths[index], batch.utt_ids[index])
            good.append(index)
        except RescorerError as error:
            outcome.failures.append((index, error))
    return good


def _start(batch: LatticeBatch, paths: Sequence[Optional[Path]], symbols: Sequence[SymbolTable],
           context: "RescoreContext", outcome: BatchOutcome) -> Optional[LiveBatch]:
    """Word check and levels; lattices with unknown words or graph problems fail here."""
    good = _known_words(batch, paths, symbols, context, outcome)
    if not good:
        return None
    if len(good) < batch.num_utts:
        batch = batch.select(good)
    schedule, problems = LevelSchedule.checked(batch)
    if problems:
        outcome.failures.extend((good[index], error) for index, error in problems.items())
        keep = [index for index in range(len(good)) if index not in problems]
        good = [good[index] for index in keep]
        if not good:
            return None
        batch = batch.select(keep)
        schedule = LevelSchedule.of(batch)
    live_symbols = [symbols[index] for index in good]
    return LiveBatch(batch, schedule, token_source(batch, live_symbols, context.tokenizer), good,
                     [paths[index] for index in good], live_symbols)


def rescore_lattices(
    batch: LatticeBatch, paths: Sequence[Optional[Path]], symbols: Sequence[SymbolTable],
    context: "RescoreContext", config: RescoreConfig, collector: "ResultCollector",
    facts: Optional[Dict[str, InputFacts]] = None,
) -> BatchOutcome:
    """Rescore every lattice of ``batch`` with one LM pass; hand each result to ``collector``.

    Args:
      batch:
        The lattices (unique utterance ids), on the device the work runs on.
      paths / symbols:
        Each lattice's file (for messages) and word table.
      context:
        The run's model, vocabulary, window and references.
      config:
        The run's settings.
      collector:
        Receives one ``ScoredLattice`` / ``ScoredList`` per good utterance.
      facts:
        The ``InputFacts`` of the lattices as read, by utterance id, when they
        come from ``read_pruning`` (then pruned if the run prunes; their
        oracles are those of the lattices as read); None for lattices handed
        over as they are (no references).

    Returns:
      The ``BatchOutcome``: per-utterance sizes and failures (an error per bad
      lattice; the caller adds file names and honours ``--strict``).
    """
    outcome = BatchOutcome()
    live = _start(batch, paths, symbols, context, outcome)
    if live is None:
        return outcome
    first_pass = first_pass_scores(live.batch.am_scores, live.batch.ngram_scores,
                                   live.batch.words_per_arc, config.scales,
                                   arpa_source=config.ngram_source == "arpa")
    extras = _references(live, first_pass, context, facts)
    if config.mode == "nbest":
        from rescorer.rescoring.nbest_mode import rescore_nbest  # n-best mode only

        rescore_nbest(live, first_pass, extras, context, config, collector, outcome)
    else:
        pruned = facts is not None and prunes_as_read(config)
        _rescore_lattice_mode(live, first_pass, extras, context, config, collector, outcome, pruned)
    return outcome


def _references(live: LiveBatch, first_pass: Tensor, context: "RescoreContext",
                facts: Optional[Dict[str, InputFacts]]) -> ReferenceExtras:
    """First-pass 1-best and lattice oracle of the lattices with a reference.

    The first pass's best path survives pruning, so its words are those of the
    lattice as read; the oracle of the lattice as read is in ``facts``.
    """
    extras = ReferenceExtras()
    if context.references is None:
        return extras
    assert facts is not None, "references come with the InputFacts of read_pruning"
    extras.first_pass = first_pass_words(live.schedule, first_pass, live.symbols, live.paths)
    for index, utt_id in enumerate(live.batch.utt_ids):
        words = context.references.get(utt_id)
        if words is not None:
            extras.references[index] = reference_word_ids(words, live.symbols[index])
            extras.oracle[index] = facts[utt_id].oracle
    return extras


def _rescored_pruned(part: PreparedPart) -> LevelSchedule:
    """The pruned lattices of ``part.utts``, in that order (``part.pruned`` also holds those
    that did not fit ``--max-arcs`` in this round: they are retried in a later part)."""
    _, utt_map = part.final_to_expanded()
    sources = part.expanded.source_utts[utt_map]  # (U',) pruned lattice of each rescored one
    if sources.numel() == part.pruned.batch.num_utts:
        return part.pruned
    return LevelSchedule.of(part.pruned.batch.select(sources.tolist()))


def _rescore_lattice_mode(
    live: LiveBatch, first_pass: Tensor, extras: ReferenceExtras, context: "RescoreContext",
    config: RescoreConfig, collector: "ResultCollector", outcome: BatchOutcome, pruned: bool,
) -> None:
    """Prune (unless ``pruned`` already), expand, score once, then hand each lattice to the
    collector in batch order."""
    vocabulary = context.vocabulary
    ngram = None
    if context.ngram is not None:
        arpa = context.ngram.vocabulary
        ngram = NgramPass(tokens=token_source(live.batch, live.symbols, context.ngram_tokenizer),
                          window=max(1, context.ngram.order - 1), bos_id=arpa.bos_id,
                          eos_id=arpa.eos_id)
    plan = ExpansionPlan(window=context.window, bos_id=vocabulary.bos_id, eos_id=vocabulary.eos_id,
                         beam=config.beam, max_arcs=config.max_arcs, beam_tries=config.beam_tries,
                         ngram=ngram, pruned=pruned)
    parts, too_big = prepare_batch(live.schedule, live.tokens, first_pass, plan)
    outcome.failures.extend((live.origin[index], error) for index, error in too_big.items())
    pruned_oracle: Dict[int, Tuple[int, int]] = {}
    if extras.references:
        for part in parts:
            pruned_oracle.update(oracle_counts(_rescored_pruned(part), extras.references,
                                         part.utts.tolist()))
    times = None
    if config.decode == "mbr":  # the consensus may need CTM times
        times = lattice_state_times(live.schedule, live.paths, config.frame_shift)
    requests = [ScoreRequest(part.expanded.histories, part.expanded.history_lengths,
                             part.expanded.query_history, part.expanded.query_token)
                for part in parts]
    with stage("score"):
        scores, stats = score_requests(context.model, requests, config.chunk_rows)
    outcome.unique_histories += stats.unique_histories
    with stage("search"):
        finished: Dict[int, Tuple[ScoredLattice, UtteranceStats]] = {}
        for part, query_scores in zip(parts, scores):
            finished.update(_finish_part(live, part, query_scores.to(live.batch.device), context,
                                         config, outcome, collector, times))
        for index in sorted(finished):  # batch order, whatever round a lattice was expanded in
            scored, utt_stats = finished[index]
            try:
                collector.add(scored, first_pass=None if extras.first_pass is None
                              else extras.first_pass[index], oracle=extras.oracle.get(index),
                              pruned_oracle=pruned_oracle.get(index))
            except RescorerError as error:
                outcome.failures.append((live.origin[index], error))
                continue
            outcome.results[scored.utt_id] = utt_stats


def _components(
    part: PreparedPart, query_scores: Tensor, context: "RescoreContext", config: RescoreConfig,
) -> ArcComponents:
    """The unscaled per-arc components of the part's final (rescored) lattices.

    ``query_scores`` (Q,) answers the neural LM queries of ``part.expanded``;
    with an ARPA pass they are carried onto its arcs (``final_to_expanded``).
    """
    expanded, final = part.expanded, part.final
    lattices = final.batch
    nnlm, nnlm_end = arc_log_probs(expanded.query_arc, torch.nan_to_num(query_scores),
                                   expanded.batch.labels)  # (A1,) float64
    arc_map, _ = part.final_to_expanded()
    oov = part.tokens.oov_counts[expanded.orig_arc[arc_map]].to(torch.float64)  # (A',)
    nnlm = nnlm[arc_map] + config.oov_penalty * oov
    arpa = arpa_end = end = None
    if part.ngram is not None:
        arpa, arpa_end = arpa_arc_log_probs(part.ngram, context.ngram)
        end = nnlm_end[arc_map]
    return ArcComponents(am=lattices.am_scores, ngram=lattices.ngram_scores,
                         nnlm=nnlm.to(torch.float32), num_words=lattices.words_per_arc.to(torch.float32),
                         arpa=arpa, arpa_end=arpa_end, nnlm_end=end,
                         arpa_source=config.ngram_source == "arpa")


def _finish_part(
    live: LiveBatch, part: PreparedPart, query_scores: Tensor, context: "RescoreContext",
    config: RescoreConfig, outcome: BatchOutcome, collector: "ResultCollector",
    times: Optional[Tuple[Tensor, Dict[int, str]]] = None,
) -> Dict[int, Tuple[ScoredLattice, UtteranceStats]]:
    """Per-arc scores of one part; live index -> (rescored lattice, its sizes).

    ``times``: the live batch's state times and notes (``rescoring.times``), for MBR.
    """
    expanded, final = part.expanded, part.final
    lattices = final.batch
    arc_map, utt_map = part.final_to_expanded()
    query_utt = expanded.batch.arc_utt[expanded.query_arc]  # (Q,) lattice of expanded, per query
    broken_expanded = nonfinite_failures(query_scores, query_utt, expanded.batch.utt_ids,
                                         expanded.query_token)
    local_of = {int(utt): local for local, utt in enumerate(utt_map.tolist())}
    broken = {local_of[utt]: error for utt, error in broken_expanded.items() if utt in local_of}
    outcome.failures.extend((live.origin[int(part.utts[utt])], error) for utt, error in broken.items())
    components = _components(part, query_scores, context, config)
    owners = part.utts.tolist()
    scored = ScoredBatch(final.schedule, components, [live.symbols[i] for i in owners],
                         [live.paths[i] for i in owners])
    if times is not None:
        scored.state_times = expanded_state_times(live.batch, times[0], lattices,
                                                  part.kept_arcs[expanded.orig_arc[arc_map]])
        scored.time_notes = {local: times[1][owner] for local, owner in enumerate(owners)
                             if owner in times[1]}
    arcs = torch.bincount(live.batch.arc_utt, minlength=live.batch.num_utts).tolist()
    pruned = torch.bincount(part.pruned.batch.arc_utt, minlength=part.pruned.batch.num_utts)
    pruned = pruned[expanded.source_utts[utt_map]].tolist()  # (U',) of each final lattice's source
    sizes = torch.bincount(lattices.arc_utt, minlength=lattices.num_utts).tolist()
    queries = torch.bincount(query_utt, minlength=expanded.batch.num_utts)[utt_map].tolist()
    histories = expanded.utt_histories[utt_map].tolist()
    bounds = lattices.arc_splits.tolist()
    writing = config.write_lattices or config.kaldi_lattices is not None
    on_cpu = _with_transitions(lattices, live.batch, part).to(torch.device("cpu")) if writing \
        else lattices
    result = {}
    for local, owner in enumerate(owners):
        if local in broken:
            continue
        if writing:
            collector.add_lattice(on_cpu.lattice(local),
                                  components.nnlm[bounds[local]:bounds[local + 1]].cpu())
        result[owner] = (ScoredLattice(lattices.utt_ids[local], scored, local), UtteranceStats(
            arcs=arcs[owner], pruned_arcs=pruned[local], expanded_arcs=sizes[local],
            histories=histories[local], queries=queries[local], tightened=part.tightened))
    return result


def _with_transitions(expanded: LatticeBatch, source: LatticeBatch, part: PreparedPart) -> LatticeBatch:
    """``expanded`` with the Kaldi transition ids of the ``source`` arcs its arcs copy."""
    arc_map, _ = part.final_to_expanded()
    carried = source.arc_transitions(part.kept_arcs[part.expanded.orig_arc[arc_map]])  # (A'+1,), ids
    if carried is None:
        return expanded
    return replace(expanded, transition_splits=carried[0], transition_ids=carried[1])

