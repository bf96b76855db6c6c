"""The batch job: float64 ranking, one first-pass formula, batch invariance end to end."""
import random
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from rescorer import rescore_batch
from rescorer.algorithms.topsort import LevelSchedule
from rescorer.data.vocab import WordVocabulary
from rescorer.errors import CheckpointError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.combine import ArcComponents, Scales, first_pass_scores
from rescorer.rescoring.search import ScoredBatch, ScoredLattice, first_pass_words
from rescorer.rescoring.pipeline import run_rescore

from rescoring_builders import LM_WORDS, symbol_table, tiny_lattice, tiny_model
from test_pipeline import config, setup

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "algorithms"))
from lattice_builders import batch_of, make_lattice, random_lattice  # noqa: E402


def test_hypotheses_are_ranked_in_float64():
    # Two one-word paths with am -4096: float32 totals round both nnlm parts away
    # (spacing 2^-11 near 4096) and tie, so arc-id order would put "a" first.
    # float64: "b" (-4096.0001) beats "a" (-4096.0002).
    lattice, _ = make_lattice([(0, 1, [1], -4096.0), (0, 1, [2], -4096.0), (1, 2, [], 0.0)])
    batch = batch_of(lattice)
    nnlm = torch.tensor([-0.0002, -0.0001, 0.0])
    components = ArcComponents(am=batch.am_scores, ngram=batch.ngram_scores, nnlm=nnlm,
                               num_words=batch.words_per_arc.to(torch.float32))
    scored = ScoredBatch(LevelSchedule.of(batch), components, [symbol_table()], [None])
    rescored = ScoredLattice(batch.utt_ids[0], scored, 0)
    scales = Scales()
    assert rescored.onebest_words(scales) == ["b"]
    hypotheses = rescored.hypotheses(scales, 2)
    assert [h.words for h in hypotheses] == [["b"], ["a"]]
    assert hypotheses[0].total > hypotheses[1].total


def test_first_pass_keeps_the_word_penalty():
    # Tiny lattice: by am + ngram the 1-best is "a c a" (-4.8); with a word
    # penalty of -5 per word the two-word "a a" (-6.3 - 10) beats it (-4.8 - 15).
    batch = LatticeBatch.from_lattices([tiny_lattice()])
    schedule = LevelSchedule.of(batch)
    for penalty, expected in ((0.0, ["a", "c", "a"]), (-5.0, ["a", "a"])):
        scales = Scales(word_penalty=penalty, lm=0.3)
        scores = first_pass_scores(batch.am_scores, batch.ngram_scores, batch.words_per_arc,
                                   scales)
        assert scores.dtype == torch.float64
        assert first_pass_words(schedule, scores, [symbol_table()], [None]) == [expected]


def test_first_pass_wer_row_uses_the_word_penalty(tmp_path):
    files = setup(tmp_path)
    refs = tmp_path / "text"
    refs.write_text("utt1 a a\n")
    rows = {}
    for penalty in (0.0, -5.0):
        out = tmp_path / f"out{penalty}"
        scales = Scales(am=1.0, ngram=1.0, lm=0.7, word_penalty=penalty)
        report = run_rescore(config(tmp_path, *files[:3], refs=refs, scales=scales, out=str(out)))
        rows[penalty] = dict(report.wer_rows)["first pass 1-best"].errors
    assert rows == {0.0: 1, -5.0: 0}  # "a c a" has one insertion, "a a" none


def _random_word_lattice(rng: random.Random):
    lattice, _ = random_lattice(rng, max_states=6, vocab=5)
    return lattice


