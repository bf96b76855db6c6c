"""`fprescore rescore --decode mbr`: consensus, confidences and CTM, end to end."""
import importlib.util
import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.data.vocab import WordVocabulary

runner = CliRunner()
_spec = importlib.util.spec_from_file_location(
    "rescoring_builders", Path(__file__).resolve().parents[1] / "rescoring" / "rescoring_builders.py")
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)

# Words on links, node i = state i. Paths (acoustic scores only: --lm-scale 0):
#   "a b" 0.4 (the Viterbi path), "c b" 0.3, "c d" 0.3.
# Bin 1: a .4, c .6 -> c; bin 2: b .7, d .3 -> b: the consensus is "c b" (0.6, 0.7).
# Times (Kaldi's convention, an arc's word spans its states' times): every arc of bin 1
# leaves node 0 (t 0) and ends at t 0.6; every arc of bin 2 goes from t 0.6 to 1.2.
SAUSAGE = """VERSION=1.0
UTTERANCE=u1
N=6 L=7
I=0 t=0.00
I=1 t=0.60
I=2 t=0.60
I=3 t=0.60
I=4 t=1.20
I=5 t=1.20
J=0 S=0 E=1 W=a a={a}
J=1 S=0 E=2 W=c a={c}
J=2 S=0 E=3 W=c a={c}
J=3 S=1 E=4 W=b a=0.0
J=4 S=2 E=4 W=b a=0.0
J=5 S=3 E=4 W=d a=0.0
J=6 S=4 E=5 W=!NULL a=0.0
"""


@pytest.fixture()
def files(tmp_path):
    vocabulary = WordVocabulary(builders.LM_WORDS)
    model = builders.tiny_model(vocabulary.size, iterations=2)
    checkpoint = builders.save_model(tmp_path / "model.pt", model, vocabulary)
    return {"model": checkpoint, "tmp": tmp_path}


def _write(files, name, text):
    path = files["tmp"] / name
    path.write_text(text)
    return path


def rescore(files, lattices, *extra):
    out = files["tmp"] / "out"
    args = ["rescore", *map(str, lattices), "--model", str(files["model"]), "--out", str(out),
            "--lm-scale", "0", "--beam", "0", *extra]
    return runner.invoke(app, args), out


def _rows(out):
    return [json.loads(line) for line in (out / "nbest.jsonl").read_text().splitlines()]


def test_mbr_writes_the_hand_computed_consensus_confidences_and_ctm(files):
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=math.log(0.4), c=math.log(0.3)))
    result, out = rescore(files, [lattice], "--nbest", "2")
    assert result.exit_code == 0, result.output
    assert (out / "onebest.txt").read_text() == "u1 a b\n"  # Viterbi
    assert not (out / "onebest.ctm").exists()
    result, out = rescore(files, [lattice], "--nbest", "2", "--decode", "mbr")
    assert result.exit_code == 0, result.output
    assert (out / "onebest.txt").read_text() == "u1 c b\n"
    rows = _rows(out)
    assert [(row["rank"], row["words"]) for row in rows] == [(0, ["c", "b"]), (1, ["a", "b"]), (2, ["c", "b"])]
    consensus = rows[0]
    assert consensus["decode"] == "mbr" and consensus["mbr_scale"] == 1.0
    assert consensus["confidences"] == pytest.approx([0.6, 0.7], abs=1e-6)  # float32 arc scores
    assert [value for span in consensus["times"] for value in span] == pytest.approx(
        [0.0, 0.6, 0.6, 1.2], abs=1e-9)
    # Bayes risk: Lev to "a b" is 1 (p .4), to "c d" 1 (p .3): 0.7.
    assert consensus["bayes_risk"] == pytest.approx(0.7, abs=1e-5)
    assert (out / "onebest.ctm").read_text() == "u1 1 0.000 0.600 c 0.6000\nu1 1 0.600 0.600 b 0.7000\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["options"]["decode"] == "mbr"
    shown = runner.invoke(app, ["show", str(out / "nbest.jsonl")])  # skips the consensus line
    assert shown.exit_code == 0 and "a b" in shown.stdout, shown.output


