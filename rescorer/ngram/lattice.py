"""N-gram scores of the arcs of a history-expanded lattice.

``expand_histories`` lists one query per LM token of every expanded arc (plus
the end-of-sentence query of final arcs); an ARPA model answers all of them
in one ``NgramLM.log_probs`` call. The expansion window may be longer than
n-1 (e.g. max(K, n-1) when a K-window neural LM shares the lattice): only the
last n-1 tokens of each history are used, so the scores stay exact.
"""
import torch
from torch import Tensor

from rescorer.algorithms.single import ExpandedLattice
from rescorer.errors import ConfigError
from rescorer.ngram.model import NgramLM


def expanded_arc_log_probs(expanded: ExpandedLattice, model: NgramLM) -> Tensor:
    """ln P_ngram of the tokens of every expanded arc.

    Args:
      expanded:
        The lattice expanded with ``window >= model.order - 1`` and the model's
        ``bos_id``/``eos_id``, over tokens from ``model.vocabulary``.
      model:
        The n-gram LM.

    Returns:
      1-D float64 tensor of shape (A',), per expanded arc the sum of its
      queries' natural-log probabilities (0 for arcs without queries).

    Raises:
      ConfigError: if the expansion window is shorter than n-1 (scores would not be exact).
    """
    window = expanded.histories.shape[1]
    if window < model.order - 1:
        raise ConfigError(f"history window {window} is shorter than the n-gram's context "
                          f"(expected >= {model.order - 1} for a {model.order}-gram)")
    rows = expanded.query_history  # (Q,)
    scores = model.log_probs(expanded.histories[rows], expanded.history_lengths[rows],
                             expanded.query_token)  # (Q,)
    totals = torch.zeros(expanded.lattice.num_arcs, dtype=torch.float64)
    return totals.index_add_(0, expanded.query_arc, scores)
