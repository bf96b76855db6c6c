"""End-to-end rescoring on the tiny lattice with tiny random LMs (numbers, not smoke)."""
import json
from pathlib import Path

import kaldialign
import pytest
import torch

from rescorer.algorithms.best_path import shortest_paths
from rescorer.lattice.batch import LatticeBatch
from rescorer.data.vocab import SentencePieceVocabulary, WordVocabulary
from rescorer.errors import ConfigError, ExpansionLimitError
from rescorer.formats.k2_pt import write_k2
from rescorer.formats.k2_read import read_k2_batch
from rescorer.outputs.plots import plotting_available
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.expand import RETRY_BEAM

from rescorer.rescoring.inputs import work_units
from rescorer.rescoring.pipeline import run_rescore

from rescoring_builders import (ARCS, FIRST_PASS_BEST, LM_WORDS, save_model, sentence_log_prob, symbol_table,
                       tiny_lattice, tiny_model)

ALL_SEQUENCES = 24  # 2 first words x (4 middles) x (2 + 1 endings) distinct word sequences


def read_nbest(out: Path):
    return [json.loads(line) for line in (out / "nbest.jsonl").read_text().splitlines()]


def setup(tmp_path, iterations=2, vocabulary=None, words=None, solver="jacobi", lattices=None):
    kwargs = {} if words is None else {"words": words}
    lattice_file = tmp_path / "lats.pt"
    write_k2(lattice_file, lattices or [tiny_lattice("utt1", **kwargs)])
    words_file = tmp_path / "words.txt"
    symbol_table(*([] if words is None else [words])).write(words_file)
    vocabulary = vocabulary or WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size, iterations=iterations, solver=solver)
    checkpoint = save_model(tmp_path / "model.pt", model, vocabulary)
    return lattice_file, words_file, checkpoint, model, vocabulary


def config(tmp_path, lattice_file, words_file, checkpoint, **overrides):
    settings = dict(lattices=[lattice_file], model=checkpoint, out=str(tmp_path / "out"),
                    words=words_file, nbest=100, scales=Scales(am=1.0, ngram=0.5, lm=0.7))
    settings.update(overrides)
    return RescoreConfig(**settings)


@pytest.mark.parametrize("iterations", [1, 2, 4])
def test_every_hypothesis_nnlm_is_the_training_sentence_log_prob(tmp_path, iterations):
    files = setup(tmp_path, iterations=iterations)
    model, vocabulary = files[3], files[4]
    report = run_rescore(config(tmp_path, *files[:3]))
    assert list(report.results) == ["utt1"] and not report.failures
    hypotheses = read_nbest(tmp_path / "out")
    assert len(hypotheses) == ALL_SEQUENCES
    assert len({tuple(h["words"]) for h in hypotheses}) == ALL_SEQUENCES
    for hypothesis in hypotheses:
        expected = sentence_log_prob(model, vocabulary, hypothesis["words"])
        assert hypothesis["nnlm"] == pytest.approx(expected, abs=1e-4), hypothesis["words"]


def test_sentencepiece_lm_scores_pieces_exactly(tmp_path):
    words = ["alpha", "beta", "gamma", "delta", "epsilonic"]
    sentences = [["alphabet", "betamax", "gammaray", "deltas"], ["alpha", "delta", "betas"]] * 20
    vocabulary = SentencePieceVocabulary.train(sentences, vocab_size=24)
    files = setup(tmp_path, iterations=2, vocabulary=vocabulary, words=words)
    multi_piece = [w for w in words if len(vocabulary.encode_word(w)) > 1]
    assert len(multi_piece) >= 2  # arcs really carry several tokens ("gamma" is on 2 arcs)
    run_rescore(config(tmp_path, *files[:3]))
    hypotheses = read_nbest(tmp_path / "out")
    assert len(hypotheses) == ALL_SEQUENCES
    for hypothesis in hypotheses:
        expected = sentence_log_prob(files[3], vocabulary, hypothesis["words"])
        assert hypothesis["nnlm"] == pytest.approx(expected, abs=1e-4), hypothesis["words"]


def test_nbest_totals_recompute_from_components_and_are_ranked(tmp_path):
    files = setup(tmp_path)
    scales = Scales(am=0.9, ngram=0.4, lm=1.3, word_penalty=-0.25)
    run_rescore(config(tmp_path, *files[:3], scales=scales, nbest=7))
    hypotheses = read_nbest(tmp_path / "out")
    assert [h["rank"] for h in hypotheses] == list(range(1, 8))
    for h in hypotheses:
        recomputed = 0.9 * h["am"] + 0.4 * h["ngram"] + 1.3 * h["nnlm"] - 0.25 * len(h["words"])
        assert h["total"] == pytest.approx(recomputed, abs=1e-9)
    totals = [h["total"] for h in hypotheses]
    assert totals == sorted(totals, reverse=True)
    onebest = (tmp_path / "out" / "onebest.txt").read_text()
    assert onebest == "utt1 " + " ".join(hypotheses[0]["words"]) + "\n"


