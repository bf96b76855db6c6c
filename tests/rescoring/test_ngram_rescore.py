"""--ngram-lm in lattice mode: exact ARPA and neural LM scores on every hypothesis, the
interpolation formula, batch invariance, and a hand-computed total through the CLI."""
import json
import math
import random
from pathlib import Path
from typing import List

import pytest
import torch
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.data.vocab import WordVocabulary
from rescorer.errors import ConfigError
from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.batch import LatticeBatch
from rescorer.ngram.cache import load_ngram
from rescorer.rescoring.api import rescore_batch
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.config import RescoreConfig
from rescorer.rescoring.pipeline import run_rescore

from rescoring_builders import ARCS, save_model, sentence_log_prob, symbol_table, tiny_lattice, tiny_model

# "d" of the tiny lattice becomes "wasn't": the word LM reads "was n't", the ARPA one word.
# "e" is unknown to both (the LM's <unk>; the ARPA's <unk>).
WORDS = ["a", "b", "c", "wasn't", "e"]
LM_WORDS = ["<eos>", "<unk>", "a", "b", "c", "was", "n't"]
ARPA_WORDS = ["<s>", "</s>", "<unk>", "a", "b", "c", "wasn't"]
ALL_SEQUENCES = 24
LN_10 = math.log(10.0)


def random_arpa(path: Path, order: int, seed: int) -> Path:
    """An ARPA file with every unigram and a random half of the higher n-grams (with their
    prefixes, as real files have), random log10 probabilities and back-off weights."""
    rng = random.Random(seed)
    predicted = [w for w in ARPA_WORDS if w != "<s>"]
    contexts = [w for w in ARPA_WORDS if w != "</s>"]
    grams = [[(w,) for w in ARPA_WORDS]]
    for k in range(2, order + 1):
        chosen = [prefix + (w,) for prefix in grams[-1] if prefix[-1] != "</s>" for w in predicted
                  if rng.random() < 0.5 and all(x in contexts for x in prefix)]
        grams.append(chosen)
    lines = ["\\data\\"] + [f"ngram {k + 1}={len(g)}" for k, g in enumerate(grams)] + [""]
    for k, section in enumerate(grams, start=1):
        lines.append(f"\\{k}-grams:")
        for gram in section:
            prob = -99.0 if gram == ("<s>",) else round(-rng.uniform(0.1, 2.0), 4)
            fields = [f"{prob}", " ".join(gram)]
            if k < order and gram[-1] != "</s>":
                fields.append(f"{round(-rng.uniform(0.0, 0.8), 4)}")
            lines.append("\t".join(fields))
        lines.append("")
    lines.append("\\end\\")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def setup(tmp_path: Path, iterations: int, order: int, lattices=None):
    vocabulary = WordVocabulary(LM_WORDS)
    model = tiny_model(vocabulary.size, iterations=iterations)
    checkpoint = save_model(tmp_path / "model.pt", model, vocabulary)
    lattice_file = tmp_path / "lats.pt"
    write_k2(lattice_file, lattices or [tiny_lattice("utt1", words=WORDS)])
    words_file = tmp_path / "words.txt"
    symbol_table(WORDS).write(words_file)
    arpa = random_arpa(tmp_path / "lm.arpa", order, seed=order * 10 + iterations)
    return lattice_file, words_file, checkpoint, model, vocabulary, arpa


def run(tmp_path, files, name="out", **overrides):
    settings = dict(lattices=[files[0]], model=files[2], out=str(tmp_path / name), words=files[1],
                    nbest=100, ngram_lm=files[5], scales=Scales(am=1.0, ngram=0.5, lm=0.7, arpa=0.3))
    settings.update(overrides)
    report = run_rescore(RescoreConfig(**settings))
    assert not report.failures
    out = tmp_path / name
    return report, [json.loads(line) for line in (out / "nbest.jsonl").read_text().splitlines()]


def arpa_ids(ngram, words: List[str]) -> List[int]:
    return [t for word in words for t in ngram.vocabulary.encode_word(word)]


