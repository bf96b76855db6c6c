"""The failures table shows file, utterance and problem once each."""
from pathlib import Path

from rich.console import Console

from rescorer.cli.tables import failures_table
from rescorer.errors import Failure
from rescorer.rescoring.report import RescoreReport


def _render(table) -> str:
    console = Console(width=200, record=True)
    console.print(table)
    return console.export_text()


def test_failures_table_does_not_repeat_the_location():
    report = RescoreReport()
    report.failures.append(Failure(Path("a.pt"), "u1", message="a.pt: utterance u1: arc 3: cycle",
                                   problem="arc 3: cycle"))
    report.failures.append(Failure(None, "u2", message="utterance u2: id appears twice"))
    text = _render(failures_table(report))
    assert "Failed utterances (2)" in text
    assert text.count("a.pt") == 1 and "arc 3: cycle" in text
    assert "utterance u2: id appears twice" in text  # no separate problem: the whole message
