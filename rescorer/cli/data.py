"""``fprescore data download``: fetch PTB or WikiText-2 and verify checksums.

Examples::

    fprescore data download ptb --dest data/ptb
    fprescore data download wikitext2 --dest data/wikitext2 --base-url http://mirror.local
"""
from pathlib import Path
from typing import Annotated, Optional

import typer

from rescorer.cli.common import console, guarded

app = typer.Typer(help="Download corpora.", no_args_is_help=True)


@app.command("download")
@guarded
def download_command(
    corpus: Annotated[str, typer.Argument(help="ptb or wikitext2.")],
    dest: Annotated[
        Path,
        typer.Option(
            "--dest",
            help="Destination folder (use it as --data-dir).",
            file_okay=False,
        ),
    ],
    base_url: Annotated[
        Optional[str],
        typer.Option(help="Replace https://raw.githubusercontent.com (also $FPRESCORE_DOWNLOAD_BASE_URL)."),
    ] = None,
) -> None:
    """Download CORPUS into DEST; files are kept only if their checksums match."""
    from rescorer.data.download import download_corpus

    def report(name: str, status: str) -> None:
        console.print(f"{name}: {status}, verified")

    paths = download_corpus(corpus, dest, base_url, on_file=report)
    console.print(f"{corpus}: {len(paths)} files in {dest}")
