"""``wer_grid.png`` of a ``--grid`` sweep (needs matplotlib, optional).

A line plot of WER against one parameter (1-D grids), or a heat map over two
(``HeatMap``: 2-D grids, and 2-D slices of larger ones).
"""
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple, Union

from rescorer.atomic import atomic_save

ANNOTATE_CELLS = 400  # heat maps with at most this many cells get each cell's WER written in


@dataclass(frozen=True)
class HeatMap:
    """A 2-D slice of a grid's WER, for the heat map.

    Attributes:
      x_name / y_name:
        The parameters on the columns / rows.
      x_values / y_values:
        Their values, ascending.
      wers:
        ``wers[row][column]``: WER in percent at (y_values[row], x_values[column]).
      best:
        (column, row) of the best point.
      fixed:
        The other parameters at the best point's values (empty for a 2-D grid).
    """

    x_name: str
    x_values: List[float]
    y_name: str
    y_values: List[float]
    wers: List[List[float]]
    best: Tuple[int, int]
    fixed: Dict[str, float]


def plotting_available() -> bool:
    """True when matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def _figure(size: Tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` on the display-free Agg backend."""
    import matplotlib

    matplotlib.use("Agg")  # No display needed.
    from matplotlib.figure import Figure

    return Figure(figsize=size, dpi=100)


def plot_wer_grid(
    path: Union[str, Path],
    values: Sequence[float],
    wers: Sequence[float],
    best_value: float,
    x_label: str = "LM scale",
) -> bool:
    """Save a PNG of WER (%) against one swept parameter, the best value marked.

    Args:
      path:
        Destination PNG, written atomically.
      values:
        The swept values, ascending.
      wers:
        WER in percent for each value.
      best_value:
        The chosen value, drawn as a vertical line.
      x_label:
        The parameter's name.

    Returns:
      True if the plot was written, False if matplotlib is not installed.
    """
    if not plotting_available():
        return False
    figure = _figure((5, 3.5))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(list(values), list(wers), marker="o")
    axes.axvline(best_value, color="grey", linestyle="--", label=f"best {best_value:g}")
    axes.set_xlabel(x_label)
    axes.set_ylabel("WER (%)")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_save(path, lambda handle: figure.savefig(handle, format="png"))
    return True


def plot_wer_heat_map(path: Union[str, Path], heat: HeatMap) -> bool:
    """Save a PNG heat map of WER (%) over two parameters, the best point marked.

    Cells are annotated with their WER when there are at most ``ANNOTATE_CELLS``;
    the title names the best point and, for a slice of a larger grid, the values
    the other parameters are held at.

    Returns:
      True if the plot was written, False if matplotlib is not installed.
    """
    if not plotting_available():
        return False
    columns, rows = len(heat.x_values), len(heat.y_values)
    figure = _figure((max(5.0, 1.0 + 0.6 * columns), max(4.0, 1.5 + 0.4 * rows)))
    axes = figure.add_subplot(1, 1, 1)
    image = axes.imshow(heat.wers, origin="lower", aspect="auto", cmap="viridis_r")
    figure.colorbar(image, ax=axes, label="WER (%)")
    axes.set_xticks(range(columns))
    axes.set_xticklabels([f"{value:g}" for value in heat.x_values], rotation=45)
    axes.set_yticks(range(rows))
    axes.set_yticklabels([f"{value:g}" for value in heat.y_values])
    axes.set_xlabel(heat.x_name)
    axes.set_ylabel(heat.y_name)
    if columns * rows <= ANNOTATE_CELLS:
        low, high = image.norm.vmin, image.norm.vmax
        for row, line in enumerate(heat.wers):
            for column, wer in enumerate(line):
                bright = high == low or (wer - low) / (high - low) < 0.5  # viridis_r: low WER is light
                axes.text(column, row, f"{wer:.1f}", ha="center", va="center", fontsize=7,
                          color="black" if bright else "white")
    from matplotlib.patches import Rectangle

    column, row = heat.best
    axes.add_patch(Rectangle((column - 0.5, row - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
    best = f"{heat.y_name}={heat.y_values[row]:g} {heat.x_name}={heat.x_values[column]:g}"
    title = f"WER (%); best {best}: {heat.wers[row][column]:.2f}%"
    if heat.fixed:
        held = " ".join(f"{name}={value:g}" for name, value in heat.fixed.items())
        title += f"\nother parameters at their best values: {held}"
    axes.set_title(title, fontsize=9)
    figure.tight_layout()
    atomic_save(path, lambda handle: figure.savefig(handle, format="png"))
    return True
