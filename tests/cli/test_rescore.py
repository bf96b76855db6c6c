"""`fprescore rescore` through typer's CliRunner: stdout discipline, exit codes, bad input."""
import importlib.util
import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.data.vocab import WordVocabulary
from rescorer.formats.k2_pt import write_k2
from rescorer.lattice.fsavec import Lattice

runner = CliRunner()
_spec = importlib.util.spec_from_file_location(
    "rescoring_builders", Path(__file__).resolve().parents[1] / "rescoring" / "rescoring_builders.py")
builders = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(builders)


def plain_lattice(utt_id, src, dst, labels, num_states):
    """One word per arc = its label (> 0); scores -1 per arc."""
    labels = torch.tensor(labels)
    words = labels[labels > 0]
    counts = (labels > 0).to(torch.int64)
    return Lattice(
        utt_id=utt_id, num_states=num_states, src=torch.tensor(src), dst=torch.tensor(dst),
        labels=labels, word_splits=torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)]),
        word_ids=words, am_scores=-torch.ones(len(src)), ngram_scores=torch.zeros(len(src)),
    )


@pytest.fixture()
def files(tmp_path):
    vocabulary = WordVocabulary(builders.LM_WORDS)
    model = builders.tiny_model(vocabulary.size, iterations=2)
    checkpoint = builders.save_model(tmp_path / "model.pt", model, vocabulary)
    words = tmp_path / "words.txt"
    builders.symbol_table().write(words)
    good = tmp_path / "good.pt"
    write_k2(good, [builders.tiny_lattice("utt1"), builders.tiny_lattice("utt2")])
    return {"model": checkpoint, "words": words, "good": good, "tmp": tmp_path}


def rescore(files, *extra, lattices=None, out=None):
    lattices = [str(files["good"])] if lattices is None else [str(p) for p in lattices]
    out = str(files["tmp"] / "out") if out is None else out
    args = ["rescore", *lattices, "--model", str(files["model"]), "--words", str(files["words"]),
            "--out", out, *extra]
    return runner.invoke(app, args)


def test_out_dash_prints_only_onebest_lines(files):
    result = rescore(files, "--am-scale", "1", "--ngram-scale", "1", "--lm-scale", "0", out="-")
    assert result.exit_code == 0, result.output
    assert result.stdout == "utt1 a c a\nutt2 a c a\n"
    assert "Rescoring summary" in result.stderr
    assert not (files["tmp"] / "-").exists()


def test_folder_run_writes_onebest_and_nbest(files):
    folder = files["tmp"] / "lats"
    folder.mkdir()
    write_k2(folder / "a.pt", [builders.tiny_lattice("utt1")])
    write_k2(folder / "b.pt", [builders.tiny_lattice("utt2")])
    result = rescore(files, "--nbest", "3", lattices=[folder])
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    out = files["tmp"] / "out"
    assert [line.split()[0] for line in (out / "onebest.txt").read_text().splitlines()] == ["utt1", "utt2"]
    rows = [json.loads(line) for line in (out / "nbest.jsonl").read_text().splitlines()]
    assert [(row["uttid"], row["rank"]) for row in rows] == [
        ("utt1", 1), ("utt1", 2), ("utt1", 3), ("utt2", 1), ("utt2", 2), ("utt2", 3)]


def test_bad_utterances_are_skipped_named_and_exit_3(files):
    tmp = files["tmp"]
    mixed = tmp / "mixed.pt"
    write_k2(mixed, [
        builders.tiny_lattice("good1"),
        plain_lattice("cyclic", [0, 1, 2, 2], [1, 2, 1, 3], [1, 2, 3, -1], 4),
        plain_lattice("nopath", [0, 2], [1, 3], [1, -1], 4),
        plain_lattice("badword", [0, 1], [1, 2], [9, -1], 3),
    ])
    truncated = tmp / "truncated.pt"
    data = files["good"].read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    result = rescore(files, lattices=[mixed, truncated])
    assert result.exit_code == 3, result.output
    stderr = result.stderr
    assert f"{mixed}: utterance cyclic: " in stderr and "cycle" in stderr
    assert f"{mixed}: utterance nopath: no path from the start state" in stderr
    assert f"{mixed}: utterance badword: " in stderr and "9" in stderr
    assert f"{truncated}: " in stderr
    assert "Failed utterances (4)" in stderr
    assert (tmp / "out" / "onebest.txt").read_text().split("\n")[0].split()[0] == "good1"
    assert len((tmp / "out" / "onebest.txt").read_text().splitlines()) == 1


