"""Shared CLI pieces: consoles, the error boundary and the --debug flag."""
import contextlib
import functools
import gc
from typing import Any, Callable, Iterator, TypeVar

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


@contextlib.contextmanager
def frozen_imports() -> Iterator[None]:
    """Run the block (a command's lazy imports) without GC, then freeze what it made.

    Importing torch creates ~180,000 long-lived objects: with the GC on they
    set off three full collections (0.1 CPU s, docs/results/pipeline.md), and
    every later full collection would walk them again. An import makes no
    garbage worth collecting, so the objects go straight to the permanent
    generation (``gc.freeze``); the process keeps them until it exits anyway.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


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
