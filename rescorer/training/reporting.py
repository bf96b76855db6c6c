"""Progress hooks of the training loop and its JSONL log.

The loop calls a ``Reporter`` (a no-op by default); the CLI passes one that
draws a rich progress bar. ``write_log`` rewrites ``log.jsonl`` atomically from
the history kept in the checkpoint, so after a resume the log holds each epoch
exactly once.
"""
import json
from pathlib import Path
from typing import Any, Dict, List, Optional

from rescorer.data.prepare import DataProgress
from rescorer.atomic import atomic_write_text


class Reporter(DataProgress):
    """Receives training progress (and the data steps' byte progress); every method is a no-op here."""

    def start_epoch(self, epoch: int, segments: int, done: int = 0) -> None:
        """An epoch of ``segments`` optimizer steps begins (``done`` of them already, when resumed mid-epoch)."""

    def step(self, tokens: int, loss: float) -> None:
        """One step trained ``tokens`` tokens (all processes) with mean loss ``loss`` (nats)."""

    def end_epoch(self, record: Dict[str, Any]) -> None:
        """An epoch ended; ``record`` is its log entry (see ``loop.train``)."""

    def message(self, text: str) -> None:
        """A one-line note (resume, learning-rate decay, early stop)."""


def write_log(path: Path, history: List[Dict[str, Any]], final: Optional[Dict[str, Any]] = None) -> None:
    """Write one JSON object per epoch (and the final summary) to ``path`` atomically."""
    records = list(history) + ([final] if final is not None else [])
    atomic_write_text(path, "".join(json.dumps(record, sort_keys=True) + "\n" for record in records))
