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
def quiet_imports() -> Iterator[None]:
    """Run the block (a command's lazy imports) without the cyclic GC.

    Importing torch creates ~180,000 long-lived objects, which set off three
    full collections over all of them (0.1 CPU s, docs/results/pipeline.md);
    an import makes no garbage worth collecting. Afterwards the new objects
    go straight to the oldest generation (``gc.freeze`` then ``gc.unfreeze``,
    which moves without scanning), so no young collection walks them either.
    Objects the caller froze stay frozen.
    """
    enabled, frozen = gc.isenabled(), gc.get_freeze_count() > 0
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if not frozen:
            gc.unfreeze()
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