@pytest.mark.parametrize("iterations, order", [(1, 3), (4, 3), (2, 4), (3, 2)])
def test_every_hypothesis_arpa_and_nnlm_equal_direct_sentence_scores(tmp_path, iterations, order):
    files = setup(tmp_path, iterations, order)
    model, vocabulary, ngram = files[3], files[4], load_ngram(files[5])
    assert vocabulary.encode_word("wasn't") == [vocabulary.index["was"], vocabulary.index["n't"]]
    assert ngram.vocabulary.encode_word("wasn't") == [ngram.vocabulary.index["wasn't"]]
    report, hypotheses = run(tmp_path, files)
    assert len({tuple(h["words"]) for h in hypotheses}) == ALL_SEQUENCES == len(hypotheses)
    assert any("wasn't" in h["words"] for h in hypotheses)
    for h in hypotheses:
        words = h["words"]
        arpa = float(ngram.sentence_log_probs([arpa_ids(ngram, words)])[0])
        assert h["arpa"] == pytest.approx(arpa, abs=1e-9), words
        assert h["nnlm"] == pytest.approx(sentence_log_prob(model, vocabulary, words), abs=1e-4), words
        expected = h["am"] + 0.5 * h["ngram"] + 0.7 * h["nnlm"] + 0.3 * h["arpa"]
        assert h["total"] == pytest.approx(expected, abs=1e-9)
    stats = report.results["utt1"]
    assert (stats.words, stats.arpa_oov_words) == (8, 1)  # "e" is on one arc
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["oov"]["arpa_oov_words"] == 1 and summary["options"]["ngram_source"] == "lattice"


def test_arpa_source_replaces_the_lattice_ngram(tmp_path):
    files = setup(tmp_path, 2, 3)
    scales = Scales(am=1.0, ngram=9.5, lm=0.0, word_penalty=-0.6)
    _, hypotheses = run(tmp_path, files, ngram_source="arpa", scales=scales)
    totals = [h["total"] for h in hypotheses]
    assert totals == sorted(totals, reverse=True)
    for h in hypotheses:
        expected = h["am"] + 9.5 * h["arpa"] - 0.6 * len(h["words"])
        assert h["total"] == pytest.approx(expected, abs=1e-9), h["words"]


def token_log_probs(model, vocabulary, words: List[str]) -> List[float]:
    """Per word (and a last entry for </s>), the neural LM's log-prob summed over its tokens."""
    tokens = [vocabulary.encode_word(word) for word in words]
    flat = [t for ts in tokens for t in ts]
    inputs = torch.tensor([[vocabulary.bos_id] + flat])
    resets = torch.zeros_like(inputs, dtype=torch.bool)
    resets[0, 0] = True
    with torch.no_grad():
        logits, _ = model(inputs, resets)
    log_probs = torch.log_softmax(logits[0].double(), dim=-1)
    targets = flat + [vocabulary.eos_id]
    per_token = log_probs[torch.arange(len(targets)), torch.tensor(targets)].tolist()
    result, position = [], 0
    for ts in tokens + [[vocabulary.eos_id]]:
        result.append(sum(per_token[position:position + len(ts)]))
        position += len(ts)
    return result


def arpa_word_log_probs(ngram, words: List[str]) -> List[float]:
    """Per word (and </s>), ln P_arpa given the whole history, from single-word sentences' windows."""
    ids = arpa_ids(ngram, words)
    history = [ngram.vocabulary.bos_id]
    result = []
    for token in ids + [ngram.vocabulary.eos_id]:
        value = ngram.log_probs(torch.tensor([history]), torch.tensor([len(history)]),
                                torch.tensor([token]))
        result.append(float(value[0]))
        history = history + [token]
    return result


@pytest.mark.parametrize("lam, source", [(0.3, "lattice"), (0.8, "arpa"), (0.0, "lattice"), (1.0, "arpa")])
def test_interpolated_total_is_the_per_word_mixture(tmp_path, lam, source):
    files = setup(tmp_path, 2, 3)
    model, vocabulary, ngram = files[3], files[4], load_ngram(files[5])
    scales = Scales(am=1.0, ngram=0.5, lm=1.7, word_penalty=-0.2, interpolation=lam)
    _, hypotheses = run(tmp_path, files, ngram_source=source, scales=scales)
    assert len(hypotheses) == ALL_SEQUENCES
    for h in hypotheses:
        words = h["words"]
        nn, ng = token_log_probs(model, vocabulary, words), arpa_word_log_probs(ngram, words)
        mix = sum(math.log((1 - lam) * math.exp(g) + lam * math.exp(n)) for g, n in zip(ng, nn))
        lattice_ngram = 0.0 if source == "arpa" else 0.5 * h["ngram"]
        expected = h["am"] + lattice_ngram + 1.7 * mix - 0.2 * len(words)
        assert h["total"] == pytest.approx(expected, abs=1e-4), words
        assert h["arpa"] == pytest.approx(sum(ng), abs=1e-9)


