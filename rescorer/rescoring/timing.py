"""Seconds per pipeline stage, timed where the work happens.

``with stage("prune"):`` adds the block's wall-clock time to the active
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
    """Wall-clock seconds per stage of one process (a worker's are added by the parent).

    Attributes:
      seconds:
        Stage name -> seconds, only for stages that were entered.
      total:
        Wall-clock seconds of the whole run (set by the pipeline).
    """

    seconds: Dict[str, float] = field(default_factory=dict)
    total: float = 0.0

    def get(self, name: str) -> Optional[float]:
        """Seconds of stage ``name``, None when it was never timed."""
        return self.seconds.get(name)

    def add(self, other: "Timings") -> None:
        """Add another process's stage seconds (not its total) to these."""
        for name, seconds in other.seconds.items():
            self.seconds[name] = self.seconds.get(name, 0.0) + seconds

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
    """A stage being timed: its name and when it last (re)started."""

    name: str
    since: float


_OPEN: List[_Open] = []


@contextlib.contextmanager
def stage(name: str) -> Iterator[None]:
    """Time the block as stage ``name`` (exclusive of nested stages)."""
    assert name in STAGES, f"unknown stage {name!r}"
    if not _ACTIVE:
        yield
        return
    timings = _ACTIVE[-1]
    now = time.perf_counter()
    if _OPEN:  # pause the enclosing stage
        outer = _OPEN[-1]
        timings.seconds[outer.name] = timings.seconds.get(outer.name, 0.0) + now - outer.since
    _OPEN.append(_Open(name, now))
    try:
        yield
    finally:
        now = time.perf_counter()
        inner = _OPEN.pop()
        timings.seconds[name] = timings.seconds.get(name, 0.0) + now - inner.since
        if _OPEN:  # resume the enclosing stage
            _OPEN[-1].since = now
