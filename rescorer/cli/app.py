"""The ``fprescore`` root command: registers the sub-commands.

Exit codes: 0 success, 1 user error (bad input, bad checkpoint), 2 bad
command-line usage, 3 some utterances failed and were skipped.
"""
import gc
from typing import Annotated

import typer

from rescorer.cli import convert, data, evaluate, merge, rescore, show, train
from rescorer.cli.common import STATE

app = typer.Typer(
    name="fprescore",
    help="Train fixed-point RNN LMs and rescore ASR lattices exactly with them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def root(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks for errors.")
    ] = False,
) -> None:
    """Train fixed-point RNN LMs and rescore ASR lattices exactly with them."""
    STATE.debug = debug


app.command("train")(train.train_command)
app.command("eval")(evaluate.eval_command)
app.command("rescore")(rescore.rescore_command)
app.command("merge")(merge.merge_command)
app.command("convert")(convert.convert_command)
app.command("show")(show.show_command)
app.add_typer(data.app, name="data")


def main() -> None:
    """Console-script entry point.

    The process exits right after the command: ``gc.freeze()`` spares the
    interpreter's final cyclic collection over every object torch created
    (about 0.35 CPU s on the 2-core bench machine, docs/results/pipeline.md).
    Files are closed and flushed as usual; only that collection is skipped.
    """
    try:
        app()
    finally:
        gc.freeze()
