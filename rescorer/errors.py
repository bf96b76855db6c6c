"""Exception hierarchy for user-facing errors.

Every error a user can cause (bad file, bad option, corrupt checkpoint) is a
``RescorerError``. The CLI turns it into one line on stderr and an exit code;
anything else is a bug and keeps its traceback.
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

# Exit codes of the command-line tool (documented in README.md).
EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2  # click's own code for bad options
EXIT_PARTIAL = 3  # some utterances failed and were skipped


class RescorerError(Exception):
    """A user-facing error with its location.

    Args:
      message:
        What is wrong, ideally "problem (expected ..., got ...)".
      path:
        The file the problem is in, if any.
      utt_id:
        The utterance the problem is in, if any.
      where:
        A finer location: "line 12", "arc 7", "state 3".
    """

    exit_code = EXIT_ERROR

    def __init__(
        self,
        message: str,
        *,
        path: Optional[Union[str, Path]] = None,
        utt_id: Optional[str] = None,
        where: Optional[str] = None,
    ) -> None:
        self.message = message
        self.path = None if path is None else str(path)
        self.utt_id = utt_id
        self.where = where
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.path is not None:
            parts.append(self.path)
        if self.utt_id is not None:
            parts.append(f"utterance {self.utt_id}")
        if self.where is not None:
            parts.append(self.where)
        parts.append(self.message)
        return ": ".join(parts)


class ConfigError(RescorerError):
    """Invalid combination of options or model settings."""


class InputFormatError(RescorerError):
    """A file is truncated, corrupt or not in the expected format."""


class SymbolError(RescorerError):
    """A word is missing from a symbol table, or the table does not fit."""


class LatticeError(RescorerError):
    """A lattice is cyclic, empty, or has no path to a final state."""


class ExpansionLimitError(LatticeError):
    """History expansion exceeded --max-arcs even at the tightest beam."""


class CheckpointError(RescorerError):
    """A checkpoint is missing, corrupt, truncated or incompatible."""


class DownloadError(RescorerError):
    """A download failed or its checksum did not match."""


@dataclass(frozen=True)
class Failure:
    """An utterance (or a whole file, ``utt_id`` None) that was skipped, and why.

    The one failure type: readers return it for each bad file or utterance and
    a rescoring run's report lists it.

    Attributes:
      path:
        The file, when known.
      utt_id:
        The utterance, or None when the whole file failed.
      error:
        The user-facing error, whose message names file and utterance; None
        only when rebuilt from a summary (``fprescore merge``).
      message:
        The full error line, file and utterance included (default ``str(error)``).
      problem:
        The same without the file and utterance, for tables that show them in
        their own columns (default the error's location and message).
    """

    path: Optional[Path]
    utt_id: Optional[str]
    error: Optional[RescorerError] = None
    message: str = ""
    problem: Optional[str] = None

    def __post_init__(self) -> None:
        if self.error is not None and not self.message:
            object.__setattr__(self, "message", str(self.error))
        if self.error is not None and self.problem is None:
            object.__setattr__(self, "problem", ": ".join(
                part for part in (self.error.where, self.error.message) if part))