def test_mbr_scale_flattens_the_posteriors(files):
    # Scale 0.5: P ~ sqrt(p): a .632, c .775 (twice .387), so bin 1 keeps c with
    # .775/(.632+.775), bin 2 b with (.632+.387)/(.632+.775).
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=math.log(0.4), c=math.log(0.3)))
    result, out = rescore(files, [lattice], "--decode", "mbr", "--mbr-scale", "0.5")
    assert result.exit_code == 0, result.output
    a, c = math.sqrt(0.4), math.sqrt(0.3)
    assert _rows(out)[0]["confidences"] == pytest.approx([2 * c / (a + 2 * c), (a + c) / (a + 2 * c)],
                                                         abs=1e-6)


def test_a_dominant_path_gives_the_viterbi_words(files):
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=0.0, c=-60.0))
    result, out = rescore(files, [lattice], "--decode", "mbr")
    assert result.exit_code == 0, result.output
    assert (out / "onebest.txt").read_text() == "u1 a b\n"
    assert _rows(out)[0]["confidences"] == pytest.approx([1.0, 1.0])


def test_slf_without_times_writes_no_ctm(files):
    untimed = re.sub(r" t=[0-9.]+", "", SAUSAGE)
    lattice = _write(files, "u1.slf", untimed.format(a=math.log(0.4), c=math.log(0.3)))
    result, out = rescore(files, [lattice], "--decode", "mbr")
    assert result.exit_code == 0, result.output
    assert (out / "onebest.txt").read_text() == "u1 c b\n"
    assert _rows(out)[0]["times"] is None
    assert not (out / "onebest.ctm").exists()


def test_nbest_mode_decodes_the_list_as_a_lattice(files):
    # The 3-best list holds every path of the lattice, so MBR over it is the lattice's.
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=math.log(0.4), c=math.log(0.3)))
    result, out = rescore(files, [lattice], "--mode", "nbest", "--nbest", "3", "--decode", "mbr")
    assert result.exit_code == 0, result.output
    assert (out / "onebest.txt").read_text() == "u1 c b\n"
    consensus = _rows(out)[0]
    assert consensus["confidences"] == pytest.approx([0.6, 0.7], abs=1e-6)
    assert consensus["times"] is None


def test_grid_picks_the_scale_by_viterbi_and_decodes_mbr_there(files):
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=math.log(0.4), c=math.log(0.35)))
    refs = _write(files, "text", "u1 c d\n")
    grid, out = rescore(files, [lattice], "--refs", str(refs), "--grid", "0,2,4", "--decode", "mbr")
    assert grid.exit_code == 0, grid.output
    summary = json.loads((out / "summary.json").read_text())
    best = summary["best_lm_scale"]
    rescored = [row for row in summary["wer"] if row["system"].startswith("rescored")]
    assert rescored[0]["system"] == f"rescored (lattice, mbr scale 1, lm_scale={best:g})"
    onebest, rows = (out / "onebest.txt").read_text(), _rows(out)
    viterbi, out = rescore(files, [lattice], "--refs", str(refs), "--grid", "0,2,4")
    assert json.loads((out / "summary.json").read_text())["best_lm_scale"] == best
    single, out = rescore(files, [lattice], "--lm-scale", str(best), "--decode", "mbr")
    assert (out / "onebest.txt").read_text() == onebest and _rows(out) == rows


def test_bad_mbr_options_are_refused_before_any_work(files):
    lattice = _write(files, "u1.slf", SAUSAGE.format(a=0.0, c=0.0))
    for extra, message in ((["--mbr-scale", "0"], "--mbr-scale must be finite and > 0"),
                           (["--frame-shift", "nan"], "--frame-shift must be finite"),
                           ([], "unknown --decode")):
        decode = ["--decode", "mbr"] if extra else ["--decode", "consensus"]
        result, out = rescore(files, [lattice], *decode, *extra)
        assert result.exit_code == 1 and message in result.stderr, result.output
        assert not out.exists()


ASR_DEV = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "asr-dev" / "lat"