def test_all_failed_exits_1_with_only_the_summary(files):
    empty = files["tmp"] / "empty.pt"
    write_k2(empty, [plain_lattice("lonely", [0, 2], [1, 3], [1, -1], 4)])
    result = rescore(files, lattices=[empty])
    assert result.exit_code == 1
    assert "utterance lonely" in result.stderr
    # summary.json lists the failure for scripts; no 1-best or n-best is written.
    assert sorted(p.name for p in (files["tmp"] / "out").iterdir()) == ["summary.json"]
    summary = json.loads((files["tmp"] / "out" / "summary.json").read_text())
    assert summary["counts"] == {"lattices": 1, "rescored": 0, "failed": 1, "failed_files": 0}
    assert [(f["file"], f["utt"]) for f in summary["failures"]] == [(str(empty), "lonely")]


@pytest.mark.parametrize("jobs", ["1", "2"])  # 2: the failure comes from a worker's unit
def test_strict_stops_at_first_failure_without_outputs(files, jobs):
    mixed = files["tmp"] / "mixed.pt"
    write_k2(mixed, [builders.tiny_lattice("good1"),
                     plain_lattice("cyclic", [0, 1, 2, 2], [1, 2, 1, 3], [1, 2, 3, -1], 4)])
    result = rescore(files, "--strict", "--jobs", jobs, "--batch-size", "1", lattices=[mixed])
    assert result.exit_code == 1
    assert f"error: {mixed}: utterance cyclic:" in " ".join(result.stderr.split())
    assert not (files["tmp"] / "out").exists()


def test_k2_input_without_words_fails_clearly(files):
    result = runner.invoke(app, ["rescore", str(files["good"]), "--model", str(files["model"]),
                                 "--out", str(files["tmp"] / "out")])
    assert result.exit_code == 1
    assert "--words words.txt is required" in result.stderr


def test_bad_model_file_is_a_global_error(files):
    broken = files["tmp"] / "broken.pt"
    broken.write_bytes(b"not a checkpoint")
    result = runner.invoke(app, ["rescore", str(files["good"]), "--model", str(broken),
                                 "--words", str(files["words"]), "--out", str(files["tmp"] / "out")])
    assert result.exit_code == 1
    assert str(broken) in " ".join(result.stderr.split())
    assert not (files["tmp"] / "out").exists()


def test_bad_options_exit_1_with_a_message(files):
    result = rescore(files, "--grid", "0:1:0.5")
    assert result.exit_code == 1
    assert "--grid needs references" in result.stderr
    result = rescore(files, "--mode", "sideways")
    assert result.exit_code == 1 and "unknown --mode" in result.stderr
    for option in ("--lm-scale", "--am-scale", "--ngram-scale", "--word-penalty", "--oov-penalty"):
        for value in ("nan", "inf"):  # NaN totals made nbest.jsonl invalid JSON with exit 0
            result = rescore(files, option, value)
            assert result.exit_code == 1 and f"{option} must be finite" in result.stderr, (option, value)
    refs = files["tmp"] / "refs"
    refs.write_text("utt1 a\nutt2 a\n")
    for grid in ("0:inf:1", "nan", "0.5,inf"):  # an OverflowError traceback, or NaN in summary.json
        result = rescore(files, "--grid", grid, "--refs", str(refs))
        assert result.exit_code == 1 and "--grid" in result.stderr and "finite" in result.stderr, grid


def one_line(stderr):
    return " ".join(stderr.split())


