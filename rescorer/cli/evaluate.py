"""``fprescore eval``: perplexity of a text under a trained model.

Uses exactly the training-time inference: the model's own solver and K, with
the state reset at every sentence start.

Examples::

    fprescore eval --model exp/ptb-k4/model.pt --text data/ptb/ptb.test.txt
    fprescore eval --model exp/ptb-k4/model.pt --text test.txt --json
"""
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from rescorer.cli.common import console, guarded


@guarded
def eval_command(
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            help="model.pt written by `fprescore train`.",
            exists=True,
            dir_okay=False,
        ),
    ],
    text: Annotated[
        Path,
        typer.Option(
            "--text",
            help="Text to score, one sentence per line.",
            exists=True,
            dir_okay=False,
        ),
    ],
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON object {ppl, tokens, oov_rate} and nothing else.",
        ),
    ] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "cpu",
    cache_dir: Annotated[
        Optional[Path],
        typer.Option(help="Keep the token cache here and reuse it (default: a temporary folder).", file_okay=False),
    ] = None,
    max_tokens: Annotated[
        Optional[int],
        typer.Option(help="Score only the leading whole sentences of at most this many tokens.", min=1),
    ] = None,
) -> None:
    """Print perplexity, LM token count and OOV rate of TEXT under MODEL (streamed from a token cache)."""
    from rescorer.cli.train import RichDataProgress
    from rescorer.devices import resolve_device
    from rescorer.model.checkpoint import load_model
    from rescorer.training.evaluate import evaluate_file

    language_model, vocab = load_model(model, resolve_device(device))
    progress = RichDataProgress(enabled=not as_json)
    result = evaluate_file(language_model, vocab, text, cache_dir=cache_dir, max_tokens=max_tokens, progress=progress)
    if as_json:
        typer.echo(json.dumps({"ppl": result.ppl, "tokens": result.tokens, "oov_rate": result.oov_rate}))
        return
    table = Table(title=f"{text} under {model}")
    for column in ("PPL", "tokens", "words", "OOV rate"):
        table.add_column(column, justify="right")
    table.add_row(f"{result.ppl:.2f}", str(result.tokens), str(result.words), f"{100 * result.oov_rate:.2f}%")
    console.print(table)
