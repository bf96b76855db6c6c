"""Seconds per pipeline stage, timed where the work happens.

``with stage("prune"):`` adds the block's wall-clock and CPU time (this
process, all its threads: ``time.process_time``) to the active
``Timings`` (the one a run or a worker ``activate``\\ s). Stages nest: time
inside an inner stage counts for the inner one only, so a job can time
``prune`` inside the caller's ``expand`` without double counting. Outside an
active ``Timings``, ``stage`` only runs the block.

Stages: read, prune, expand, score, search, write. A stage that no code ever
entered is reported as not measured (None), never as 0.
"""
import contextlib
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

STAGES = ("read", "prune", "expand", "score", "search", "write")

_ACTIVE: List["Timings"] = []


@dataclass
class Timings:
    """Seconds per stage of one process (a worker's are added by the parent).

    Attributes:
      seconds:
        Stage name -> wall-clock seconds, only for stages that were entered.
      cpu_seconds:
        Stage name -> CPU seconds of this process (not of other processes
        sharing the machine), for the same stages.
      total:
        Wall-clock seconds of the whole run (set by the pipeline).
    """

    seconds: Dict[str, float] = field(default_factory=dict)
    cpu_seconds: Dict[str, float] = field(default_factory=dict)
    total: float = 0.0

    def get(self, name: str) -> Optional[float]:
        """Wall-clock seconds of stage ``name``, None when it was never timed."""
        return self.seconds.get(name)

    def cpu(self, name: str) -> Optional[float]:
        """CPU seconds of stage ``name``, None when it was never timed."""
        return self.cpu_seconds.get(name)

    def add(self, other: "Timings") -> None:
        """Add another process's stage seconds (not its total) to these."""
        for mine, theirs in ((self.seconds, other.seconds), (self.cpu_seconds, other.cpu_seconds)):
            for name, seconds in theirs.items():
                mine[name] = mine.get(name, 0.0) + seconds

    def _charge(self, name: str, wall: float, cpu: float) -> None:
        """Add ``wall`` and ``cpu`` seconds to stage ``name``."""
        self.seconds[name] = self.seconds.get(name, 0.0) + wall
        self.cpu_seconds[name] = self.cpu_seconds.get(name, 0.0) + cpu

    @contextlib.contextmanager
    def activate(self) -> Iterator["Timings"]:
        """Make these the timings that ``stage`` adds to, for the block."""
        _ACTIVE.append(self)
        try:
            yield self
        finally:
            _ACTIVE.pop()


@dataclass
class _Open:
    """A stage being timed: its name and when it last (re)started (wall, CPU)."""

    name: str
    since: float
    cpu_since: float


_OPEN: List[_Open] = []


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` (exclusive of nested stages)."""
    assert name in STAGES, f"unknown stage {name!r}"
    if not _ACTIVE:
        yield
        return
    timings = _ACTIVE[-1]
    now, cpu_now = time.perf_counter(), time.process_time()
    if _OPEN:  # pause the enclosing stage
        outer = _OPEN[-1]
        timings._charge(outer.name, now - outer.since, cpu_now - outer.cpu_since)
    _OPEN.append(_Open(name, now, cpu_now))
    try:
        yield
    finally:
        now, cpu_now = time.perf_counter(), time.process_time()
        inner = _OPEN.pop()
        timings._charge(name, now - inner.since, cpu_now - inner.cpu_since)
        if _OPEN:  # resume the enclosing stage
            _OPEN[-1].since, _OPEN[-1].cpu_since = now, cpu_now