def test_a_lattice_alone_equals_it_inside_a_batch(tmp_path):
    files = setup(tmp_path, 2, 3)
    model, vocabulary, ngram = files[3], files[4], load_ngram(files[5])
    symbols = symbol_table(WORDS)
    other = [(s, d, w, am * 0.7, ng - 0.1) for s, d, w, am, ng in ARCS]
    lattices = [tiny_lattice("u1", words=WORDS), tiny_lattice("u2", arcs=other, words=WORDS),
                tiny_lattice("u3", words=WORDS)]
    for scales, source in ((Scales(lm=0.6, arpa=0.4), "lattice"),
                           (Scales(lm=0.6, ngram=2.0, interpolation=0.4), "arpa")):
        together, failures = rescore_batch(LatticeBatch.from_lattices(lattices), model, vocabulary,
                                           symbols, scales=scales, nbest=30, ngram=ngram,
                                           ngram_source=source)
        assert not failures and list(together) == ["u1", "u2", "u3"]
        for lattice in lattices:
            alone, _ = rescore_batch(LatticeBatch.from_lattices([lattice]), model, vocabulary,
                                     symbols, scales=scales, nbest=30, ngram=ngram, ngram_source=source)
            assert alone[lattice.utt_id] == together[lattice.utt_id]


@pytest.mark.parametrize("overrides, message", [
    (dict(ngram_source="arpa", ngram_lm=None), "--ngram-source arpa needs --ngram-lm"),
    (dict(scales=Scales(interpolation=0.5), ngram_lm=None), "--interpolate needs --ngram-lm"),
    (dict(scales=Scales(interpolation=1.5)), "--interpolate must be in [0, 1]"),
    (dict(mode="nbest"), "--ngram-lm needs --mode lattice"),
    (dict(ngram_source="both"), "unknown --ngram-source"),
    (dict(write_lattices=True), "do not carry ARPA scores"),
])
def test_bad_ngram_options_are_one_config_error(tmp_path, overrides, message):
    settings = dict(lattices=[tmp_path / "x.pt"], model=tmp_path / "m.pt", out=str(tmp_path / "o"),
                    ngram_lm=tmp_path / "lm.arpa")
    settings.update(overrides)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        RescoreConfig(**settings)


HAND_ARPA = """\\data\\
ngram 1=4
ngram 2=3

\\1-grams:
-1.0\t</s>
-99\t<s>\t-0.5
-0.5\ta\t-0.25
-0.75\tb

\\2-grams:
-0.25\t<s> a
-0.5\ta b
-0.3\tb </s>

\\end\\
"""


def test_cli_arpa_source_total_by_hand(tmp_path):
    """0 -a(am -1)/b(am -0.5)-> 1 -b(am -1)-> 2 -final-> 3 with the bigram above:
    "a b": log10 P = -0.25 - 0.5 - 0.3; "b b": (-0.5 - 0.75) - 0.75 - 0.3 (back-offs)."""
    table = symbol_table(["a", "b"])
    lattice = tiny_lattice("u", arcs=[(0, 1, "a", -1.0, -7.0), (0, 1, "b", -0.5, -1.0),
                                      (1, 2, "b", -1.0, -2.0), (2, 3, -1, 0.0, 0.0)], words=["a", "b"])
    write_k2(tmp_path / "lat.pt", [lattice])
    table.write(tmp_path / "words.txt")
    vocabulary = WordVocabulary(["<eos>", "<unk>", "a", "b"])
    save_model(tmp_path / "model.pt", tiny_model(vocabulary.size), vocabulary)
    (tmp_path / "lm.arpa").write_text(HAND_ARPA, encoding="utf-8")
    result = CliRunner().invoke(app, [
        "rescore", str(tmp_path / "lat.pt"), "--model", str(tmp_path / "model.pt"), "--words",
        str(tmp_path / "words.txt"), "--out", str(tmp_path / "out"), "--ngram-lm",
        str(tmp_path / "lm.arpa"), "--ngram-source", "arpa", "--ngram-scale", "2", "--lm-scale", "0",
        "--word-penalty", "-0.5", "--beam", "0", "--nbest", "2", "--ngram-cache", str(tmp_path / "cache")])
    assert result.exit_code == 0, result.output
    best, second = [json.loads(line) for line in (tmp_path / "out" / "nbest.jsonl").read_text().splitlines()]
    assert best["words"] == ["a", "b"] and second["words"] == ["b", "b"]
    assert best["arpa"] == pytest.approx(-1.05 * LN_10, abs=1e-6)
    assert second["arpa"] == pytest.approx(-2.3 * LN_10, abs=1e-6)
    assert best["total"] == pytest.approx(-2.0 + 2 * (-1.05 * LN_10) - 1.0, abs=1e-6)
    assert second["total"] == pytest.approx(-1.5 + 2 * (-2.3 * LN_10) - 1.0, abs=1e-6)
    assert list((tmp_path / "cache").glob("lm.arpa.*.ngram.pt"))  # the cache was written