def test_out_naming_an_existing_file_is_rejected_before_any_work(files):
    taken = files["tmp"] / "taken.txt"
    taken.write_text("keep me\n")
    missing_model = files["tmp"] / "no-such-model.pt"  # loading it would fail: the --out check comes first
    result = runner.invoke(app, ["rescore", str(files["good"]), "--model", str(missing_model),
                                 "--words", str(files["words"]), "--out", str(taken)])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert one_line(result.stderr) == (f"error: {taken}: --out names an existing file (expected a "
                                       f"folder, or '-' for stdout)")
    assert taken.read_text() == "keep me\n"


def test_no_lattices_at_all_exits_1_with_one_line(files):
    empty_file = files["tmp"] / "none.pt"
    write_k2(empty_file, [])
    result = rescore(files, lattices=[empty_file])
    assert result.exit_code == 1
    assert one_line(result.stderr) == f"error: {empty_file}: no lattices in the inputs (expected at least one lattice)"
    assert not (files["tmp"] / "out").exists()
    empty_folder = files["tmp"] / "nothing"
    empty_folder.mkdir()
    result = rescore(files, lattices=[empty_folder])
    assert result.exit_code == 1 and "no lattice files found" in result.stderr


def _uppercase_files(files):
    upper = [word.upper() for word in builders.WORDS]
    words = files["tmp"] / "WORDS.txt"
    builders.symbol_table(upper).write(words)
    lattices = files["tmp"] / "upper.pt"
    write_k2(lattices, [builders.tiny_lattice("utt1", words=upper)])
    return lattices, words


def test_uppercase_lattice_warns_about_oov_and_lowercase_folds_it(files):
    lattices, words = _uppercase_files(files)
    args = ["rescore", str(lattices), "--model", str(files["model"]), "--words", str(words)]
    result = runner.invoke(app, [*args, "--out", str(files["tmp"] / "upper")])
    assert result.exit_code == 0
    assert "warning: 100.0% of the lattices' words are out of the LM's vocabulary (over 20%)" in \
        one_line(result.stderr) and "--lowercase" in result.stderr
    summary = json.loads((files["tmp"] / "upper" / "summary.json").read_text())
    assert summary["oov"] == {"words": 8, "oov_words": 8, "rate": 1.0, "warn_above": 0.2}
    assert summary["utterances"][0]["oov_rate"] == 1.0 and len(summary["warnings"]) == 1

    folded = runner.invoke(app, [*args, "--lowercase", "--out", str(files["tmp"] / "folded")])
    assert folded.exit_code == 0 and "warning" not in folded.stderr
    summary = json.loads((files["tmp"] / "folded" / "summary.json").read_text())
    assert summary["oov"]["oov_words"] == 1 and summary["oov"]["rate"] == 1 / 8  # only "E"
    assert summary["options"]["lowercase"] is True
    lower = rescore(files, out=str(files["tmp"] / "lower"), lattices=[files["good"]])
    assert lower.exit_code == 0
    folded_nbest = [json.loads(line) for line in (files["tmp"] / "folded" / "nbest.jsonl").open()]
    lower_nbest = [json.loads(line) for line in (files["tmp"] / "lower" / "nbest.jsonl").open()
                   if line.startswith('{"uttid": "utt1"')]
    assert [h["nnlm"] for h in folded_nbest] == [h["nnlm"] for h in lower_nbest]
    assert [h["words"] for h in folded_nbest] == [[w.upper() for w in h["words"]] for h in lower_nbest]