@pytest.mark.parametrize("mode", ["lattice", "nbest"])
def test_rescore_batch_is_batch_invariant(mode):
    """A lattice rescored alone and inside 64 mixed lattices: same words, same scores."""
    rng = random.Random(5)
    vocabulary = WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size, iterations=2)
    symbols = symbol_table()
    for _ in range(3):
        lattice = _random_word_lattice(rng)
        others = [_random_word_lattice(rng) for _ in range(63)]
        index = rng.randrange(64)
        mixed = batch_of(*others[:index], lattice, *others[index:])
        alone = batch_of(lattice)
        options = dict(scales=Scales(ngram=0.5, lm=0.7, word_penalty=-0.3), nbest=5, mode=mode,
                       beam=3.0)
        one, failed_one = rescore_batch(alone, model, vocabulary, symbols, **options)
        many, failed_many = rescore_batch(mixed, model, vocabulary, symbols, **options)
        assert not failed_one and not failed_many and len(many) == 64
        ours = many[mixed.utt_ids[index]]
        (theirs,) = one.values()
        assert [h.words for h in ours] == [h.words for h in theirs]
        for mine, reference in zip(ours, theirs):
            for name in ("am", "ngram"):  # summed in float64 from the same float32 arcs
                assert getattr(mine, name) == pytest.approx(getattr(reference, name), abs=1e-9)
            # The LM runs in float32 on batches of other sizes, and BLAS may pick another
            # kernel for another row count (seen on torch 1.13: 6e-8): float32 tolerance.
            for name in ("nnlm", "total"):
                assert getattr(mine, name) == pytest.approx(getattr(reference, name), rel=1e-6)


@pytest.mark.parametrize("mode", ["lattice", "nbest"])
def test_non_finite_lm_outputs_fail_only_their_utterance(mode):
    vocabulary = WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size)
    broken = vocabulary.encode_word("d")[0]
    original = model._log_softmax  # what every scoring path ends in

    def nan_for_d(hidden):
        log_probs = original(hidden).clone()
        log_probs[:, broken] = float("nan")  # as from corrupt weights, for one token
        return log_probs

    model._log_softmax = nan_for_d
    plain = tiny_lattice("plain", arcs=[(0, 1, "a", -1.0, 0.0), (1, 2, "b", -1.0, 0.0),
                                        (2, 3, -1, 0.0, 0.0)])
    batch = LatticeBatch.from_lattices([tiny_lattice("with-d"), plain])
    # n-best mode: rank 1 of the first pass avoids "d", so ask for the whole list.
    hypotheses, failures = rescore_batch(batch, model, vocabulary, symbol_table(), nbest=24,
                                         mode=mode)
    assert list(failures) == ["with-d"] and list(hypotheses) == ["plain"]
    error = failures["with-d"]
    assert isinstance(error, CheckpointError) and error.utt_id == "with-d"
    assert "non-finite log-probability (nan)" in str(error) and "utterance with-d" in str(error)
    assert [h.words for h in hypotheses["plain"]] == [["a", "b"]]


@pytest.mark.parametrize("mode", ["lattice", "nbest"])
@pytest.mark.parametrize("unknown", [20, 99])  # a hole below the table's largest id, and above it
def test_a_word_id_missing_from_the_table_fails_only_its_lattice(tmp_path, mode, unknown):
    """Tokens are encoded for the pruned arcs only; an unknown id still fails its lattice
    (even on an arc the beam removes), with the tokenizer's message, and only that one."""
    vocabulary = WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size)
    words = tmp_path / "words.txt"
    words.write_text(symbol_table().to_text() + "far 30\n")
    symbols = SymbolTable.from_file(words)
    arcs = [(0, 1, "a", -1.0, 0.0), (0, 1, "b", -50.0, 0.0), (1, 2, -1, 0.0, 0.0)]
    plain = tiny_lattice("plain", arcs=arcs)
    bad = tiny_lattice("bad", arcs=arcs)
    bad = replace(bad, word_ids=torch.tensor([bad.word_ids[0], unknown]))  # the -50 arc's word
    batch = LatticeBatch.from_lattices([plain, bad, tiny_lattice("last", arcs=arcs)])
    hypotheses, failures = rescore_batch(batch, model, vocabulary, symbols, beam=5.0, mode=mode)
    assert list(failures) == ["bad"] and list(hypotheses) == ["plain", "last"]
    assert f"utterance bad: word id {unknown} is not in {words}" in str(failures["bad"])
    assert [h.words for h in hypotheses["last"]] == [["a"]]


