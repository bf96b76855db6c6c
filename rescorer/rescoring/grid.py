"""``--grid``: the tuning sweep over one or more score parameters.

``--grid NAME=SPEC`` (repeatable) sweeps the cartesian product of the given
parameters; a bare ``--grid SPEC`` sweeps the LM scale. SPEC is
``start:stop:step`` (stop included) or a comma list. ``PARAMETERS`` is the one
table from grid names to ``Scales`` fields; a point is applied to the run's
scales with ``dataclasses.replace``, so every other weight stays as configured.

Points are tuples of values in axis order (the order of the ``--grid``
options), enumerated as ``itertools.product`` does: the first axis varies
slowest. The best point has the fewest errors; ties go to the point whose
values are smallest, compared axis by axis in that order (for a bare LM-scale
grid: the smallest scale, as before). The rule depends only on the points'
values and error counts, so shards + ``merge`` pick the same point.

Pruning, the first-pass row and ``--mode nbest``'s first-pass list use the
configured scales, not the grid's: every point searches the same material.
"""
import itertools
import math
from dataclasses import dataclass, fields, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from rescorer.errors import ConfigError
from rescorer.outputs.plots import HeatMap
from rescorer.rescoring.combine import Scales

MAX_POINTS = 10_000  # grid points of one run (the product over every axis)

Point = Tuple[float, ...]  # one value per axis, in axis order


@dataclass(frozen=True)
class Parameter:
    """A sweepable parameter: its ``Scales`` field and the values it may take."""

    field: str
    low: float = -math.inf
    high: float = math.inf


# Grid name -> parameter: the one home of the name <-> Scales field mapping.
PARAMETERS: Dict[str, Parameter] = {
    "lm-scale": Parameter("lm"),
    "word-penalty": Parameter("word_penalty"),
    "ngram-scale": Parameter("ngram"),
    "lambda": Parameter("interpolation", 0.0, 1.0),
    "arpa-scale": Parameter("arpa"),
}
ALIASES = {"lm": "lm-scale", "wp": "word-penalty", "ngram": "ngram-scale"}
BARE = "lm-scale"  # the parameter of a bare --grid SPEC


@dataclass(frozen=True)
class GridAxis:
    """One swept parameter.

    Attributes:
      name:
        Its name in ``PARAMETERS`` (aliases resolved).
      values:
        The values swept, in the order given (start:stop:step ascending).
    """

    name: str
    values: Tuple[float, ...]

    @property
    def field(self) -> str:
        """The ``Scales`` field this axis sets."""
        return PARAMETERS[self.name].field


@dataclass(frozen=True)
class Grid:
    """The parameters of a ``--grid`` sweep; its points are their cartesian product.

    Attributes:
      axes:
        The swept parameters, in ``--grid`` option order, each named once.
    """

    axes: Tuple[GridAxis, ...]

    @property
    def names(self) -> Tuple[str, ...]:
        """The axes' parameter names."""
        return tuple(axis.name for axis in self.axes)

    def points(self) -> List[Point]:
        """Every point, the first axis varying slowest."""
        return list(itertools.product(*(axis.values for axis in self.axes)))

    def scales_at(self, scales: Scales, point: Point) -> Scales:
        """``scales`` with the point's values in their fields."""
        return replace(scales, **{axis.field: value for axis, value in zip(self.axes, point)})

    def named(self, point: Point) -> Dict[str, float]:
        """``{name: value}`` of a point, in axis order."""
        return dict(zip(self.names, point))

    def describe(self, point: Point) -> str:
        """``"lm-scale=1.5 word-penalty=-0.5"``."""
        return " ".join(f"{name}={value:g}" for name, value in zip(self.names, point))

    def to_options(self) -> Dict[str, List[float]]:
        """``{name: values}`` for ``summary.json``'s options (read back by ``from_options``)."""
        return {axis.name: list(axis.values) for axis in self.axes}

    @classmethod
    def from_options(cls, options: Any) -> "Grid":
        """The grid of a ``to_options`` object; a plain list is an LM-scale grid (older shards)."""
        if isinstance(options, (list, tuple)):
            options = {BARE: options}
        return cls(tuple(GridAxis(name, tuple(float(value) for value in values))
                         for name, values in options.items()))


def best_point(rows: Sequence[Tuple[Point, int]]) -> Point:
    """The point with the fewest errors; ties: smallest values, axis by axis (module docstring).

    Args:
      rows:
        (point, errors) for every point swept.
    """
    return min(rows, key=lambda row: (row[1], row[0]))[0]


