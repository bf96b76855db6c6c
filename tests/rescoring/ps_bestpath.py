"""pocketsphinx's lattice bestpath recursion, re-implemented (a test and bench reference).

This is the search the asr-dev-ptb3g README calls "pocketsphinx's recursion,
re-implemented" (its 233/240 agreement with the decoder): an *approximate*
trigram search, unlike ``--ngram-source arpa``'s exact history expansion.

- One Viterbi state per link. Link x = S->E extends the links y into S; the
  start node's links extend a virtual link with score 0 and history ``<s>``.
- Each link state keeps its best score, its best predecessor and the last
  n-1 real words (ARPA ids) of its best path: the history that the LM query
  of every link leaving E uses.
- Score of x after y: score(y) + a(x) + lmscale * ln P(W(E) | history(y)) +
  wdpenalty * [E is a real word or the end node]. Into a filler the LM score
  is 0 and the history passes through unchanged (fillers are transparent);
  into the end node the query is ``</s>``. Out of the start node the history
  is ``<s>`` alone, i.e. the bigram P(w | <s>).
- Fillers are what our SLF reader makes epsilon (``rescorer.formats.slf.
  is_filler``: ``!NULL``, every ``!SENT_START``, ``[..]`` words, ...).

The approximation: through a filler node the history comes from the best path
into it, so paths that differ only before a filler share one history. Without
fillers, a link state determines the last two words and the recursion is
exact for a trigram.

It runs on the lattices as ``rescorer.formats.slf.read_slf`` gives them (arc i
= link ``J=i``) with ``rescorer.ngram.NgramLM``'s vectorised lookups, one
topological level of the whole batch at a time: per level, every
(in-link, out-link) pair of its nodes is scored in one LM call.
"""
from dataclasses import dataclass
from typing import List

import torch
from torch import Tensor

from rescorer.algorithms.topsort import LevelSchedule
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.model import NgramLM


@dataclass(frozen=True)
class BestPaths:
    """The recursion's best path of each lattice.

    Attributes:
      scores:
        1-D float64 tensor of shape (U,), the best path's score.
      arcs:
        U 1-D int64 tensors, the lattice-local arc ids (= SLF link ids) of each
        best path, start to end.
      words:
        U lists of words (fillers dropped).
    """

    scores: Tensor
    arcs: List[Tensor]
    words: List[List[str]]


