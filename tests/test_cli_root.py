"""The root command: help, unknown commands and the error boundary."""
from typer.testing import CliRunner

from rescorer.cli.app import app

runner = CliRunner()


def test_help_lists_every_command():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("train", "eval", "rescore", "convert", "data"):
        assert command in result.output


def test_unknown_command_is_a_usage_error():
    result = runner.invoke(app, ["no-such-command"])
    assert result.exit_code == 2
