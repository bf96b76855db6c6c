"""WER-versus-LM-scale plot of a ``--grid`` sweep (needs matplotlib, optional)."""
import importlib.util
from pathlib import Path
from typing import Sequence, Union

from rescorer.atomic import atomic_save


def plotting_available() -> bool:
    """True when matplotlib can be imported."""
    return importlib.util.find_spec("matplotlib") is not None


def plot_wer_grid(
    path: Union[str, Path],
    lm_scales: Sequence[float],
    wers: Sequence[float],
    best_scale: float,
) -> bool:
    """Save a PNG of WER (%) against the LM scale, the best scale marked.

    Args:
      path:
        Destination PNG, written atomically.
      lm_scales:
        The swept LM scales, ascending.
      wers:
        WER in percent for each scale.
      best_scale:
        The chosen scale, drawn as a vertical line.

    Returns:
      True if the plot was written, False if matplotlib is not installed.
    """
    if not plotting_available():
        return False
    import matplotlib

    matplotlib.use("Agg")  # No display needed.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5, 3.5), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(list(lm_scales), list(wers), marker="o")
    axes.axvline(best_scale, color="grey", linestyle="--", label=f"best {best_scale:g}")
    axes.set_xlabel("LM scale")
    axes.set_ylabel("WER (%)")
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    atomic_save(path, lambda handle: figure.savefig(handle, format="png"))
    return True
