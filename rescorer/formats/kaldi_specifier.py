"""Kaldi's table specifiers (``util/kaldi-table.h``, ``util/kaldi-io.h``), for lattices.

Read specifiers (``rspecifier``):

- ``ark:FILE``: an archive; ``ark:-``: from stdin; ``ark:CMD |``: the output of a
  shell command (``ark:gunzip -c lat.1.gz|``). Files starting with the gzip magic
  bytes are gunzipped (Kaldi needs the pipe for that; we accept both).
- ``scp:FILE``: lines ``key rxfilename``, where ``rxfilename`` is ``file.ark:OFFSET``
  (the object at that byte offset, as ``lattice-copy ark,scp:`` writes), a plain
  file holding one object, or ``CMD |``.

Options after the type (``ark,t:``, ``ark,s,cs:``, ``scp,p:``) are accepted; for
reading, text or binary is told from the content, as Kaldi does.

Write specifiers (``wspecifier``): ``ark:FILE`` (binary), ``ark,t:FILE`` (text),
``ark:-`` (stdout) and ``ark:| CMD``. A FILE ending in ``.gz`` is gzipped. A
plain path (no ``ark:``) is ``ark:PATH``.
"""
import gzip
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import IO, FrozenSet, Optional

from rescorer.errors import ConfigError, InputFormatError

_SPECIFIER = re.compile(r"^(ark|scp)((?:,[a-z]+)*):(.*)$", re.DOTALL)
_OPTIONS = frozenset({"t", "b", "s", "ns", "cs", "ncs", "o", "no", "p", "np", "f", "nf", "bg"})
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Specifier:
    """A parsed ``ark:``/``scp:`` specifier.

    Attributes:
      kind:
        "ark" or "scp".
      options:
        The comma options (``{"t"}`` for ``ark,t:``).
      target:
        What follows the colon: a file name, ``-``, or a command ending (read) or
        starting (write) with ``|``.
    """

    kind: str
    options: FrozenSet[str]
    target: str

    @property
    def text(self) -> bool:
        """True when text output is asked for (``ark,t:``)."""
        return "t" in self.options

    def __str__(self) -> str:
        options = "".join(f",{option}" for option in sorted(self.options))
        return f"{self.kind}{options}:{self.target}"


def is_specifier(text: str) -> bool:
    """True for strings of the form ``ark[,opts]:...`` or ``scp[,opts]:...``."""
    return _SPECIFIER.match(text) is not None


def parse_specifier(text: str) -> Specifier:
    """Parse a specifier.

    Raises:
      ConfigError: not ``ark:``/``scp:``, an unknown option, or nothing after the colon.
    """
    match = _SPECIFIER.match(text)
    if match is None:
        raise ConfigError(f"{text!r} is not a Kaldi specifier (expected ark:... or scp:...)")
    kind, option_text, target = match.groups()
    options = frozenset(option for option in option_text.split(",") if option)
    unknown = sorted(options - _OPTIONS)
    if unknown:
        raise ConfigError(f"{text!r}: unknown option {unknown[0]!r} (expected some of "
                          f"{', '.join(sorted(_OPTIONS))})")
    if not target.strip():
        raise ConfigError(f"{text!r}: nothing after the colon (expected a file, - or a command)")
    return Specifier(kind, options, target.strip() if target.strip() == "-" else target)


def write_specifier(text: str) -> Specifier:
    """A write specifier from ``ark[,t]:...`` or a plain path (binary archive).

    Raises:
      ConfigError: ``scp:`` (only archives are written), or a bad specifier.
    """
    if not is_specifier(text):
        return Specifier("ark", frozenset(), text)
    spec = parse_specifier(text)
    if spec.kind != "ark":
        raise ConfigError(f"{text!r}: lattices are written to archives (expected ark:...)")
    return spec


class InputStream:
    """A binary input opened from an rxfilename: a file, stdin (``-``) or ``CMD |``.

    Gzipped files are gunzipped. ``close`` reports a command's failure.

    Attributes:
      name:
        What to call it in messages (the file name, ``stdin``, or the command).
      handle:
        The binary file object to read.
    """

    def __init__(self, target: str) -> None:
        self.name = target
        self.process: Optional[subprocess.Popen] = None
        if target == "-":
            self.name = "stdin"
            self.handle: IO[bytes] = sys.stdin.buffer
        elif target.rstrip().endswith("|"):
            command = target.rstrip()[:-1]
            self.name = command.strip()
            self.process = subprocess.Popen(command, shell=True, stdout=subprocess.PIPE)
            self.handle = self.process.stdout
        else:
            self.handle = open_file(target)

    def close(self) -> Optional[InputFormatError]:
        """Close; the error to report when a command exited with a failure, else None.

        Closing before the end stops a command (SIGPIPE); that is not reported.
        """
        if self.handle is not sys.stdin.buffer:
            self.handle.close()
        if self.process is not None:
            status = self.process.wait()
            if status != 0:
                return InputFormatError(f"the command exited with status {status}",
                                        path=self.name)
        return None


def open_file(path: str) -> IO[bytes]:
    """Open a file (never stdin or a command) for reading, gunzipping by magic bytes; one-line error when missing."""
    try:
        handle = open(path, "rb")
        magic = handle.read(2)
        handle.seek(0)
    except OSError as error:
        raise InputFormatError(f"cannot read ({error.strerror})", path=path) from error
    return gzip.GzipFile(fileobj=handle, mode="rb") if magic == GZIP_MAGIC else handle


def split_rxfilename(rxfilename: str) -> tuple:
    """``(target, offset or None)`` of an scp entry's ``file.ark:OFFSET``.

    A trailing ``:digits`` is an offset; ``CMD |`` and plain files have none.
    """
    match = re.match(r"^(.*):(\d+)$", rxfilename)
    if match is None or rxfilename.rstrip().endswith("|"):
        return rxfilename, None
    return match.group(1), int(match.group(2))
