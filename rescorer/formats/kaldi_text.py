"""Kaldi text lattices (``lattice-copy ark,t``), several utterances per file.

Each utterance is a key line (the whole line is the id), then one line per arc or final state, then a blank line:

- compact arc: ``src dst word graph_cost,acoustic_cost,transition_ids``
- non-compact arc: ``src dst ilabel olabel graph_cost,acoustic_cost`` (word = olabel)
- final state: ``state`` or ``state graph_cost,acoustic_cost[,transition_ids]``

Costs are negated log-probabilities: am = -acoustic, ngram = -graph. The final
states get -1 arcs (carrying their final weights) into one new final state. Word
ids are used as they are (``--words`` is needed to know the words); state 0 is the
start state as in Kaldi's text form.
"""
from pathlib import Path
from typing import IO, Iterator, List, Optional, Tuple, Union

import torch

from rescorer.errors import InputFormatError, SymbolError
from rescorer.formats.slf import open_text
from rescorer.lattice.fsavec import Lattice, LatticeFailure, words_from_labels
from rescorer.lattice.symbols import SymbolTable
from rescorer.paths import PathLike

Row = Tuple[int, int, int, float, float]  # src, dst, label, am, ngram


def read_kaldi_text(path: PathLike, symbols: Optional[SymbolTable] = None) -> List[Lattice]:
    """Read every utterance; raise on the first problem."""
    lattices = []
    for item in iter_kaldi_text(path, symbols):
        if isinstance(item, LatticeFailure):
            raise item.error
        lattices.append(item)
    return lattices


def iter_kaldi_text(path: PathLike, symbols: Optional[SymbolTable] = None
                    ) -> Iterator[Union[Lattice, LatticeFailure]]:
    """Yield each utterance's lattice, or a ``LatticeFailure`` for a bad one.

    Args:
      path:
        The text archive (plain or gzipped).
      symbols:
        If given, every word id must be in it.
    """
    with open_text(path) as handle:
        for utt_id, rows, finals, error in _utterances(handle, path):
            if error is None:
                try:
                    lattice = _lattice(utt_id, rows, finals)
                    lattice.validate(path)
                    if symbols is not None:
                        symbols.check_ids(lattice.word_ids, path=path, utt_id=utt_id)
                    yield lattice
                    continue
                except (InputFormatError, SymbolError) as caught:
                    error = caught
            yield LatticeFailure(Path(path), utt_id, error)


def _utterances(handle: IO[str], path: PathLike):
    """Yield ``(utt_id, arc rows, final rows, error or None)`` per utterance."""
    utt_id, rows, finals, error = None, [], [], None
    for line_number, line in enumerate(handle, start=1):
        fields = line.split()
        if not fields:
            if utt_id is not None:
                yield utt_id, rows, finals, error
            utt_id, rows, finals, error = None, [], [], None
        elif utt_id is None:
            utt_id = line.strip()  # the key line (TheanoLM's sample has a space in it)
        elif error is None:
            try:
                _parse_row(fields, rows, finals)
            except ValueError as bad:
                error = InputFormatError(f"{bad} in {line.strip()[:80]!r}", path=path,
                                         utt_id=utt_id, where=f"line {line_number}")
    if utt_id is not None:
        yield utt_id, rows, finals, error


def _costs(text: str, with_ids: bool) -> Tuple[float, float]:
    """(am, ngram) from ``graph,acoustic[,ids]`` (log-probs are minus the costs)."""
    parts = text.split(",")
    if len(parts) < 2 or (len(parts) > 2 and not with_ids):
        raise ValueError(f"bad weight {text!r} (expected graph_cost,acoustic_cost)")
    try:
        graph, acoustic = float(parts[0]), float(parts[1])
    except ValueError:
        raise ValueError(f"bad costs {text!r} (expected two numbers)") from None
    return -acoustic, -graph


def _parse_row(fields: List[str], rows: List[Row], finals: List[Row]) -> None:
    """Append one arc line or final-state line."""
    if len(fields) == 1:
        finals.append((int(fields[0]), -1, -1, 0.0, 0.0))
    elif len(fields) == 2:
        finals.append((int(fields[0]), -1, -1, *_costs(fields[1], True)))
    elif len(fields) == 4:
        rows.append((int(fields[0]), int(fields[1]), int(fields[2]), *_costs(fields[3], True)))
    elif len(fields) == 5:
        rows.append((int(fields[0]), int(fields[1]), int(fields[3]), *_costs(fields[4], False)))
    else:
        raise ValueError(f"{len(fields)} fields (expected 1, 2, 4 or 5)")


def _lattice(utt_id: str, rows: List[Row], finals: List[Row]) -> Lattice:
    """Arcs plus -1 arcs from each final state into one new final state."""
    if not rows or not finals:
        raise InputFormatError(f"{len(rows)} arcs and {len(finals)} final states "
                               "(expected at least one of each)", utt_id=utt_id)
    arcs = torch.tensor([row[:3] for row in rows], dtype=torch.int64)
    ends = torch.tensor([row[0] for row in finals], dtype=torch.int64)
    final = 1 + max(int(arcs[:, :2].max()), int(ends.max()))
    labels = torch.cat([arcs[:, 2], torch.full((len(finals),), -1, dtype=torch.int64)])
    if bool((arcs[:, 2] < 0).any()):
        raise InputFormatError(f"negative word id {int(arcs[:, 2].min())} on an arc",
                               utt_id=utt_id)
    word_splits, word_ids = words_from_labels(labels)
    scores = torch.tensor([row[3:] for row in rows + finals], dtype=torch.float32)
    return Lattice(
        utt_id=utt_id,
        num_states=final + 1,
        src=torch.cat([arcs[:, 0], ends]),
        dst=torch.cat([arcs[:, 1], torch.full((len(finals),), final, dtype=torch.int64)]),
        labels=labels,
        word_splits=word_splits,
        word_ids=word_ids,
        am_scores=scores[:, 0].contiguous(),
        ngram_scores=scores[:, 1].contiguous(),
    )
