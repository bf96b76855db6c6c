"""Read ``nbest.jsonl`` back and render n-best lists as rich tables."""
import json
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

from rich.table import Table

from rescorer.errors import InputFormatError
from rescorer.outputs.text import Hypothesis

NBEST_KEYS = ("uttid", "rank", "words", "am", "ngram", "nnlm", "total")


def read_nbest_jsonl(path: Union[str, Path]) -> Dict[str, List[Hypothesis]]:
    """Hypotheses of ``nbest.jsonl`` grouped by utterance, each list by rank.

    Consensus lines (``"decode": "mbr"``, see ``outputs.text.Consensus``) are
    not hypotheses with scores and are skipped.

    Raises:
      InputFormatError: unreadable file, a line that is not JSON, or an object
        without the keys ``uttid rank words am ngram nnlm total`` (the message
        names the file and line).
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputFormatError(f"cannot read n-best list ({error})", path=path) from error
    grouped: Dict[str, List[Hypothesis]] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if isinstance(record, dict) and record.get("decode") == "mbr":
                continue
            hypothesis = Hypothesis(**{key: record[key] for key in NBEST_KEYS})
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise InputFormatError(
                f"not an n-best record (expected a JSON object with keys {', '.join(NBEST_KEYS)}; {error})",
                path=path,
                where=f"line {number}",
            ) from error
        grouped.setdefault(hypothesis.uttid, []).append(hypothesis)
    for hypotheses in grouped.values():
        hypotheses.sort(key=lambda hypothesis: hypothesis.rank)
    return grouped


def nbest_table(
    uttid: str,
    hypotheses: Sequence[Hypothesis],
    reference: Optional[Sequence[str]] = None,
    limit: int = 5,
) -> Table:
    """A table of an utterance's best ``limit`` hypotheses and their scores."""
    title = uttid if reference is None else f"{uttid}   ref: {' '.join(reference)}"
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("rank", justify="right")
    table.add_column("words")
    for column in ("am", "ngram", "nnlm", "total"):
        table.add_column(column, justify="right")
    for hypothesis in hypotheses[:limit]:
        table.add_row(
            str(hypothesis.rank),
            " ".join(hypothesis.words),
            *(f"{value:.2f}" for value in (hypothesis.am, hypothesis.ngram, hypothesis.nnlm, hypothesis.total)),
        )
    return table
