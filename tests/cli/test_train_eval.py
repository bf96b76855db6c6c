"""`fprescore train` and `fprescore eval` end to end through typer's CliRunner."""
import json
import math
import random

import pytest
import torch
from typer.testing import CliRunner

from rescorer.cli.app import app

runner = CliRunner()
WORDS = "the cat dog sat on a mat and ran far".split()


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture()
def texts(tmp_path):
    rng = random.Random(0)
    for name, count in (("train.txt", 200), ("valid.txt", 30)):
        lines = (" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) for _ in range(count))
        (tmp_path / name).write_text("\n".join(lines) + "\n")
    (tmp_path / "eval.txt").write_text("the cat sat on a zebra\nthe dog ran\n")  # 1 OOV of 9 words
    return tmp_path


def train_args(folder, out="run"):
    return ["train", "--train", str(folder / "train.txt"), "--valid", str(folder / "valid.txt"), "--out",
            str(folder / out), "--embed", "8", "--hidden", "8", "--batch-size", "4", "--bptt", "10", "--epochs", "2",
            "--device", "cpu", "-K", "3"]


def test_train_then_eval_json(texts):
    result = runner.invoke(app, train_args(texts))
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "best epoch" in result.output
    evaluated = runner.invoke(app, ["eval", "--model", str(texts / "run" / "model.pt"), "--text", str(texts / "eval.txt"), "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    report = json.loads(evaluated.stdout)  # exactly one JSON object on stdout
    assert set(report) == {"ppl", "tokens", "oov_rate"}
    assert report["tokens"] == 9 + 2  # words + one <eos> per sentence
    assert report["oov_rate"] == pytest.approx(1 / 9)
    assert 1.0 < report["ppl"] < 20.0 and math.isfinite(report["ppl"])
    table = runner.invoke(app, ["eval", "--model", str(texts / "run" / "model.pt"), "--text", str(texts / "eval.txt")])
    assert table.exit_code == 0 and "11.11%" in table.output


def test_corrupt_model_is_exit_1_without_traceback(texts):
    assert runner.invoke(app, train_args(texts)).exit_code == 0
    model = texts / "run" / "model.pt"
    model.write_bytes(model.read_bytes()[:100])
    result = runner.invoke(app, ["eval", "--model", str(model), "--text", str(texts / "eval.txt"), "--json"])
    assert result.exit_code == 1
    joined = result.output.replace("\n", "")  # rich wraps long lines at spaces
    assert f"{model}: cannot read checkpoint" in joined
    assert "Traceback" not in result.output


def test_bad_option_combinations_are_user_errors(texts):
    result = runner.invoke(app, ["train", "--out", str(texts / "x"), "--train", str(texts / "train.txt")])
    assert result.exit_code == 1 and "--train and --valid" in result.output
    result = runner.invoke(app, train_args(texts) + ["--solver", "newton"])
    assert result.exit_code == 1 and "unknown solver" in result.output
    result = runner.invoke(app, ["train", "--out", str(texts / "x"), "--corpus", "ptb", "--data-dir", str(texts)])
    assert result.exit_code == 1 and "ptb.train.txt" in result.output
    missing = runner.invoke(app, ["eval", "--model", str(texts / "none.pt"), "--text", str(texts / "eval.txt")])
    assert missing.exit_code == 2  # click's path check


def test_resume_continues_from_last(texts):
    assert runner.invoke(app, train_args(texts)).exit_code == 0
    args = train_args(texts)
    args[args.index("--epochs") + 1] = "3"
    result = runner.invoke(app, args + ["--resume"])
    assert result.exit_code == 0, result.output
    assert "resumed after epoch 2" in result.output
    epochs = [json.loads(line).get("epoch") for line in (texts / "run" / "log.jsonl").read_text().splitlines()]
    assert epochs == [1, 2, 3, None]


def test_corpus_mode_reads_ptb_file_names(texts):
    data = texts / "ptb"
    data.mkdir()
    for split, source in (("train", "train.txt"), ("valid", "valid.txt"), ("test", "valid.txt")):
        (data / f"ptb.{split}.txt").write_text((texts / source).read_text())
    args = train_args(texts, out="corpus-run")
    args = args[:1] + ["--corpus", "ptb", "--data-dir", str(data)] + args[5:]  # drop --train/--valid
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    final = json.loads((texts / "corpus-run" / "log.jsonl").read_text().splitlines()[-1])
    assert final["test_ppl"] == pytest.approx(final["valid_ppl"])  # test file == valid file here


def test_large_corpus_options_end_to_end(texts):
    """A glob of training files, --vocab-size, a shared --cache-dir, mid-epoch checkpoints; eval reuses a cache."""
    lines = (texts / "train.txt").read_text().splitlines(keepends=True)
    for part in range(2):
        (texts / f"shard-{part}.txt").write_text("".join(lines[part::2]))
    cache = texts / "shared-cache"
    args = train_args(texts) + ["--vocab-size", "8", "--cache-dir", str(cache), "--save-every-steps", "3",
                                "--valid-max-tokens", "50"]
    args[args.index(str(texts / "train.txt"))] = str(texts / "shard-*.txt")
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "vocabulary 8" in result.output and "OOV" in result.output
    assert not (texts / "run" / "cache").exists()
    entries = {path.name for path in cache.iterdir()}
    assert len(entries) == 3  # train and valid entries, and the chosen vocabulary
    model = str(texts / "run" / "model.pt")
    for _ in range(2):
        evaluated = runner.invoke(app, ["eval", "--model", model, "--text", str(texts / "eval.txt"), "--json",
                                        "--cache-dir", str(cache)])
        assert evaluated.exit_code == 0, evaluated.output
    assert len({path.name for path in cache.iterdir()}) == 4  # one new entry, reused the second time
    report = json.loads(evaluated.stdout)
    assert report["tokens"] == 11 and report["oov_rate"] > 1 / 9  # the 8-token vocabulary misses more words
    bounded = runner.invoke(app, ["eval", "--model", model, "--text", str(texts / "eval.txt"), "--json",
                                  "--max-tokens", "7"])
    assert json.loads(bounded.stdout)["tokens"] == 7  # "the cat sat on a zebra <eos>"


def test_missing_training_file_is_one_line(texts):
    args = train_args(texts)
    args[args.index(str(texts / "train.txt"))] = str(texts / "absent-*.txt")
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert "absent-*.txt: no such file, and no file matches it as a glob" in result.output.replace("\n", "")
    assert "Traceback" not in result.output
