"""Defaults shared by ``fprescore rescore`` and ``RescoreConfig`` (imports no torch)."""

# Lattices per work unit. Each graph sweep costs a fixed overhead per level of the
# unit's deepest lattice, shared by all its lattices: on asr-dev (240 lattices, beam 8)
# 64 cut the non-LM CPU by a fifth against 16 and 128 gained nothing more
# (docs/RESULTS.md, session 9).
DEFAULT_BATCH_SIZE = 64
