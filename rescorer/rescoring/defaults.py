"""Defaults shared by ``fprescore rescore`` and ``RescoreConfig`` (imports no torch)."""

# Lattices per work unit. Each graph sweep costs a fixed overhead per level of the
# unit's deepest lattice, shared by all its lattices: on asr-dev (240 lattices, beam 8)
# 64 cut the non-LM CPU by a fifth against 16 (session 9); 128 and 256 cut a run's CPU
# by a further 2% and 4% (expansion and the LM's chunks, session 10) for two and four
# times a unit's memory (docs/RESULTS.md).
DEFAULT_BATCH_SIZE = 64
