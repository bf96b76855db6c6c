"""WER computation and reference loading."""
import pytest

from rescorer.errors import ConfigError, InputFormatError
from rescorer.outputs.wer import compute_wer, load_references


def test_wer_counts_each_error_kind():
    references = {"u1": "a b c d".split(), "u2": "x y".split(), "u3": "never decoded".split()}
    hypotheses = {"u1": "a c d e".split(), "u2": "x z".split(), "extra": ["q"]}
    stats = compute_wer(references, hypotheses)
    # u1: delete b, insert e; u2: substitute y -> z.
    assert (stats.insertions, stats.deletions, stats.substitutions) == (1, 1, 1)
    assert stats.errors == 3
    assert stats.ref_words == 6
    assert stats.utterances == 2
    assert stats.missing == 1
    assert stats.wer == pytest.approx(50.0)
    assert stats.describe() == "50.00% (3/6)"


def test_wer_is_case_sensitive_unless_asked():
    references = {"u": ["Hello", "World"]}
    hypotheses = {"u": ["hello", "WORLD"]}
    assert compute_wer(references, hypotheses).errors == 2
    assert compute_wer(references, hypotheses, ignore_case=True).errors == 0


def test_references_from_lhotse_cuts_join_supervisions(tmp_path):
    from lhotse import CutSet, MonoCut, SupervisionSegment

    cuts = CutSet.from_cuts(
        [
            MonoCut(
                id="cut1", start=0.0, duration=2.0, channel=0,
                supervisions=[
                    SupervisionSegment("s1", "rec1", 0.0, 1.0, text="hello there"),
                    SupervisionSegment("s2", "rec1", 1.0, 1.0, text="world"),
                ],
            ),
            MonoCut(
                id="cut2", start=0.0, duration=1.0, channel=0,
                supervisions=[SupervisionSegment("s3", "rec2", 0.0, 1.0, text="bye")],
            ),
        ]
    )
    path = tmp_path / "cuts.jsonl.gz"
    cuts.to_file(path)
    assert load_references(cuts=path) == {"cut1": ["hello", "there", "world"], "cut2": ["bye"]}


def test_references_from_broken_cuts_name_the_file(tmp_path):
    path = tmp_path / "cuts.jsonl"
    path.write_text('{"id": "cut1", "truncated\n')
    with pytest.raises(InputFormatError) as caught:
        load_references(cuts=path)
    assert str(caught.value).startswith(f"{path}: ")


def test_references_need_exactly_one_source(tmp_path):
    assert load_references() is None
    with pytest.raises(ConfigError):
        load_references(refs=tmp_path / "a", cuts=tmp_path / "b")
