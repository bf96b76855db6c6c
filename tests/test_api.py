"""The public library API on the shipped demo lattices, as the README shows it."""
from pathlib import Path

import pytest
import torch

import rescorer
from rescorer.formats.torch_pickle import load_torch_dict
from rescorer.lattice.symbols import SymbolTable
from rescorer.model.checkpoint import load_model

LATTICES = Path(__file__).resolve().parents[1] / "lattices"


def test_readme_api_on_the_demo_lattices():
    batch = rescorer.LatticeBatch.from_k2_dict(load_torch_dict(LATTICES / "demo-lattices.pt"))
    scores = batch.am_scores + batch.ngram_scores
    best, splits, arc_ids = rescorer.shortest_paths(batch, scores)
    totals = rescorer.total_scores(batch, scores, log_semiring=True)
    assert best.dtype == totals.dtype == torch.float64 and best.shape == (batch.num_utts,)
    assert splits.shape == (batch.num_utts + 1,) and int(splits[-1]) == arc_ids.numel()
    for utt in range(batch.num_utts):  # each path's arcs sum to its score, in its lattice
        path = arc_ids[int(splits[utt]):int(splits[utt + 1])]
        assert bool((batch.arc_utt[path] == utt).all())
        assert float(scores[path].double().sum()) == pytest.approx(float(best[utt]), abs=1e-6)
        assert int(batch.labels[path[-1]]) == -1
    assert bool((totals >= best).all())  # log-sum-exp over paths >= the best path
    model, vocabulary = load_model(LATTICES / "demo-lm.pt", "cpu")
    symbols = SymbolTable.from_file(LATTICES / "words.txt")
    hypotheses, failures = rescorer.rescore_batch(batch, model, vocabulary, symbols,
                                                  beam=16.0, nbest=5)
    assert failures == {} and list(hypotheses) == batch.utt_ids
    for utt_id, ranked in hypotheses.items():
        assert 1 <= len(ranked) <= 5 and [h.rank for h in ranked] == list(range(1, len(ranked) + 1))
        totals_of = [h.total for h in ranked]
        assert totals_of == sorted(totals_of, reverse=True)
        assert all(h.total == pytest.approx(h.am + h.ngram + h.nnlm, abs=1e-9) for h in ranked)


def test_import_rescorer_stays_cheap():
    import subprocess
    import sys

    code = "import sys, rescorer; print('torch' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, env={"PYTHONPATH": str(LATTICES.parent)})
    assert output.stdout.strip() == "False"