def _arc_tokens(batch: LatticeBatch, symbols: SymbolTable, ngram: NgramLM):
    """Per arc: the lattice word id (0: none) and its ARPA tokens.

    Returns:
      ``(words, tokens, counts)``: (A,) int64 lattice word ids; (A, M) int64
      ARPA ids, left-aligned (``</s>`` on arcs into the final state); (A,) int64
      token counts (0 into fillers).
    """
    per_arc = batch.words_per_arc
    if bool((per_arc > 1).any()):
        raise ValueError("at most one word per arc (SLF lattices) is supported")
    words = torch.zeros(batch.num_arcs, dtype=torch.int64)
    words[per_arc == 1] = batch.word_ids
    distinct = torch.unique(words[words > 0]).tolist()
    encoded = {w: ngram.vocabulary.encode_word(symbols.word(w)) for w in distinct}
    width = max([1] + [len(t) for t in encoded.values()])
    table = torch.full((max([0] + distinct) + 1, width), -1, dtype=torch.int64)  # by word id
    lengths = torch.zeros(table.shape[0], dtype=torch.int64)
    for word, ids in encoded.items():
        table[word, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
        lengths[word] = len(ids)
    tokens, counts = table[words], lengths[words]
    into_end = batch.labels == -1
    tokens[into_end, 0] = ngram.vocabulary.eos_id
    counts[into_end] = 1
    return words, tokens, counts


def _in_links(batch: LatticeBatch):
    """CSR of the links into each state, the start states entered by virtual link A+u.

    Returns:
      ``(links, splits)``: 1-D int64 (A+U,) link ids grouped by destination
      state; 1-D int64 (S+1,) row splits.
    """
    num_arcs = batch.num_arcs
    dst = torch.cat([batch.dst, batch.start_states])
    ids = torch.arange(num_arcs + batch.num_utts, dtype=torch.int64)
    order = torch.sort(dst, stable=True).indices
    splits = torch.zeros(batch.num_states + 1, dtype=torch.int64)
    splits[1:] = torch.cumsum(torch.bincount(dst, minlength=batch.num_states), 0)
    return ids[order], splits


def _pairs(links: Tensor, splits: Tensor, out_arcs: Tensor, src: Tensor):
    """Every (in-link y, out-link x) pair at the source states of ``out_arcs``.

    Returns:
      ``(x, y)``: two 1-D int64 tensors of shape (P,).
    """
    states = src[out_arcs]
    counts = splits[states + 1] - splits[states]  # (X,)
    x = torch.repeat_interleave(out_arcs, counts)
    ends = torch.cumsum(counts, 0)
    offsets = torch.repeat_interleave(splits[states] - (ends - counts), counts)
    return x, links[offsets + torch.arange(x.numel(), dtype=torch.int64)]


def _extend(ngram: NgramLM, history: Tensor, tokens: Tensor, counts: Tensor):
    """LM log-prob of each pair's tokens and the history after them.

    Args:
      history:
        2-D int64 tensor of shape (P, n-1), right-aligned ARPA ids, -1 before ``<s>``.
      tokens:
        2-D int64 tensor of shape (P, M), the tokens of each pair's out-link.
      counts:
        1-D int64 tensor of shape (P,), how many of them are real (0: filler).

    Returns:
      ``(log_probs, history)``: (P,) float64 and the updated (P, n-1) history.
    """
    log_probs = torch.zeros(history.shape[0], dtype=torch.float64)
    history = history.clone()
    for step in range(tokens.shape[1]):
        active = (counts > step).nonzero().squeeze(1)
        token = tokens[active, step]
        log_probs[active] += ngram.window_log_probs(history[active], token)
        history[active] = torch.cat([history[active, 1:], token.unsqueeze(1)], dim=1)
    return log_probs, history


def ps_bestpath(batch: LatticeBatch, symbols: SymbolTable, ngram: NgramLM,
                lmscale: float, wdpenalty: float) -> BestPaths:
    """Run the recursion (module docstring) over every lattice of ``batch``.

    Args:
      batch:
        SLF lattices read by ``read_slf`` with ``symbols``.
      symbols:
        Their word table.
      ngram:
        The ARPA LM (order >= 2).
      lmscale, wdpenalty:
        The weights of the score (the SLF header's).

    Returns:
      The best paths (``BestPaths``).
    """
    num_arcs, width = batch.num_arcs, ngram.order - 1
    words, tokens, counts = _arc_tokens(batch, symbols, ngram)
    gain = batch.am_scores.double() + wdpenalty * ((words > 0) | (batch.labels == -1)).double()
    score = torch.full((num_arcs + batch.num_utts,), -float("inf"), dtype=torch.float64)
    score[num_arcs:] = 0.0
    history = torch.full((num_arcs + batch.num_utts, width), -1, dtype=torch.int64)
    history[num_arcs:, -1] = ngram.vocabulary.bos_id
    previous = torch.full((num_arcs,), -1, dtype=torch.int64)
    links, splits = _in_links(batch)
    schedule = LevelSchedule.of(batch)
    for out_arcs in schedule.arcs:
        if out_arcs.numel() == 0:
            continue
        x, y = _pairs(links, splits, out_arcs, batch.src)
        log_probs, extended = _extend(ngram, history[y], tokens[x], counts[x])
        candidate = score[y] + gain[x] + lmscale * log_probs  # (P,)
        best = torch.full((num_arcs,), -float("inf"), dtype=torch.float64).scatter_reduce(
            0, x, candidate, reduce="amax", include_self=True)
        winners = (candidate == best[x]).nonzero().squeeze(1)  # ties: the first pair wins
        first = torch.full((num_arcs,), x.numel(), dtype=torch.int64).scatter_reduce(
            0, x[winners], winners, reduce="amin", include_self=True)[out_arcs]
        score[out_arcs] = candidate[first]
        previous[out_arcs] = y[first]
        history[out_arcs] = extended[first]
    return _trace(batch, symbols, score[:num_arcs], previous, words)


def _trace(batch: LatticeBatch, symbols: SymbolTable, score: Tensor, previous: Tensor,
           words: Tensor) -> BestPaths:
    """Follow the best predecessors back from each lattice's best final link."""
    num_arcs = batch.num_arcs
    final = (batch.labels == -1).nonzero().squeeze(1)
    utt = batch.arc_utt[final]
    best = torch.full((batch.num_utts,), -float("inf"), dtype=torch.float64).scatter_reduce(
        0, utt, score[final], reduce="amax", include_self=True)
    winners = score[final] == best[utt]
    current = torch.full((batch.num_utts,), num_arcs, dtype=torch.int64).scatter_reduce(
        0, utt[winners], final[winners], reduce="amin", include_self=True)
    steps, done = [], torch.full_like(current, num_arcs)  # num_arcs: no (more) links
    while bool((current < num_arcs).any()):
        steps.append(current)
        before = previous[current.clamp(max=num_arcs - 1)]  # virtual start links are >= num_arcs
        current = torch.where((current < num_arcs) & (before < num_arcs), before, done)
    stacked = torch.stack(steps[::-1], dim=1) if steps else \
        torch.zeros(batch.num_utts, 0, dtype=torch.int64)  # (U, longest path), padded with num_arcs
    arcs, out_words = [], []
    for u in range(batch.num_utts):
        path = stacked[u][stacked[u] < num_arcs]
        arcs.append(path - batch.arc_splits[u])
        out_words.append([symbols.word(w) for w in words[path].tolist() if w > 0])
    return BestPaths(scores=best, arcs=arcs, words=out_words)
