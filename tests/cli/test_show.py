"""``fprescore show`` renders nbest.jsonl and rejects bad records with file and line."""
import json

from typer.testing import CliRunner

from rescorer.cli.app import app

runner = CliRunner()


def _record(uttid, rank, words, total):
    return {"uttid": uttid, "rank": rank, "words": words, "am": -10.0, "ngram": -2.5, "nnlm": -3.25, "total": total}


def test_show_prints_hypotheses_in_rank_order(tmp_path):
    nbest = tmp_path / "nbest.jsonl"
    records = [_record("u2", 1, ["x"], -1.0), _record("u1", 2, ["b", "c"], -9.0), _record("u1", 1, ["a"], -4.0)]
    nbest.write_text("".join(json.dumps(record) + "\n" for record in records))
    refs = tmp_path / "text"
    refs.write_text("u1 a\nu2 y\n")
    result = runner.invoke(app, ["show", str(nbest), "--utts", "1", "--refs", str(refs)])
    assert result.exit_code == 0, result.output
    assert "ref: a" in result.output
    assert result.output.index("-4.00") < result.output.index("-9.00")
    assert "u2" not in result.output


def test_show_names_file_and_line_of_a_bad_record(tmp_path):
    nbest = tmp_path / "nbest.jsonl"
    nbest.write_text(json.dumps(_record("u1", 1, ["a"], -1.0)) + "\n{\"uttid\": \"u1\"}\n")
    result = runner.invoke(app, ["show", str(nbest)])
    assert result.exit_code == 1
    assert "nbest.jsonl: line 2: not an n-best record" in result.output


def test_show_unknown_utterance_is_an_error(tmp_path):
    nbest = tmp_path / "nbest.jsonl"
    nbest.write_text(json.dumps(_record("u1", 1, ["a"], -1.0)) + "\n")
    result = runner.invoke(app, ["show", str(nbest), "--uttid", "zz"])
    assert result.exit_code == 1
    assert "zz" in result.output
