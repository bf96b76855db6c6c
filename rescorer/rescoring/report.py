"""What a rescoring run did: per-utterance statistics, failures, WER rows.

Plain dataclasses; ``rescorer.cli.tables`` renders them and
``rescorer.rescoring.summary`` writes them to ``summary.json``.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rescorer.errors import Failure
from rescorer.outputs.wer import WerStats
from rescorer.rescoring.combine import Scales
from rescorer.rescoring.grid import Point
from rescorer.rescoring.timing import Timings

# Warn when more than this share of the lattices' words are out of the LM's
# vocabulary (issue 8: an uppercased lattice maps every word to <unk>).
OOV_WARN_RATE = 0.20


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
      words:
        Word occurrences on the arcs of the lattice as read (each arc's words
        once per arc).
      oov_words:
        Those of ``words`` the LM only knows as ``<unk>``.
      arpa_oov_words:
        Those of ``words`` the ``--ngram-lm`` ARPA only knows as ``<unk>`` (0 without one).
    """

    arcs: int
    pruned_arcs: int
    expanded_arcs: int
    histories: int
    queries: int
    tightened: int = 0
    words: int = 0
    oov_words: int = 0
    arpa_oov_words: int = 0

    @property
    def oov_rate(self) -> float:
        """``oov_words / words`` (0 for a lattice without words)."""
        return self.oov_words / self.words if self.words else 0.0


@dataclass
class RescoreReport:
    """The outcome of ``run_rescore``.

    Attributes:
      results:
        Utterance id -> its ``UtteranceStats`` (successful utterances only).
      failures:
        Skipped utterances and files, in the order met.
      lattices_read:
        Lattices read for this run (this shard's, under --shard), failed ones included.
      files:
        Input files read.
      unique_histories:
        Histories run through the model after deduplication across batches'
        lattices (summed over batches; depends on --batch-size and --jobs).
      timings:
        Wall-clock seconds per stage (summed over worker processes).
      wer_rows:
        (label, WerStats) rows: first pass, oracle, rescored (when refs given).
      grid:
        (point, WerStats) per ``--grid`` point, in ``Grid.points`` order; a
        point holds one value per ``grid_names`` entry.
      grid_names:
        The swept parameters (``rescorer.rescoring.grid.PARAMETERS`` names).
      best_point:
        The chosen grid point (None without --grid).
      best_scales:
        The scales of the outputs: the best point's under --grid, else the run's.
      outputs:
        Files written.
      notes:
        Extra lines for the summary (e.g. history-approximation mismatch).
      warnings:
        Lines the CLI prints as warnings (e.g. a high OOV rate).
    """

    results: Dict[str, UtteranceStats] = field(default_factory=dict)
    failures: List[Failure] = field(default_factory=list)
    lattices_read: int = 0
    files: int = 0
    unique_histories: int = 0
    timings: Timings = field(default_factory=Timings)
    wer_rows: List[Tuple[str, WerStats]] = field(default_factory=list)
    grid: List[Tuple[Point, WerStats]] = field(default_factory=list)
    grid_names: Tuple[str, ...] = ()
    best_point: Optional[Point] = None
    best_scales: Optional[Scales] = None
    outputs: List[Path] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)

    def totals(self) -> Dict[str, int]:
        """Sums of every ``UtteranceStats`` field over the successful utterances."""
        names = ("arcs", "pruned_arcs", "expanded_arcs", "histories", "queries", "tightened",
                 "words", "oov_words", "arpa_oov_words")
        return {name: sum(getattr(stats, name) for stats in self.results.values()) for name in names}

    @property
    def oov_rate(self) -> float:
        """Share of the rescored lattices' words that are OOV for the LM (0 without words)."""
        totals = self.totals()
        return totals["oov_words"] / totals["words"] if totals["words"] else 0.0

    def check_oov_rate(self) -> None:
        """Add a warning when the run's OOV rate is above ``OOV_WARN_RATE``."""
        if self.oov_rate > OOV_WARN_RATE:
            self.warnings.append(
                f"{100 * self.oov_rate:.1f}% of the lattices' words are out of the LM's vocabulary "
                f"(over {100 * OOV_WARN_RATE:.0f}%): check that lattice words and LM vocabulary use "
                f"the same case and spelling (--lowercase folds lattice words to lower case)"
            )
