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