@pytest.mark.skipif(not ASR_DEV.is_dir(), reason="shared data not available")
def test_mbr_outputs_do_not_depend_on_the_batch(tmp_path):
    model = Path(__file__).resolve().parents[2] / "lattices" / "demo-lm.pt"
    lattices = [str(path) for path in sorted(ASR_DEV.glob("*.slf.gz"))[:4]]
    outputs = []
    for name, extra in (("one", ["--batch-size", "1"]), ("four", ["--batch-size", "4"]),
                        ("jobs", ["--jobs", "2"])):
        out = tmp_path / name
        result = runner.invoke(app, ["rescore", *lattices, "--model", str(model), "--out", str(out),
                                     "--decode", "mbr", "--mbr-scale", "0.105", *extra])
        assert result.exit_code == 0, result.output
        outputs.append(((out / "onebest.txt").read_text(), (out / "nbest.jsonl").read_text()))
    assert outputs[0] == outputs[1] == outputs[2]
    assert len([row for row in outputs[0][1].splitlines() if '"decode": "mbr"' in row]) == 4


def test_k2_ctm_needs_frame_synchronous_lattices_and_names_the_others(files):
    # "sync" drops the tiny lattice's 2 -> 4 shortcut, so every path to a state has the same
    # number of arcs (one frame each); "ragged" keeps it: no CTM lines, one warning.
    from rescorer.formats.k2_pt import write_k2

    synchronous = builders.tiny_lattice("sync", arcs=[arc for arc in builders.ARCS if arc[:2] != (2, 4)])
    lattices, words = files["tmp"] / "lats.pt", files["tmp"] / "words.txt"
    write_k2(lattices, [synchronous, builders.tiny_lattice("ragged")])
    builders.symbol_table().write(words)
    result, out = rescore(files, [lattices], "--words", str(words), "--decode", "mbr", "--frame-shift", "0.04")
    assert result.exit_code == 0, result.output
    assert "onebest.ctm has no lines for 1 utterance(s) (ragged): not frame-synchronous" in result.stderr
    rows = [line.split() for line in (out / "onebest.ctm").read_text().splitlines()]
    # am + ngram per bin: a -1.5 / b -1.7; c -1.5, d -2.1, e -2.8, eps -3.0; a -1.4 / b -1.8.
    e = math.exp
    expected = [("a", 0.0, 1 / (1 + e(-0.2))), ("c", 0.04, e(-1.5) / (e(-1.5) + e(-2.1) + e(-2.8) + e(-3.0))),
                ("a", 0.08, 1 / (1 + e(-0.4)))]
    assert [(row[0], row[1], row[4]) for row in rows] == [("sync", "1", word) for word, _, _ in expected]
    for row, (_, start, confidence) in zip(rows, expected):
        assert float(row[2]) == pytest.approx(start) and float(row[3]) == pytest.approx(0.04)
        assert float(row[5]) == pytest.approx(confidence, abs=1e-4)


@pytest.mark.parametrize("grid", [[], ["--grid", "0,2"]])
def test_mbr_shards_merge_into_the_single_run_byte_for_byte(files, grid):
    lattices = [_write(files, f"u{index}.slf", SAUSAGE.replace("UTTERANCE=u1", f"UTTERANCE=u{index}")
                       .format(a=math.log(0.1 * index), c=math.log(0.5 - 0.05 * index)))
                for index in range(1, 6)]
    refs = _write(files, "text", "".join(f"u{index} c b\n" for index in range(1, 6)))
    extra = ["--refs", str(refs), "--decode", "mbr", "--lm-scale", "1", *grid]
    shards = []
    for index in (1, 2):
        result, out = rescore(files, lattices, *extra, "--shard", f"{index}/2")
        assert result.exit_code == 0, result.output
        shards.append(out.rename(files["tmp"] / f"shard{index}"))
    assert all(len((shard / "onebest.txt").read_text().splitlines()) for shard in shards)  # both non-empty
    merged = runner.invoke(app, ["merge", *map(str, shards), "--out", str(files["tmp"] / "merged")])
    assert merged.exit_code == 0, merged.output
    result, out = rescore(files, lattices, *extra)
    assert result.exit_code == 0, result.output
    for name in ("onebest.txt", "nbest.jsonl", "onebest.ctm"):
        assert (files["tmp"] / "merged" / name).read_bytes() == (out / name).read_bytes(), name
    assert len((out / "onebest.ctm").read_text().splitlines()) >= 5
