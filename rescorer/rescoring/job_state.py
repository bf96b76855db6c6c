"""The state a batch job passes between its lattice-mode and n-best-mode halves."""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from rescorer.algorithms.topsort import LevelSchedule
from rescorer.errors import RescorerError
from rescorer.lattice.batch import LatticeBatch
from rescorer.lattice.symbols import SymbolTable
from rescorer.rescoring.report import UtteranceStats
from rescorer.rescoring.tokens import TokenSource


@dataclass
class BatchOutcome:
    """What a batch job did.

    Attributes:
      results:
        Utterance id -> sizes, in batch order, for the utterances handed to the collector.
      failures:
        (utterance index in the input batch, error) per failed utterance.
      unique_histories:
        Distinct histories run through the LM.
    """

    results: Dict[str, UtteranceStats] = field(default_factory=dict)
    failures: List[Tuple[int, RescorerError]] = field(default_factory=list)
    unique_histories: int = 0


@dataclass
class LiveBatch:
    """The lattices still in the job: their batch, schedule and per-lattice data."""

    batch: LatticeBatch
    schedule: LevelSchedule
    tokens: TokenSource  # LM tokens by arc id (``of(arcs)``)
    origin: List[int]  # input index of each lattice
    paths: List[Optional[Path]]
    symbols: List[SymbolTable]


@dataclass
class ReferenceExtras:
    """First-pass words and oracle figures per live lattice (references only)."""

    first_pass: Optional[List[List[str]]] = None
    references: Dict[int, List[int]] = field(default_factory=dict)  # live index -> word ids
    oracle: Dict[int, Tuple[int, int]] = field(default_factory=dict)
