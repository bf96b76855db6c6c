"""``--mode nbest`` for a whole batch: rescore each lattice's first-pass n-best as sentences.

The first-pass n-best of every lattice (A* per lattice on one batched backward
pass) becomes whole-sentence LM queries; all sentences of the batch are scored
in one ``score_requests`` pass.
"""
from typing import TYPE_CHECKING, List

import torch
from torch import Tensor

from rescorer.algorithms.nbest import nbest_distinct
from rescorer.lattice.fsavec import splits_from_counts
from rescorer.rescoring.combine import ArcComponents
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.job_state import BatchOutcome, LiveBatch, ReferenceExtras
from rescorer.rescoring.report import UtteranceStats
from rescorer.rescoring.scoring import nonfinite_failures, score_requests
from rescorer.rescoring.search import ScoredList, path_words
from rescorer.rescoring.sentences import sentence_log_probs, sentence_request
from rescorer.rescoring.timing import stage

if TYPE_CHECKING:
    from rescorer.rescoring.collect import ResultCollector
    from rescorer.rescoring.context import RescoreContext


def rescore_nbest(
    live: LiveBatch, first_pass: Tensor, extras: ReferenceExtras, context: "RescoreContext",
    config: RescoreConfig, collector: "ResultCollector", outcome: BatchOutcome,
) -> None:
    """First-pass n-best -> one LM pass over all sentences -> one ``ScoredList`` per lattice."""
    batch = live.batch
    ranked, failures = nbest_distinct(live.schedule, first_pass, config.nbest)
    outcome.failures.extend((live.origin[index], error) for index, error in failures.items())
    paths = [[found.arc_ids.to(batch.device) for found in hyps] for hyps in ranked]
    flat = [arc_ids for hyps in paths for arc_ids in hyps]
    path_tokens = live.tokens.of(torch.cat(flat) if flat else
                                 torch.zeros(0, dtype=torch.int64, device=batch.device))
    arc_bounds = splits_from_counts(torch.tensor([arc_ids.numel() for arc_ids in flat],
                                                 dtype=torch.int64))  # (N+1,) path arc rows
    token_bounds = path_tokens.splits.cpu()[arc_bounds].tolist()
    sentences = [path_tokens.tokens[token_bounds[index]:token_bounds[index + 1]]
                 for index in range(len(flat))]
    path_oov = torch.zeros(len(flat), dtype=torch.float64).index_add_(
        0, torch.repeat_interleave(torch.arange(len(flat)), arc_bounds[1:] - arc_bounds[:-1]),
        path_tokens.oov_counts.cpu().to(torch.float64)).tolist()  # (N,) OOV words per path
    sentence_utt = torch.tensor([utt for utt, hyps in enumerate(paths) for _ in hyps],
                                dtype=torch.int64)
    vocabulary = context.vocabulary
    request, owner = sentence_request([s.cpu() for s in sentences], vocabulary.bos_id,
                                      vocabulary.eos_id, context.window)
    with stage("score"):
        (scores,), stats = score_requests(context.model, [request], config.chunk_rows)
    outcome.unique_histories += stats.unique_histories
    with stage("search"):
        query_utt = sentence_utt[owner]  # (Q,)
        broken = nonfinite_failures(scores, query_utt, batch.utt_ids, request.query_token)
        outcome.failures.extend((live.origin[utt], error) for utt, error in broken.items())
        sentence_scores = sentence_log_probs(torch.nan_to_num(scores), owner, len(sentences))
        parts = ArcComponents(am=batch.am_scores, ngram=batch.ngram_scores,
                              nnlm=torch.zeros(batch.num_arcs, device=batch.device),
                              num_words=batch.words_per_arc.to(torch.float32))
        queries = torch.bincount(query_utt, minlength=batch.num_utts).tolist()
        arcs = torch.bincount(batch.arc_utt, minlength=batch.num_utts).tolist()
        position = 0
        for utt, hyps in enumerate(paths):
            first, position = position, position + len(hyps)  # this utterance's sentences
            utt_scores: List[float] = sentence_scores[first:position]
            if utt in broken or utt in failures:
                continue
            words, sums = [], []
            for rank, (arc_ids, sentence_score) in enumerate(zip(hyps, utt_scores)):
                path_sums = parts.path_sums(arc_ids)
                path_sums["nnlm"] = sentence_score + config.oov_penalty * path_oov[first + rank]
                sums.append(path_sums)
                words.append(path_words(batch, arc_ids, live.symbols[utt], batch.utt_ids[utt],
                                        live.paths[utt]))
            collector.add(ScoredList(batch.utt_ids[utt], words, sums),
                          first_pass=None if extras.first_pass is None else extras.first_pass[utt],
                          oracle=extras.oracle.get(utt))
            outcome.results[batch.utt_ids[utt]] = UtteranceStats(
                arcs=arcs[utt], pruned_arcs=arcs[utt], expanded_arcs=0, histories=queries[utt],
                queries=queries[utt])