def parse_grid(specs: Sequence[str]) -> Grid:
    """The grid of the ``--grid`` options.

    Examples:
      ``["0:1:0.5"]`` -> lm-scale 0, 0.5, 1; ``["lm=0.5,1", "wp=-1:0:0.5"]`` -> 2 x 3 points.

    Raises:
      ConfigError: an unknown name, a parameter repeated, a name whose ``Scales`` field this
        build lacks, a malformed or out-of-range SPEC, or over ``MAX_POINTS`` points.
    """
    if not specs:
        raise ConfigError("--grid needs at least one [NAME=]SPEC")
    available = {item.name for item in fields(Scales)}
    axes: Dict[str, Tuple[float, ...]] = {}
    for text in specs:
        name, spec = text.split("=", 1) if "=" in text else (BARE, text)
        name = ALIASES.get(name.strip(), name.strip())
        if name not in PARAMETERS:
            known = ", ".join([*PARAMETERS, *ALIASES])
            raise ConfigError(f"--grid {text!r}: unknown parameter {name!r} (expected one of {known})")
        if PARAMETERS[name].field not in available:
            raise ConfigError(f"--grid {text!r}: {name} sets Scales.{PARAMETERS[name].field}, "
                              f"which this version does not have")
        if name in axes:
            raise ConfigError(f"--grid {text!r}: {name} is swept twice (give each parameter once)")
        axes[name] = _values(text, spec, PARAMETERS[name])
    count = math.prod(len(values) for values in axes.values())
    if count > MAX_POINTS:
        raise ConfigError(f"--grid has {count:,} points (at most {MAX_POINTS:,})")
    return Grid(tuple(GridAxis(name, values) for name, values in axes.items()))


def _values(text: str, spec: str, parameter: Parameter) -> Tuple[float, ...]:
    """The values of one SPEC (``text`` is the whole option, for messages)."""
    try:
        if ":" not in spec:
            values = [float(part) for part in spec.split(",") if part.strip()]
        else:
            start, stop, step = (float(part) for part in spec.split(":"))
            if not all(map(math.isfinite, (start, stop, step))):
                raise ConfigError(f"--grid {text!r}: start, stop and step must be finite")
            if not step > 0 or stop < start:
                raise ConfigError(f"--grid {text!r}: need step > 0 and stop >= start")
            count = int(math.floor((stop - start) / step + 1e-9)) + 1
            if count > MAX_POINTS:  # before building the list
                raise ConfigError(f"--grid {text!r} has {count:,} points (at most {MAX_POINTS:,})")
            values = [round(start + index * step, 10) for index in range(count)]
    except ValueError as error:
        raise ConfigError(
            f"--grid {text!r} is not [NAME=]start:stop:step or [NAME=]a comma list of numbers"
        ) from error
    if not values:
        raise ConfigError(f"--grid {text!r} has no values")
    if not all(map(math.isfinite, values)):
        raise ConfigError(f"--grid {text!r}: every value must be finite")
    if len(set(values)) != len(values):
        raise ConfigError(f"--grid {text!r} repeats a value")
    outside = [value for value in values if not parameter.low <= value <= parameter.high]
    if outside:
        raise ConfigError(f"--grid {text!r}: values must lie in [{parameter.low:g}, {parameter.high:g}] "
                          f"(got {outside[0]:g})")
    return tuple(values)


def heat_map(grid: Grid, wers: Dict[Point, float], best: Point) -> Optional[HeatMap]:
    """The slice over the two most varied axes (most values; ties: earlier axis), the others
    at the best point's values; None for a 1-D grid."""
    if len(grid.axes) < 2:
        return None
    order = sorted(range(len(grid.axes)), key=lambda index: (-len(grid.axes[index].values), index))
    y_axis, x_axis = sorted(order[:2])  # keep the option order: the earlier axis on the rows
    xs, ys = sorted(grid.axes[x_axis].values), sorted(grid.axes[y_axis].values)

    def at(x: float, y: float) -> Point:
        point = list(best)
        point[x_axis], point[y_axis] = x, y
        return tuple(point)

    fixed = {axis.name: best[index] for index, axis in enumerate(grid.axes) if index not in (x_axis, y_axis)}
    return HeatMap(grid.axes[x_axis].name, xs, grid.axes[y_axis].name, ys,
                   [[wers[at(x, y)] for x in xs] for y in ys],
                   (xs.index(best[x_axis]), ys.index(best[y_axis])), fixed)
