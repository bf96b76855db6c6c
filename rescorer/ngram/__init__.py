"""Back-off n-gram LMs from ARPA files, scored with batched tensor lookups.

``arpa.py`` streams the file, ``tables.py`` builds sorted int64 keys per order,
``model.py`` has ``NgramLM`` and its ``ArpaVocabulary``, ``cache.py`` loads with
an optional binary cache, ``lattice.py`` scores the arcs of a history-expanded
lattice, ``interpolate.py`` combines two LMs per token.
"""
