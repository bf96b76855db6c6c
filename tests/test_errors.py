"""The one failure type: readers and the rescoring report share ``rescorer.errors.Failure``."""
from pathlib import Path

from rescorer.errors import Failure, InputFormatError
from rescorer.lattice import fsavec
from rescorer.rescoring import report


def test_failure_derives_message_and_problem_from_its_error():
    error = InputFormatError("bad weight", path="a.ark", utt_id="u1", where="line 3")
    failure = Failure(Path("a.ark"), "u1", error)
    assert failure.message == "a.ark: utterance u1: line 3: bad weight" == str(error)
    assert failure.problem == "line 3: bad weight"
    assert Failure(None, None, InputFormatError("empty")).problem == "empty"


def test_failure_rebuilt_from_a_summary_keeps_its_text():
    failure = Failure(None, "u2", message="utterance u2: id appears twice")
    assert failure.error is None and failure.problem is None
    assert failure.message == "utterance u2: id appears twice"


def test_one_type_in_one_home():
    assert report.RescoreReport().failures == [] and "Failure" not in vars(fsavec)
    assert report.Failure is Failure  # the report's type is the readers' type
