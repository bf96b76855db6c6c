"""The package's one compiled module, next to pyproject.toml (which holds everything else).

``rescorer.formats._slf_block`` parses uniform SLF blocks in one pass of C (asr-dev's
blocks: 0.23 CPU s against 0.95 s for the numpy route in a profile; the whole read 1.8x
faster, ``bench/read_speed.py``). It is optional: without a C compiler the install still
succeeds and the numpy route reads the same values.
"""
from setuptools import Extension, setup

setup(ext_modules=[Extension("rescorer.formats._slf_block", ["rescorer/formats/_slf_block.c"],
                             extra_compile_args=["-O2"], optional=True)])
