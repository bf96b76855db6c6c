"""``fprescore merge``: join the outputs of ``rescore --shard I/N`` runs into one set.

Thin: calls ``rescorer.rescoring.merge.merge_shards`` and prints the same
tables as ``rescore`` on stderr.
"""
from pathlib import Path
from typing import Annotated, List, Optional

import typer

from rescorer.cli.common import guarded


@guarded
def merge_command(
    shards: Annotated[List[Path], typer.Argument(
        help="The --out folders of `fprescore rescore --shard I/N`, I = 1..N, in any order.",
        show_default=False)],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="Merged output folder: onebest.txt, nbest.jsonl, summary.json (and "
                            "wer_grid.png with --grid), equal to a single run's.", show_default=False)],
    refs: Annotated[Optional[Path], typer.Option(
        "--refs", help="Reference transcripts (Kaldi text) for WER; default: the shards' --refs.")] = None,
    cuts: Annotated[Optional[Path], typer.Option(
        "--cuts", help="References from a lhotse CutSet; default: the shards' --cuts.")] = None,
) -> None:
    """Merge shard outputs: 1-best, n-best, WER rows and the --grid choice over all shards.

    Exit codes as for rescore: 0 no failed utterance, 3 some failed (listed), 1 an error.
    """
    from rescorer.cli.tables import show_report  # Lazy: keeps `--help` fast.
    from rescorer.rescoring.merge import merge_shards

    show_report(merge_shards(list(shards), out, refs=refs, cuts=cuts))