def best_path(lattice, scores):
    """(score, arc ids) of one lattice's Viterbi path."""
    best, _, arcs = shortest_paths(LatticeBatch.from_lattices([lattice]), scores)
    return float(best[0]), arcs


def test_identity_scales_give_the_lattice_own_best_path(tmp_path):
    files = setup(tmp_path)
    scales = Scales(am=1.0, ngram=1.0, lm=0.0, word_penalty=0.0)
    run_rescore(config(tmp_path, *files[:3], scales=scales, nbest=1))
    lattice = tiny_lattice("utt1")
    score, _ = best_path(lattice, lattice.am_scores + lattice.ngram_scores)
    (best,) = read_nbest(tmp_path / "out")
    assert best["words"] == FIRST_PASS_BEST
    assert best["am"] + best["ngram"] == pytest.approx(score, abs=1e-6)
    assert score == pytest.approx(-4.8, abs=1e-6)  # a(-1.5) c(-1.5) a(-1.4) final(-0.4)
    assert (tmp_path / "out" / "onebest.txt").read_text() == "utt1 a c a\n"


def test_lattice_mode_and_nbest_mode_agree_on_every_nnlm_score(tmp_path):
    files = setup(tmp_path, iterations=2)
    run_rescore(config(tmp_path, *files[:3], out=str(tmp_path / "lattice")))
    run_rescore(config(tmp_path, *files[:3], out=str(tmp_path / "nbest"), mode="nbest"))
    lattice_mode = {tuple(h["words"]): h for h in read_nbest(tmp_path / "lattice")}
    nbest_mode = {tuple(h["words"]): h for h in read_nbest(tmp_path / "nbest")}
    assert set(lattice_mode) == set(nbest_mode) and len(nbest_mode) == ALL_SEQUENCES
    for words, hypothesis in nbest_mode.items():
        assert hypothesis["nnlm"] == pytest.approx(lattice_mode[words]["nnlm"], abs=1e-4)
        assert hypothesis["am"] == pytest.approx(lattice_mode[words]["am"], abs=1e-6)
        assert hypothesis["total"] == pytest.approx(lattice_mode[words]["total"], abs=1e-4)


def test_grid_picks_the_scale_with_fewest_errors(tmp_path):
    files = setup(tmp_path)
    run_rescore(config(tmp_path, *files[:3], out=str(tmp_path / "all")))
    hypotheses = read_nbest(tmp_path / "all")
    grid = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]

    def best_words(scale):
        return max(hypotheses, key=lambda h: h["am"] + 0.5 * h["ngram"] + scale * h["nnlm"])["words"]

    # Reference = the 1-best at scale 1, so that scale wins and others lose.
    reference = best_words(1.0)
    errors = [kaldialign.edit_distance(reference, best_words(s))["total"] for s in grid]
    assert min(errors) == 0 and max(errors) > 0  # the case really discriminates
    refs = tmp_path / "text"
    refs.write_text("utt1 " + " ".join(reference) + "\n")
    report = run_rescore(config(tmp_path, *files[:3], grid=grid, refs=refs, nbest=3))
    wers = [stats.errors for _, stats in report.grid]
    assert [point for point, _ in report.grid] == [(scale,) for scale in grid]
    assert report.grid_names == ("lm-scale",)
    assert wers == errors
    assert report.best_point == (grid[wers.index(0)],) and report.best_scales.lm == grid[wers.index(0)]
    assert (tmp_path / "out" / "onebest.txt").read_text().split()[1:] == best_words(report.best_scales.lm)
    if plotting_available():
        assert (tmp_path / "out" / "wer_grid.png").read_bytes()[:4] == b"\x89PNG"
    labels = [label for label, _ in report.wer_rows]
    assert labels[:3] == ["first pass 1-best", "lattice oracle", "pruned lattice oracle (beam none)"]
    assert labels[3].startswith("rescored")
    first_pass, oracle, pruned_oracle, rescored = (stats for _, stats in report.wer_rows)
    assert pruned_oracle.errors == 0
    assert first_pass.errors == errors[0]  # lm_scale 0 = the first pass here (ngram 0.5)
    assert oracle.errors == 0 and oracle.ref_words == len(reference)
    assert rescored.errors == 0


