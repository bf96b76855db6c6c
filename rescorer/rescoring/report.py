"""What a rescoring run did: per-utterance statistics, failures, WER rows.

Plain dataclasses; ``rescorer.outputs.tables`` renders them.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rescorer.outputs.wer import WerStats


@dataclass(frozen=True)
class UtteranceStats:
    """Sizes of one utterance's lattices along the pipeline.

    Attributes:
      arcs:
        Arcs of the lattice as read.
      pruned_arcs:
        Arcs after beam pruning (= arcs without pruning).
      expanded_arcs:
        Arcs of the history-expanded lattice (n-best mode: 0).
      histories:
        Distinct LM histories of this utterance.
      queries:
        (history, token) pairs scored.
      tightened:
        Times the beam was tightened to fit --max-arcs.
    """

    arcs: int
    pruned_arcs: int
    expanded_arcs: int
    histories: int
    queries: int
    tightened: int = 0


@dataclass(frozen=True)
class Failure:
    """An utterance (or a whole file, ``utt_id`` None) that was skipped.

    Attributes:
      message:
        The full error line, file and utterance included.
      problem:
        The same without the file and utterance (for a table that shows them
        in their own columns); None when only ``message`` is known.
    """

    path: Optional[Path]
    utt_id: Optional[str]
    message: str
    problem: Optional[str] = None


@dataclass
class Timings:
    """Seconds spent per phase (wall clock)."""

    read: float = 0.0
    expand: float = 0.0
    score: float = 0.0
    search: float = 0.0
    total: float = 0.0


@dataclass
class RescoreReport:
    """The outcome of ``run_rescore``.

    Attributes:
      results:
        Utterance id -> its ``UtteranceStats`` (successful utterances only).
      failures:
        Skipped utterances and files, in the order met.
      unique_histories:
        Histories run through the model after deduplication across batches'
        lattices (summed over batches).
      timings:
        Wall-clock seconds per phase.
      wer_rows:
        (label, WerStats) rows: first pass, oracle, rescored (when refs given).
      grid:
        (lm_scale, WerStats) per grid point, when --grid was given.
      best_scale:
        The LM scale used for the outputs.
      outputs:
        Files written.
      notes:
        Extra lines for the summary (e.g. history-approximation mismatch).
    """

    results: Dict[str, UtteranceStats] = field(default_factory=dict)
    failures: List[Failure] = field(default_factory=list)
    unique_histories: int = 0
    timings: Timings = field(default_factory=Timings)
    wer_rows: List[Tuple[str, WerStats]] = field(default_factory=list)
    grid: List[Tuple[float, WerStats]] = field(default_factory=list)
    best_scale: Optional[float] = None
    outputs: List[Path] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)

    def totals(self) -> Dict[str, int]:
        """Sums of every ``UtteranceStats`` field over the successful utterances."""
        names = ("arcs", "pruned_arcs", "expanded_arcs", "histories", "queries", "tightened")
        return {name: sum(getattr(stats, name) for stats in self.results.values()) for name in names}