def test_only_lattices_over_the_arc_limit_are_retried_with_a_tighter_beam():
    from rescorer.rescoring.expand import RETRY_BEAM, ExpansionPlan, prepare_batch
    from rescorer.rescoring.tokens import ArcTokenizer

    big, small = tiny_lattice("big"), tiny_lattice("small", arcs=[
        (0, 1, "a", -1.0, 0.0), (1, 2, "b", -1.0, 0.0), (2, 3, -1, 0.0, 0.0)])
    batch = LatticeBatch.from_lattices([small, big])
    vocabulary = WordVocabulary(LM_WORDS)
    tokens = ArcTokenizer(vocabulary, symbol_table()).encode_words(batch.word_splits,
                                                                   batch.word_ids)
    first_pass = first_pass_scores(batch.am_scores, batch.ngram_scores, batch.words_per_arc,
                                   Scales())
    schedule = LevelSchedule.of(batch)
    # K=3 expands "big" to 74 arcs unpruned, 30 at beam 1 (16, 8, 4, 2: more than 30).
    plan = ExpansionPlan(window=3, bos_id=vocabulary.bos_id, eos_id=vocabulary.eos_id, beam=None,
                         max_arcs=30, beam_tries=5)
    parts, failures = prepare_batch(schedule, tokens, first_pass, plan)
    assert failures == {}
    assert [part.utts.tolist() for part in parts] == [[0], [1]]  # rounds 1-4 fitted none
    assert [part.tightened for part in parts] == [0, 5]
    assert torch.isinf(parts[0].beams).all() and parts[-1].beams.tolist() == [RETRY_BEAM / 16]
    assert parts[0].expanded.batch.num_arcs == 3  # the small lattice, unpruned, first round
    assert parts[-1].expanded.batch.num_arcs == 30
    tight = ExpansionPlan(window=3, bos_id=vocabulary.bos_id, eos_id=vocabulary.eos_id,
                          beam=None, max_arcs=2, beam_tries=1)
    parts, failures = prepare_batch(schedule, tokens, first_pass, tight)
    assert sorted(failures) == [0, 1]
    assert "still too big after 1 beam tightenings (last beam 16)" in failures[1].message


def test_combine_sums_float64_terms_left_to_right_whatever_the_input_dtypes():
    """Tensor terms of any dtype: the float64 formula, term by term, bit for bit; floats too."""
    from rescorer.rescoring.combine import combine

    generator = torch.Generator().manual_seed(3)
    am, ngram = torch.randn(1000, generator=generator) * 50, torch.randn(1000, generator=generator) * 9
    nnlm = torch.randn(1000, generator=generator, dtype=torch.float64) * 7
    words = torch.randint(0, 4, (1000,), generator=generator)
    scales = Scales(am=0.0833, ngram=9.5, lm=1.7, word_penalty=-0.63)
    expected = scales.am * am.double()
    for scale, value in ((scales.ngram, ngram), (scales.lm, nnlm), (scales.word_penalty, words)):
        expected = expected + scale * value.double()
    total = combine(scales, am, ngram, nnlm, words)
    assert total.dtype == torch.float64 and torch.equal(total, expected)
    assert torch.equal(combine(scales, am, ngram, 0.0, words),
                       scales.am * am.double() + scales.ngram * ngram.double() + 0.0
                       + scales.word_penalty * words.double())
    assert am.dtype == torch.float32 and ngram.dtype == torch.float32  # inputs untouched
    assert combine(scales, 2.0, 3.0, 4.0, 5.0) == ((0.0833 * 2.0 + 9.5 * 3.0) + 1.7 * 4.0) - 0.63 * 5.0
