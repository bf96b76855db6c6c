"""On real asr-dev-ptb3g lattices: ARPA scores on the history-expanded lattice are exact.

The best path's n-gram part, summed from per-arc query scores, equals the
sentence log-prob of its words computed directly from the ARPA, with the
expansion window n-1 = 2 and with a longer one (4, as a K=4 neural LM needs).
"""

from dataclasses import replace

import pytest
import torch

from rescorer.algorithms.single import best_path
from rescorer.algorithms.single import expand_histories
from rescorer.algorithms.mbr import mbr_decode
from rescorer.algorithms.single import prune_by_beam
from rescorer.errors import ConfigError
from rescorer.formats.slf import read_slf
from rescorer.lattice.fsavec import splits_from_counts
from rescorer.lattice.symbols import SymbolTable
from rescorer.ngram.arpa import read_arpa
from rescorer.ngram.lattice import expanded_arc_log_probs
from rescorer.ngram.model import NgramLM

SMALL = ["dev-0180.slf.gz", "dev-0028.slf.gz", "dev-0131.slf.gz"]  # the smallest files


def _arc_tokens(lattice, symbols, vocabulary):
    """ARPA tokens of every arc (one list per symbol, then gathers; test helper)."""
    per_word = [vocabulary.encode_word(symbols.word(int(w))) for w in lattice.word_ids.tolist()]
    counts = torch.tensor([len(t) for t in per_word], dtype=torch.int64)
    cumulative = splits_from_counts(counts)
    return cumulative[lattice.word_splits], torch.tensor([t for ts in per_word for t in ts],
                                                         dtype=torch.int64)


@pytest.fixture(scope="module")
def model(shared_arpa):
    return NgramLM.from_arpa(read_arpa(shared_arpa), shared_arpa)


@pytest.mark.parametrize("name, window", [(SMALL[0], 2), (SMALL[1], 2), (SMALL[2], 4)])
def test_best_path_ngram_score_is_the_sentence_log_prob(shared_arpa, model, name, window):
    path = shared_arpa.parents[1] / "lat" / name
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    (lattice,), symbols = read_slf(path, SymbolTable())
    lattice, _ = prune_by_beam(lattice, lattice.am_scores + lattice.ngram_scores, 8.0)
    splits, tokens = _arc_tokens(lattice, symbols, model.vocabulary)
    expanded = expand_histories(lattice, splits, tokens, window, model.vocabulary.bos_id,
                                model.vocabulary.eos_id, 300_000)
    lm = expanded_arc_log_probs(expanded, model)
    total = lattice.am_scores.double()[expanded.orig_arc] + 9.5 * lm
    _, arcs = best_path(expanded.lattice, total)
    words = [w for arc in expanded.orig_arc[arcs].tolist() for w in lattice.arc_words(arc)]
    ids = [t for w in words for t in model.vocabulary.encode_word(symbols.word(w))]
    direct = float(model.sentence_log_probs([ids])[0])
    assert float(lm[arcs].sum()) == pytest.approx(direct, abs=1e-9)
    assert len(ids) >= 3
    if window == 2:
        with pytest.raises(ConfigError, match="shorter than the n-gram's context"):
            expanded_arc_log_probs(replace(expanded, histories=expanded.histories[:, :1]), model)
    # MBR on the same lattice with a very peaked posterior returns the Viterbi words.
    assert mbr_decode(expanded.lattice, total, scale=50.0).word_ids.tolist() == words
