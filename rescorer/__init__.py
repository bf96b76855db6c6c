"""fprescore: fixed-point (Jacobi) recurrent LMs and exact lattice rescoring.

Dimension legend used in every docstring:

    B  batch (rows of a training batch)
    T  tokens (time steps of a segment or sentence)
    K  Jacobi iterations = history length in tokens
    E  embedding size
    H  hidden size
    L  recurrent layers
    V  vocabulary size
    U  utterances (lattices)
    S  states of a lattice
    A  arcs of a lattice
    N  rows of a flat batch (histories, paths)

Ragged structures use k2's axes notation, e.g. ``[utt][state][arc]``.
"""

__version__ = "0.1.0"

# The library API (README "Library API"), imported on first use so that
# ``import rescorer`` stays cheap (no torch until a name is asked for).
_LAZY = {
    "LatticeBatch": "rescorer.lattice.batch",
    "read_lattices": "rescorer.formats.read",
    "read_batch": "rescorer.formats.read",
    "shortest_paths": "rescorer.algorithms.best_path",
    "total_scores": "rescorer.algorithms.best_path",
    "rescore_batch": "rescorer.rescoring.api",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    """``rescorer.LatticeBatch`` etc.: import the defining module when first asked."""
    if name not in _LAZY:
        raise AttributeError(f"module 'rescorer' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