def test_written_lattices_carry_nnlm_scores_of_the_best_path(tmp_path):
    files = setup(tmp_path)
    run_rescore(config(tmp_path, *files[:3], write_lattices=True, nbest=1))
    content = torch.load(tmp_path / "out" / "lattices.pt")
    batch, failures = read_k2_batch(tmp_path / "out" / "lattices.pt")
    (expanded,) = batch.to_lattices()
    assert failures == []
    nnlm = content["nnlm_scores"]
    assert nnlm.shape == (expanded.num_arcs,)
    total = expanded.am_scores + 0.5 * expanded.ngram_scores + 0.7 * nnlm
    _, arc_ids = best_path(expanded, total)
    (best,) = read_nbest(tmp_path / "out")
    assert float(nnlm[arc_ids].double().sum()) == pytest.approx(best["nnlm"], abs=1e-5)


def test_sequential_model_needs_history_approx_in_lattice_mode(tmp_path):
    files = setup(tmp_path, solver="sequential")
    with pytest.raises(ConfigError, match="--history-approx"):
        run_rescore(config(tmp_path, *files[:3]))
    assert not (tmp_path / "out").exists()
    run_rescore(config(tmp_path, *files[:3], mode="nbest", out=str(tmp_path / "exact")))
    exact = {tuple(h["words"]): h["nnlm"] for h in read_nbest(tmp_path / "exact")}
    for h in read_nbest(tmp_path / "exact"):
        assert h["nnlm"] == pytest.approx(sentence_log_prob(files[3], files[4], h["words"]), abs=1e-4)
    # Histories of 4 inputs hold every sentence here (<bos> a c a -> <eos>): exact.
    report = run_rescore(config(tmp_path, *files[:3], history_approx=4))
    assert list(report.results) == ["utt1"]
    assert report.notes[0].startswith("--history-approx 4: 1-best nnlm differs from full-history "
                                      "scores by 0.000 nats on average, 0.000 at most")
    for h in read_nbest(tmp_path / "out"):
        assert h["nnlm"] == pytest.approx(exact[tuple(h["words"])], abs=1e-4)
    # 2 inputs: an approximation that differs on the longer sentences.
    report = run_rescore(config(tmp_path, *files[:3], history_approx=2))
    differences = [abs(h["nnlm"] - exact[tuple(h["words"])]) for h in read_nbest(tmp_path / "out")]
    assert max(differences) > 1e-2
    best = read_nbest(tmp_path / "out")[0]
    assert f"{abs(best['nnlm'] - exact[tuple(best['words'])]):.3f} at most" in report.notes[0]


def test_expansion_limit_tightens_the_beam_then_fails(tmp_path):
    files = setup(tmp_path)
    report = run_rescore(config(tmp_path, *files[:3], max_arcs=20, beam=8.0))
    assert report.results["utt1"].tightened >= 1
    assert report.results["utt1"].expanded_arcs <= 20
    refs = tmp_path / "text"
    refs.write_text("utt1 a\n")
    # --beam 0 (no pruning) with an expansion over the limit: the row names the retry beams.
    report = run_rescore(config(tmp_path, *files[:3], max_arcs=20, beam_tries=6, refs=refs))
    tightened = report.results["utt1"].tightened
    assert tightened >= 1
    lowest = RETRY_BEAM / 2 ** (tightened - 1)
    assert [label for label, _ in report.wer_rows][2] == \
        f"pruned lattice oracle (beam none; 1 utterance(s) tightened to fit --max-arcs, down to {lowest:g})"
    report = run_rescore(config(tmp_path, *files[:3], max_arcs=3, beam=8.0, beam_tries=2))
    assert not report.results and len(report.failures) == 1
    assert "still too big after 2 beam tightenings" in report.failures[0].message
    with pytest.raises(ExpansionLimitError):
        run_rescore(config(tmp_path, *files[:3], max_arcs=3, strict=True))


