"""Every command in README.md's bash blocks still works.

Commands run from the repository root (with ``exp/`` redirected to a temporary
folder). A command whose line ends with ``# not run by tests: REASON`` is only
parsed against the CLI, so a renamed or removed option still fails here.
"""
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import List, Tuple

import pytest
import typer

from rescorer.cli.app import app

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
NOT_RUN = "# not run by tests:"
PROGRAMS = ("fprescore", "torchrun", "./bin/", "recipes/")  # .venv-k2 lines: CI runs them


def readme_commands() -> List[Tuple[str, bool]]:
    """(command, run_it) for each command line of the README's bash blocks."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        joined = re.sub(r"\\\n\s*", "", block)  # continuation lines
        for line in joined.splitlines():
            line = line.strip()
            if line.startswith(PROGRAMS):
                commands.append((line, NOT_RUN not in line))
    return commands


def fprescore_args(command: str) -> List[str]:
    """The fprescore arguments of a command (after ``-m rescorer`` for torchrun)."""
    words = shlex.split(command.split("#")[0])
    if words[0] == "torchrun":
        words = words[words.index("rescorer") :]
    return words[1:]


def parse_only(args: List[str]) -> None:
    """Parse ``fprescore ARGS`` without running it: unknown options and bad values fail.

    Typer may vendor its own click, so its classes are matched by name.
    """
    command = typer.main.get_command(app)
    name, args = "fprescore", list(args)
    while hasattr(command, "commands"):  # a group, e.g. `data download`
        name = args.pop(0)
        command = command.commands.get(name)
        assert command is not None, f"fprescore has no command {name!r}"
    try:
        command.make_context(name, args)  # unknown options fail before any value is checked
    except Exception as error:  # paths of data a newcomer has not made yet are fine
        if type(error).__name__ != "BadParameter" or "does not exist" not in error.format_message():
            raise


COMMANDS = readme_commands()


def test_readme_has_commands_to_check():
    assert sum(run for _, run in COMMANDS) >= 6
    assert any(command.startswith("./bin/demo") for command, _ in COMMANDS)


def test_parse_only_rejects_an_unknown_option():
    with pytest.raises(Exception, match="No such option: --no-such-option"):
        parse_only(["rescore", "x.pt", "--model", "m.pt", "--out", "o", "--no-such-option"])
    with pytest.raises(Exception, match="No such option: --no-such-option"):
        parse_only(["data", "download", "ptb", "--dest", "d", "--no-such-option"])
    with pytest.raises(Exception, match="Missing parameter: model"):
        parse_only(["eval", "--text", str(REPO / "README.md")])


@pytest.mark.parametrize("command", [c for c, run in COMMANDS if not run])
def test_commands_not_run_still_parse(command):
    head = command.split()[0]
    if head in ("fprescore", "torchrun"):
        parse_only(fprescore_args(command))
    else:
        assert os.access(REPO / head, os.X_OK), f"{head} is not an executable script"


@pytest.mark.slow
@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data not available")
def test_commands_run(tmp_path):
    """Run the README's runnable commands in order, as a newcomer would."""
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    for command, run in COMMANDS:
        if not run or not command.startswith("fprescore"):
            continue  # ./bin/test and ./bin/demo are run by CI
        command = command.replace("exp/", f"{tmp_path}/exp/")
        result = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command], cwd=REPO, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"{command}\n{result.stderr[-3000:]}"
    assert (tmp_path / "exp" / "rescore" / "onebest.txt").read_text().count("\n") == 20
