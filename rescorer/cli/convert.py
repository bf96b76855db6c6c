"""``fprescore convert``: lattices from k2 / SLF / Kaldi to k2, SLF or Kaldi.

``--to k2`` writes one FsaVec file (all utterances) to ``--out``; when the words
came from SLF without ``--words``, the grown table goes to ``--words-out``
(default: ``words.txt`` next to ``--out``; an existing, different file there is
never overwritten: name another with ``--words-out``). ``--to slf`` treats ``--out`` as a
folder and writes one ``UTTID.slf`` per lattice, the id made safe as a file name
(``formats.slf.slf_file_name``: never hidden, never outside the folder). ``--to
kaldi`` writes one Kaldi archive of CompactLattices to ``--out``, a write specifier:
binary by default, ``ark,t:FILE`` for text, gzipped when FILE ends in ``.gz``
(``ark:-`` for stdout). Writes
are atomic. Utterance ids must be unique across the inputs: a repeated id is a
failure of the later lattice. Bad utterances are listed in a table and give exit
code 3; ``--strict`` stops at the first one, and no lattice at all (empty input,
or every lattice failed) is exit code 1.
"""
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, List, Optional

import typer

from rescorer.cli.common import console, err_console, guarded
from rescorer.errors import EXIT_PARTIAL, ConfigError, InputFormatError
from rescorer.threads import single_threaded

if TYPE_CHECKING:
    from rescorer.lattice.batch import LatticeBatch
    from rescorer.lattice.symbols import SymbolTable


class TargetFormat(str, Enum):
    """Output formats of ``convert``."""

    k2 = "k2"
    slf = "slf"
    kaldi = "kaldi"


@guarded
@single_threaded
def convert_command(
    inputs: Annotated[List[Path], typer.Argument(
        help="Lattice files or folders (k2 .pt, HTK SLF, Kaldi archives; detected from content), "
             "or Kaldi specifiers (ark:FILE, ark:-, 'ark:gunzip -c lat.1.gz|', scp:FILE).",
        show_default=False)],
    to: Annotated[TargetFormat, typer.Option("--to", help="Output format.")],
    out: Annotated[Path, typer.Option(
        "--out", "-o", help="k2: the output file; slf: the output folder (one UTTID.slf each); "
                            "kaldi: a file or ark:FILE (binary), ark,t:FILE (text), .gz gzipped.",
        show_default=False)],
    words: Annotated[Optional[Path], typer.Option(
        "--words", "-w", help="words.txt (`word id`); required for k2 and Kaldi input.")] = None,
    words_out: Annotated[Optional[Path], typer.Option(
        "--words-out", help="Where to write the table grown from SLF words "
                            "(default: words.txt next to --out).")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="Stop at the first bad utterance instead of skipping it.")] = False,
) -> None:
    """Convert lattices between k2 (.pt), HTK SLF and Kaldi archives (binary or text)."""
    from rescorer.formats.k2_pt import write_k2_batch
    from rescorer.formats.read import read_batch
    from rescorer.lattice.symbols import SymbolTable

    if to is not TargetFormat.slf and out.is_dir():
        raise ConfigError(f"--out {out} is a folder (expected a file for --to {to.value})")
    if to is TargetFormat.kaldi:
        _check_kaldi_target(str(out), words, words_out)
    symbols = SymbolTable.from_file(words) if words is not None else SymbolTable()
    result = read_batch(inputs, symbols)
    failures = list(result.failures)
    if strict and failures:
        raise failures[0].error
    batch = result.batch
    words_target = None
    if symbols.grown and to is not TargetFormat.slf and batch.num_utts:
        words_target = words_out or _default_words_path(out, to, symbols)
    if to is TargetFormat.slf:
        written = _write_slf_files(batch, result.paths, symbols, out, failures, strict)
    elif batch.num_utts:
        if to is TargetFormat.k2:
            write_k2_batch(out, batch)
        else:
            from rescorer.formats.kaldi_outputs import write_kaldi_archive

            write_kaldi_archive(str(out), batch.to_lattices())
        written = batch.num_utts
        if words_target is not None:
            symbols.write(words_target)
    else:
        written = 0
    to_stdout = to is TargetFormat.kaldi and str(out).rsplit(":", 1)[-1].strip() == "-"
    _report(written, failures, out, err_console if to_stdout else console)
    if not written:
        raise InputFormatError(f"no lattices {'could be converted' if failures else 'found'} "
                               f"in {', '.join(map(str, inputs))} ({len(failures)} failed)")
    if failures:
        raise typer.Exit(EXIT_PARTIAL)


def _write_slf_files(batch: "LatticeBatch", paths: List[Path], symbols: "SymbolTable",
                     out: Path, failures: list, strict: bool) -> int:
    """One ``NAME.slf`` per lattice (``slf_file_name``); clashing names become failures.

    Returns:
      The number of files written.
    """
    from rescorer.formats.slf import slf_file_name, write_slf
    from rescorer.errors import Failure

    owners = {}
    for index, utt_id in enumerate(batch.utt_ids):
        name = slf_file_name(utt_id)
        if name in owners:
            error = InputFormatError(f"would be written to {name}, the file of utterance "
                                     f"{owners[name]!r} (the ids differ only in characters "
                                     "unsafe in file names)", path=paths[index], utt_id=utt_id)
            if strict:
                raise error
            failures.append(Failure(paths[index], utt_id, error))
            continue
        owners[name] = utt_id
        write_slf(out / name, batch.lattice(index), symbols)
    return len(owners)


def _default_words_path(out: Path, to: TargetFormat, symbols: "SymbolTable") -> Path:
    """``words.txt`` next to ``out``; refuse to replace a different table already there."""
    target = str(out).split(":", 1)[-1] if to is TargetFormat.kaldi else str(out)
    path = Path(target).parent / "words.txt"
    if path.is_file() and path.read_text(encoding="utf-8", errors="replace") != symbols.to_text():
        raise ConfigError(f"{path} exists and differs from the word table of these lattices: "
                          "give --words-out (or --words) instead of overwriting it")
    return path


def _check_kaldi_target(out: str, words: Optional[Path], words_out: Optional[Path]) -> None:
    """Reject a bad write specifier, or a stream target without a home for words.txt."""
    from rescorer.formats.kaldi_specifier import write_specifier

    target = write_specifier(out).target.strip()
    if words is None and words_out is None and (target == "-" or target.startswith("|")):
        raise ConfigError(f"--out {out} is a stream: give --words-out for the words.txt grown "
                          "from SLF words (or --words)")


def _report(num_written: int, failures: list, out: Path, summary=console) -> None:
    """One summary line on ``summary`` (stdout unless the archive goes there; none when
    nothing was written) and a table of failures on stderr."""
    from rich.table import Table

    if num_written:
        summary.print(f"wrote {num_written} lattice(s) to {out}")
    if failures:
        table = Table(title=f"{len(failures)} skipped")
        table.add_column("file", overflow="fold")
        table.add_column("utterance")
        table.add_column("problem", overflow="fold")
        for failure in failures:
            table.add_row(str(failure.path), failure.utt_id or "-", failure.error.message)
        err_console.print(table)
