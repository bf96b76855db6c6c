"""Shared CLI pieces: consoles, the error boundary and the --debug flag."""
import functools
from typing import Any, Callable, TypeVar

import typer
from rich.console import Console
from rich.text import Text

from rescorer.errors import RescorerError

console = Console()
err_console = Console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])


class CliState:
    """Options of the root command that every sub-command can read."""

    debug: bool = False


STATE = CliState()


def guarded(command: F) -> F:
    """Turn a ``RescorerError`` into one red stderr line and its exit code.

    With ``fprescore --debug`` the traceback is kept instead.
    """

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except RescorerError as error:
            if STATE.debug:
                raise
            err_console.print(Text.assemble(("error: ", "bold red"), str(error)), soft_wrap=True)
            raise typer.Exit(error.exit_code) from None

    return wrapper  # type: ignore[return-value]