def test_pruned_oracle_is_of_the_rescored_lattice_when_another_one_is_retried(tmp_path):
    """utt2 (first in the batch) is over --max-arcs in the first round, utt1 fits: utt1's
    pruned-lattice oracle must be its own lattice's (0 errors), not utt2's."""
    small = tiny_lattice("utt1", arcs=[(0, 1, "a", -1.0, 0.0), (1, 2, -1, 0.0, 0.0)], words=WORDS)
    files = setup(tmp_path, 2, 3, lattices=[tiny_lattice("utt2", words=WORDS), small])
    (tmp_path / "text").write_text("utt1 a\nutt2 zzz\n", encoding="utf-8")
    report = run_rescore(RescoreConfig(lattices=[files[0]], model=files[2], out=str(tmp_path / "o"),
                                       words=files[1], refs=tmp_path / "text", max_arcs=12,
                                       beam_tries=0))
    assert list(report.results) == ["utt1"] and report.failures[0].utt_id == "utt2"
    rows = dict(report.wer_rows)
    (label,) = [name for name in rows if name.startswith("pruned lattice oracle")]
    assert (rows[label].errors, rows[label].ref_words) == (0, 1)


def test_jobs_workers_inherit_the_arpa_and_write_what_one_process_writes(tmp_path):
    other = [(s, d, w, am * 0.7, ng - 0.1) for s, d, w, am, ng in ARCS]
    files = setup(tmp_path, 2, 3, lattices=[tiny_lattice("u1", words=WORDS),
                                            tiny_lattice("u2", arcs=other, words=WORDS)])
    scales = Scales(lm=0.6, ngram=2.0, interpolation=0.4)
    run(tmp_path, files, name="one", ngram_source="arpa", scales=scales, batch_size=1)
    run(tmp_path, files, name="two", ngram_source="arpa", scales=scales, batch_size=1, jobs=2)
    one, two = ((tmp_path / name / "nbest.jsonl").read_text() for name in ("one", "two"))
    assert one == two and '"arpa"' in one and one.count("\n") == 2 * ALL_SEQUENCES


def test_shards_merge_into_the_single_run_with_ngram_options(tmp_path):
    from rescorer.rescoring.merge import merge_shards

    other = [(s, d, w, am * 0.7, ng - 0.1) for s, d, w, am, ng in ARCS]
    lattices = [tiny_lattice(f"u{i}", arcs=ARCS if i % 2 else other, words=WORDS) for i in range(6)]
    files = setup(tmp_path, 2, 3, lattices=lattices)
    scales = Scales(lm=0.6, arpa=0.5, interpolation=None)
    run(tmp_path, files, name="single", scales=scales)
    for index in (1, 2):
        run(tmp_path, files, name=f"s{index}", scales=scales, shard=(index, 2))
    merge_shards([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    single, merged = ((tmp_path / name / "nbest.jsonl").read_text() for name in ("single", "merged"))
    assert merged == single and '"arpa"' in single


def test_interpolation_mixes_an_arcs_words_and_its_end_of_sentence_apart():
    """Arc 0 carries a word, arc 1 a word and the end of sentence, arc 2 nothing."""
    from rescorer.rescoring.combine import ArcComponents

    def mix(g, n, lam):
        return math.log((1 - lam) * math.exp(g) + lam * math.exp(n))

    f32 = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    f64 = lambda *v: torch.tensor(v, dtype=torch.float64)  # noqa: E731
    parts = dict(am=f32(-1.0, -2.0, -0.5), ngram=f32(-3.0, -4.0, 0.0), nnlm=f32(-2.5, -3.5, 0.0),
                 num_words=f32(1, 1, 0), arpa=f64(-2.0, -3.0, 0.0), arpa_end=f64(0.0, -1.25, 0.0),
                 nnlm_end=f64(0.0, -0.5, 0.0))
    scales = Scales(am=1.0, ngram=0.5, lm=2.0, word_penalty=-0.25, arpa=7.0, interpolation=0.25)
    for arpa_source in (False, True):
        total = ArcComponents(**parts, arpa_source=arpa_source).total(scales).tolist()
        ngram = [0.0, 0.0, 0.0] if arpa_source else [-3.0, -4.0, 0.0]
        expected = [-1.0 + 0.5 * ngram[0] + 2.0 * mix(-2.0, -2.5, 0.25) - 0.25,
                    -2.0 + 0.5 * ngram[1] + 2.0 * (mix(-1.75, -3.0, 0.25) + mix(-1.25, -0.5, 0.25)) - 0.25,
                    -0.5]
        assert total == pytest.approx(expected, abs=1e-6)
    loglinear = ArcComponents(**parts).total(Scales(lm=2.0, arpa=7.0)).tolist()
    assert loglinear == pytest.approx([-1 - 3 - 5 - 14, -2 - 4 - 7 - 21, -0.5], abs=1e-6)