def test_summary_json_holds_counts_sizes_stages_and_utterances(files):
    result = rescore(files)
    assert result.exit_code == 0
    summary = json.loads((files["tmp"] / "out" / "summary.json").read_text())
    assert list(summary) == ["format", "version", "options", "counts", "sizes", "oov", "wer", "grid",
                             "best_point", "best_lm_scale", "failures", "warnings", "utterances", "run"]
    assert summary["counts"] == {"lattices": 2, "rescored": 2, "failed": 0, "failed_files": 0}
    assert summary["sizes"]["arcs"] == 2 * len(builders.ARCS)
    assert summary["sizes"]["expansion_factor"] == summary["sizes"]["expanded_arcs"] / summary["sizes"]["pruned_arcs"]
    assert [u["utt"] for u in summary["utterances"]] == ["utt1", "utt2"]
    assert summary["oov"] == {"words": 16, "oov_words": 2, "rate": 0.125, "warn_above": 0.2}
    seconds = summary["run"]["seconds"]
    assert list(seconds) == ["read", "prune", "expand", "score", "search", "write", "total"]
    assert all(seconds[name] > 0 for name in ("read", "expand", "score", "search", "write", "total"))
    assert summary["run"]["shard"] is None and summary["run"]["files"] == 1


def test_merge_of_a_folder_that_is_not_a_shard_exits_1(files):
    assert rescore(files).exit_code == 0
    result = runner.invoke(app, ["merge", str(files["tmp"] / "out"), "--out", str(files["tmp"] / "m")])
    assert result.exit_code == 1
    assert one_line(result.stderr) == (f"error: {files['tmp'] / 'out'}: not a shard output (run "
                                       f"`fprescore rescore --shard I/N`)")


def test_cli_shards_and_merge(files):
    outs = []
    for index in (1, 2):
        outs.append(str(files["tmp"] / f"s{index}"))
        assert rescore(files, "--shard", f"{index}/2", out=outs[-1]).exit_code == 0
    result = runner.invoke(app, ["merge", *outs, "--out", str(files["tmp"] / "m")])
    assert result.exit_code == 0, result.output
    assert rescore(files).exit_code == 0
    for name in ("onebest.txt", "nbest.jsonl"):
        assert (files["tmp"] / "m" / name).read_bytes() == (files["tmp"] / "out" / name).read_bytes()
    assert rescore(files, "--shard", "3/2").exit_code == 1


def test_repeated_grid_options_sweep_their_product_and_print_the_matrix(files):
    refs = files["tmp"] / "refs"
    refs.write_text("utt1 a c a\nutt2 a c\n")
    result = rescore(files, "--refs", str(refs), "--grid", "lm=0,2", "--grid", "wp=-1:1:1")
    assert result.exit_code == 0, result.output
    summary = json.loads((files["tmp"] / "out" / "summary.json").read_text())
    assert [tuple(row["point"].values()) for row in summary["grid"]] == [
        (0.0, -1.0), (0.0, 0.0), (0.0, 1.0), (2.0, -1.0), (2.0, 0.0), (2.0, 1.0)]
    best = summary["best_point"]
    text = one_line(result.stderr)
    assert "Grid sweep (--grid, 6 points)" in text
    assert f"best: lm-scale={best['lm-scale']:g} word-penalty={best['word-penalty']:g}, WER" in text
    assert "lm-scale \\ word-penalty" in text  # the 2-D matrix: rows lm-scale, columns word-penalty
    result = rescore(files, "--refs", str(refs), "--grid", "0:1:0.5")  # bare: the LM scale
    assert result.exit_code == 0, result.output
    summary = json.loads((files["tmp"] / "out" / "summary.json").read_text())
    assert summary["options"]["grid"] == {"lm-scale": [0.0, 0.5, 1.0]}


def test_bad_grid_names_and_sizes_exit_1_with_one_line(files):
    refs = files["tmp"] / "refs"
    refs.write_text("utt1 a\nutt2 a\n")
    cases = {("--grid", "temperature=1,2"): "unknown parameter 'temperature'",
             ("--grid", "lm=0:1:1", "--grid", "0,1"): "lm-scale is swept twice",
             ("--grid", "lm=0:200:1", "--grid", "wp=0:100:1"): "--grid has 20,301 points (at most 10,000)"}
    for args, message in cases.items():
        result = rescore(files, "--refs", str(refs), *args)
        assert result.exit_code == 1 and message in one_line(result.stderr), args
        assert "Traceback" not in result.output and not (files["tmp"] / "out").exists()
