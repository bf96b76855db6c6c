"""One utterance in two halves around the batched LM pass.

``start_job`` turns a lattice into LM queries (lattice mode: the history
expansion's queries; n-best mode: whole-sentence queries of the first-pass
n-best). ``finish_job`` turns the query log-probabilities back into per-arc
(or per-hypothesis) nnlm scores and hands the rescored material to the
collector.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional, Tuple

import torch
from torch import Tensor

from rescorer.algorithms.nbest import nbest_distinct
from rescorer.algorithms.oracle import oracle_errors
from rescorer.algorithms.ragged import select_rows
from rescorer.algorithms.topsort import topological_levels
from rescorer.lattice.fsavec import Lattice
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.combine import ArcComponents
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.expand import ExpansionPlan, PreparedLattice, first_pass_scores, prepare_lattice
from rescorer.rescoring.report import UtteranceStats
from rescorer.rescoring.scoring import ScoreRequest
from rescorer.rescoring.search import (ScoredLattice, ScoredList, first_pass_words, path_words,
                                      reference_word_ids)
from rescorer.rescoring.sentences import sentence_log_probs, sentence_request
from rescorer.rescoring.tokens import ArcTokens

if TYPE_CHECKING:
    from rescorer.rescoring.collect import ResultCollector
    from rescorer.rescoring.context import RescoreContext


@dataclass
class UtteranceJob:
    """An utterance between preparation and scoring.

    Attributes:
      path:
        The lattice file.
      lattice:
        The lattice as read.
      symbols:
        Its word table.
      tokens:
        LM tokens of its arcs.
      request:
        The LM queries to score.
      prepared:
        Lattice mode: the pruned and expanded lattice.
      paths:
        N-best mode: the first-pass n-best paths (arc ids of ``lattice``).
      owner:
        N-best mode: 1-D int64 (Q,), the hypothesis of each query.
      first_pass:
        First-pass 1-best words, when references are given.
      oracle:
        (lattice oracle errors, reference words), when the utterance has a
        reference (exact word match, whatever ``--ignore-case``).
      pruned_oracle:
        The same for the pruned lattice (lattice mode).
    """

    path: Path
    lattice: Lattice
    symbols: SymbolTable
    tokens: ArcTokens
    request: ScoreRequest
    prepared: Optional[PreparedLattice] = None
    paths: Optional[List[Tensor]] = None
    owner: Optional[Tensor] = None
    first_pass: Optional[List[str]] = None
    oracle: Optional[Tuple[int, int]] = None
    pruned_oracle: Optional[Tuple[int, int]] = None

    @property
    def utt_id(self) -> str:
        """The utterance id."""
        return self.lattice.utt_id


def start_job(
    path: Path, lattice: Lattice, symbols: SymbolTable, context: "RescoreContext",
    config: RescoreConfig,
) -> UtteranceJob:
    """Tokens, first-pass 1-best, and the LM queries of one lattice.

    Raises:
      RescorerError: bad words, cyclic lattice, no path, expansion too big.
    """
    tokens = context.tokenizer(symbols).encode(lattice, path)
    levels = topological_levels(lattice)  # raises LatticeError: empty, cyclic, no path
    first_pass, oracle, reference = None, None, None
    if context.references is not None:
        first_pass = first_pass_words(lattice, config.scales, symbols, levels, path)
        reference = context.references.get(lattice.utt_id)
        if reference is not None:
            reference = reference_word_ids(reference, symbols)
            oracle = (oracle_errors(lattice, reference, levels)[0], len(reference))
    vocabulary = context.vocabulary
    if config.mode == "nbest":
        ranked = nbest_distinct(lattice, first_pass_scores(lattice, config.scales), config.nbest,
                                levels=levels)
        paths = [found.arc_ids for found in ranked]
        sentences = [select_rows(tokens.splits, tokens.tokens, arc_ids)[1] for arc_ids in paths]
        request, owner = sentence_request(sentences, vocabulary.bos_id, vocabulary.eos_id, context.window)
        return UtteranceJob(path, lattice, symbols, tokens, request, paths=paths, owner=owner,
                            first_pass=first_pass, oracle=oracle)
    plan = ExpansionPlan(window=context.window, bos_id=vocabulary.bos_id, eos_id=vocabulary.eos_id,
                         beam=config.beam, max_arcs=config.max_arcs, beam_tries=config.beam_tries)
    prepared = prepare_lattice(lattice, tokens, config.scales, plan, levels, path)
    expanded = prepared.expanded
    request = ScoreRequest(expanded.histories, expanded.history_lengths,
                           expanded.query_history, expanded.query_token)
    pruned_oracle = None
    if reference is not None:
        pruned_oracle = (oracle_errors(prepared.pruned, reference)[0], len(reference))
    return UtteranceJob(path, lattice, symbols, tokens, request, prepared=prepared,
                        first_pass=first_pass, oracle=oracle, pruned_oracle=pruned_oracle)


def finish_job(
    job: UtteranceJob, query_scores: Tensor, config: RescoreConfig, collector: "ResultCollector",
) -> UtteranceStats:
    """Turn query log-probabilities into rescored material for the collector.

    Args:
      job:
        The utterance as ``start_job`` left it.
      query_scores:
        1-D float32 tensor of shape (Q,), log-probabilities of ``job.request``.
      config:
        Rescoring settings (``oov_penalty``, ``write_lattices``).
      collector:
        Receives the rescored lattice or n-best list (and the lattice to write).

    Returns:
      The utterance's sizes for the summary table.
    """
    if job.prepared is None:
        return _finish_nbest(job, query_scores, config, collector)
    prepared = job.prepared
    expanded = prepared.expanded
    lattice = expanded.lattice
    nnlm = torch.zeros(lattice.num_arcs, dtype=torch.float32)
    nnlm.index_add_(0, expanded.query_arc, query_scores)  # (A',) sum of each arc's queries
    oov = prepared.tokens.oov_counts[expanded.orig_arc].to(torch.float32)  # (A',)
    nnlm += config.oov_penalty * oov
    components = ArcComponents(am=lattice.am_scores, ngram=lattice.ngram_scores, nnlm=nnlm,
                               num_words=lattice.words_per_arc.to(torch.float32))
    collector.add(ScoredLattice(job.utt_id, lattice, components, job.symbols, expanded.levels,
                                job.path),
                  first_pass=job.first_pass, oracle=job.oracle, pruned_oracle=job.pruned_oracle)
    if config.write_lattices:
        collector.add_lattice(lattice, nnlm)
    return UtteranceStats(
        arcs=job.lattice.num_arcs, pruned_arcs=prepared.pruned.num_arcs,
        expanded_arcs=lattice.num_arcs, histories=int(expanded.histories.shape[0]),
        queries=int(query_scores.numel()), tightened=prepared.tightened,
    )


def _finish_nbest(
    job: UtteranceJob, query_scores: Tensor, config: RescoreConfig, collector: "ResultCollector",
) -> UtteranceStats:
    """N-best mode: sentence log-probs + path sums of the first-pass paths."""
    lattice = job.lattice
    sentence_scores = sentence_log_probs(query_scores, job.owner, len(job.paths))
    parts = ArcComponents(am=lattice.am_scores, ngram=lattice.ngram_scores,
                          nnlm=torch.zeros(lattice.num_arcs),
                          num_words=lattice.words_per_arc.to(torch.float32))
    words, sums = [], []
    for arc_ids, sentence_score in zip(job.paths, sentence_scores):
        path_sums = parts.path_sums(arc_ids)
        oov = float(job.tokens.oov_counts[arc_ids].sum())
        path_sums["nnlm"] = sentence_score + config.oov_penalty * oov
        sums.append(path_sums)
        words.append(path_words(lattice, arc_ids, job.symbols, job.path))
    collector.add(ScoredList(job.utt_id, words, sums), first_pass=job.first_pass,
                  oracle=job.oracle)
    return UtteranceStats(
        arcs=lattice.num_arcs, pruned_arcs=lattice.num_arcs, expanded_arcs=0,
        histories=int(job.request.histories.shape[0]), queries=int(query_scores.numel()),
    )