def test_worker_processes_give_the_same_outputs_as_one_process(tmp_path):
    files = setup(tmp_path)
    second = [arc if arc[2] != "c" or arc[0] != 1 else (1, 2, "c", -1.0, -2.5) for arc in ARCS]
    extra = []
    for index, arcs in enumerate([second, None, second]):
        path = tmp_path / f"extra{index}.pt"
        write_k2(path, [tiny_lattice(f"x{index}", **({} if arcs is None else {"arcs": arcs}))])
        extra.append(path)
    duplicate = tmp_path / "duplicate.pt"
    write_k2(duplicate, [tiny_lattice("x1")])
    inputs = [files[0], *extra, duplicate, tmp_path / "missing.pt"]
    refs = tmp_path / "text"
    refs.write_text("utt1 a c a\nx0 a a\nx1 b c a\nx2 a d b\n")
    outputs = {}
    for jobs in (1, 2):
        out = tmp_path / f"jobs{jobs}"
        report = run_rescore(config(tmp_path, *files[:3], lattices=inputs, out=str(out), jobs=jobs,
                                    batch_size=1, grid=[0.0, 1.0, 3.0], refs=refs, nbest=5))
        assert sorted(report.results) == ["utt1", "x0", "x1", "x2"]
        assert sorted(f.utt_id or "-" for f in report.failures) == ["-", "x1"]
        outputs[jobs] = ((out / "onebest.txt").read_text(), (out / "nbest.jsonl").read_text(),
                         [(s, w.errors) for s, w in report.grid],
                         [(label, w.errors) for label, w in report.wer_rows])
    assert outputs[1] == outputs[2]


def test_work_units_cover_every_lattice_and_feed_every_worker():
    assert work_units(10, 16, 2) == [(0, 5), (5, 10)]
    assert work_units(10, 3, 2) == [(0, 2), (2, 5), (5, 7), (7, 10)]  # 4 units, 2 per worker
    assert work_units(1, 16, 4) == [(0, 1)]
    assert work_units(0, 16, 2) == []
    assert work_units(240, 64, 1) == [(0, 60), (60, 120), (120, 180), (180, 240)]
    for count, batch_size, jobs in ((10_000, 16, 2), (241, 64, 3), (7, 1, 4), (100, 100, 1)):
        units = work_units(count, batch_size, jobs)
        sizes = [stop - start for start, stop in units]
        assert units[0][0] == 0 and units[-1][1] == count
        assert all(a[1] == b[0] for a, b in zip(units, units[1:]))
        assert max(sizes) <= batch_size and max(sizes) - min(sizes) <= 1
        assert len(units) % jobs == 0 or len(units) == count


def test_a_failed_first_copy_of_an_utterance_id_still_claims_it(tmp_path):
    """utt1 twice, the first with a cycle (found as it is read): two failures, no output."""
    cyclic = tiny_lattice("utt1", arcs=[(0, 1, "a", -1.0, 0.0), (1, 2, "b", -1.0, 0.0),
                                        (2, 1, "c", -1.0, 0.0), (1, 3, -1, 0.0, 0.0)])
    files = setup(tmp_path, lattices=[cyclic, tiny_lattice("other")])
    second = tmp_path / "second.pt"
    write_k2(second, [tiny_lattice("utt1")])
    report = run_rescore(config(tmp_path, files[0], *files[1:3], lattices=[files[0], second],
                                beam=8.0))
    assert list(report.results) == ["other"]
    messages = sorted(failure.message for failure in report.failures)
    assert len(messages) == 2 and "cycle" in messages[0] and "appears twice" in messages[1]
    assert str(second) in messages[1]


def test_an_infinite_beam_keeps_every_arc_as_no_beam_does(tmp_path):
    """Even the arc into a dead end (state 2): --beam inf is no pruning, not pruning at inf."""
    dead_end = tiny_lattice("utt1", arcs=[(0, 1, "a", -1.0, 0.0), (0, 2, "b", -1.0, 0.0),
                                          (1, 3, -1, 0.0, 0.0)])
    files = setup(tmp_path, lattices=[dead_end])
    sizes = {}
    for beam in (None, float("inf")):
        report = run_rescore(config(tmp_path, *files[:3], beam=beam, out=str(tmp_path / f"out{beam}")))
        sizes[beam] = [(stats.arcs, stats.pruned_arcs, stats.expanded_arcs)
                       for stats in report.results.values()]
    assert sizes[None] == sizes[float("inf")] and sizes[None][0][:2] == (3, 3)


def test_a_lattice_without_a_finite_first_pass_path_fails_alone(tmp_path):
    """Scores that overflow float64 under the scales: that lattice fails, the run goes on."""
    overflowing = tiny_lattice("bad", arcs=[(0, 1, "a", -3e38, 0.0), (1, 2, "b", -3e38, 0.0),
                                            (2, 3, -1, 0.0, 0.0)])
    files = setup(tmp_path, lattices=[overflowing, tiny_lattice("other")])
    report = run_rescore(config(tmp_path, *files[:3], beam=8.0,
                                scales=Scales(am=1e300, ngram=0.5, lm=0.7)))
    assert list(report.results) == ["other"]
    assert [(failure.utt_id, "finite first-pass" in failure.message)
            for failure in report.failures] == [("bad", True)]
