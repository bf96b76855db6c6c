"""The package's one compiled module, next to pyproject.toml (which holds everything else).

``rescorer.formats._slf_block`` parses uniform SLF blocks in one pass of C (4x the
numpy path on asr-dev). It is optional: without a C compiler the install still
succeeds and the numpy path reads the same values.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("rescorer.formats._slf_block", ["rescorer/formats/_slf_block.c"],
                             extra_compile_args=["-O2"], optional=True)])
