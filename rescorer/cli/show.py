"""``fprescore show``: print n-best lists written by ``fprescore rescore``."""
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from rescorer.cli.common import console, guarded


@guarded
def show_command(
    nbest: Annotated[
        Path, typer.Argument(help="nbest.jsonl written by `fprescore rescore`.", exists=True, dir_okay=False)
    ],
    utts: Annotated[int, typer.Option("--utts", min=1, help="How many utterances to show.")] = 3,
    top: Annotated[int, typer.Option("--top", min=1, help="Hypotheses per utterance.")] = 5,
    uttid: Annotated[
        Optional[List[str]], typer.Option("--uttid", help="Show these utterances (repeatable).")
    ] = None,
    refs: Annotated[
        Optional[Path], typer.Option("--refs", exists=True, dir_okay=False, help="Kaldi text references.")
    ] = None,
) -> None:
    """Print the n-best lists of a few utterances as tables."""
    from rescorer.errors import ConfigError
    from rescorer.outputs.show import nbest_table, read_nbest_jsonl
    from rescorer.outputs.text import read_transcripts

    grouped = read_nbest_jsonl(nbest)
    references = read_transcripts(refs) if refs is not None else {}
    chosen = list(uttid) if uttid else sorted(grouped)[:utts]
    missing = [name for name in chosen if name not in grouped]
    if missing:
        raise ConfigError(f"no hypotheses for utterance(s) {', '.join(missing)}", path=nbest)
    for name in chosen:
        console.print(nbest_table(name, grouped[name], references.get(name), limit=top))
