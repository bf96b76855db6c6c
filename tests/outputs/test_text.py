"""Kaldi text and nbest.jsonl outputs."""
import json

import pytest

from rescorer.errors import InputFormatError
from rescorer.outputs.text import (
    Hypothesis,
    format_kaldi_text,
    read_transcripts,
    write_kaldi_text,
    write_nbest_jsonl,
)


def test_kaldi_text_is_sorted_and_round_trips(tmp_path):
    transcripts = {"utt-b": ["hello", "world"], "utt-a": [], "utt-c": ["x"]}
    assert format_kaldi_text(transcripts) == "utt-a\nutt-b hello world\nutt-c x\n"
    path = tmp_path / "text"
    write_kaldi_text(path, transcripts)
    assert read_transcripts(path) == transcripts


def test_read_transcripts_rejects_duplicate_ids_naming_the_line(tmp_path):
    path = tmp_path / "text"
    path.write_text("a x y\n\nb z\na w\n")
    with pytest.raises(InputFormatError) as caught:
        read_transcripts(path)
    assert str(caught.value) == f"{path}: line 4: utterance id 'a' appears twice"


def test_read_transcripts_rejects_binary(tmp_path):
    path = tmp_path / "text"
    path.write_bytes(b"a x\n\xff\xfe\n")
    with pytest.raises(InputFormatError, match="not UTF-8"):
        read_transcripts(path)


def test_read_transcripts_missing_file_names_it(tmp_path):
    with pytest.raises(InputFormatError, match="cannot read Kaldi text"):
        read_transcripts(tmp_path / "absent")


def test_nbest_jsonl_has_one_object_per_hypothesis_in_order(tmp_path):
    hypotheses = [
        Hypothesis("u2", 1, ["b"], -1.0, -2.0, -3.0, -4.5),
        Hypothesis("u1", 2, ["a", "c"], -5.0, -1.0, -2.0, -7.0),
        Hypothesis("u1", 1, ["a"], -4.0, -1.0, -1.5, -5.75),
    ]
    path = tmp_path / "nbest.jsonl"
    write_nbest_jsonl(path, hypotheses)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(row["uttid"], row["rank"]) for row in rows] == [("u1", 1), ("u1", 2), ("u2", 1)]
    assert rows[0] == {
        "uttid": "u1", "rank": 1, "words": ["a"],
        "am": -4.0, "ngram": -1.0, "nnlm": -1.5, "total": -5.75,
    }
