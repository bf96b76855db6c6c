"""The compiled SLF block parser (``_slf_block``) against the numpy route it speeds up.

Wherever the compiled route accepts a block, its columns must be the numpy route's bit
for bit; wherever the numpy route refuses a block, the compiled one must refuse it too.
Checked on real lattices, on the blocks the numpy route refuses, and on random damage.
"""
import random
import shutil
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from rescorer.formats import slf, slf_columns
from rescorer.formats.slf_columns import block_values

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
NODE_KEYS = ("I", ("I",), ("t",), "W")
LINK_KEYS = ("J", ("S", "E"), ("a", "l"), "W")
BLOCK = ("J=0\tS=0\tE=1\ta=-1234.56\tl=-2.125\tp=0.5\n"
         "J=1\tS=1\tE=2\ta=-0.10\tl=0.000\tp=1e-3\n"
         "J=2\tS=0\tE=2\ta=7\tl=-13.5\tp=0.25")
NODES = "I=0\tt=0.00\tW=!SENT_START\tv=1\nI=1\tt=0.31\tW=caf\u00e9\tv=1\nI=2\tt=1.5\tW=a\tv=2"
PALETTE = list("0123456789.-+eE =\t\n\"xW") + ["\u00e9", "\x00", "\u00a0", "\x0c", "12345678901234567890"]


def numpy_values(block, lead, ints, floats, word, monkeypatch):
    with monkeypatch.context() as patch:
        patch.setattr(slf_columns, "_slf_block", None)
        return block_values(block, lead, ints, floats, word)


def native_values(block, lead, ints, floats, word):
    return slf_columns._native_values(block, 0, len(block), lead, ints, floats, word)


def same_values(native, reference):
    """The compiled route's columns equal the numpy route's (all parsed, bit for bit)."""
    assert reference is not None
    assert native.num_lines == reference.num_lines
    assert native.numbers.keys() == reference.numbers.keys()
    for key, (values, ok) in native.numbers.items():
        expected, expected_ok = reference.numbers[key]
        assert ok.all() and expected_ok.all(), key
        assert values.dtype == expected.dtype and values.tobytes() == expected.tobytes(), key
    assert native.word_list() == reference.word_list()


needs_extension = pytest.mark.skipif(slf_columns._slf_block is None,
                                     reason="package built without a C compiler")


def test_extension_is_built_where_a_compiler_is():
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        pytest.skip(f"no C compiler ({compiler}): the numpy route alone is used")
    assert slf_columns._slf_block is not None, "rescorer.formats._slf_block was not built"


@needs_extension
@pytest.mark.parametrize("block, keys", [(BLOCK, LINK_KEYS), (NODES, NODE_KEYS)])
def test_uniform_blocks_parse_alike(block, keys, monkeypatch):
    native = native_values(block, *keys)
    assert native is not None
    same_values(native, numpy_values(block, *keys, monkeypatch))


@needs_extension
def test_number_forms_parse_alike(monkeypatch):
    values = ["0", "-0", "+5", "5.", ".5", "-.5", "007.250", "123456789012345678",
              "9007199254740993", "0.1234567890123456789", "1e5", "-1.5E-3", "inf", "1_0"]
    for value in values:
        block = f"J=0 S=0 E=1 a={value}\nJ=1 S=1 E=2 a=1.25"
        native = native_values(block, *LINK_KEYS)
        reference = numpy_values(block, *LINK_KEYS, monkeypatch)
        if native is not None:
            same_values(native, reference)
        else:  # refused forms the numpy route still parses exactly
            assert reference is not None, value
        if value in ("0", "-0", "5.", ".5", "-.5", "007.250"):
            assert native is not None, value


@needs_extension
@pytest.mark.parametrize("block", [
    "J=0 S=0 E=1 a=-1 l=0\nJ=1 S=1 E=2 l=0 a=-1",
    "J=0 S=0 E=1 a=-1 l=0\n\nJ=1 S=1 E=2 a=-1 l=0",
    "J=0 S=0 E=1 a=-1 l=0\n# comment here",
    "J=0 S=0 E=1 a= l=0\nJ=1 S=1 E=2 a= l=0",
    "J=0 S=0 E=1 a=-1 a=0\nJ=1 S=1 E=2 a=-1 a=0",
    "J=0 S=0 END=1 a=-1\nJ=1 S=1 END=2 a=-1",
    "J=0 S=0 E=1 W=\"x y\"\nJ=1 S=1 E=2 W=\"x y\"",
    "J=0 S=0 E=1\x0ca=-1\nJ=1 S=1 E=2\x0ca=-1",
    "J=0 S=0 E=1 I=3\nJ=1 S=1 E=2 I=4",
    " J=0 S=0 E=1\n J=1 S=1 E=2",
    "J=0 S=0 E=1 junk\nJ=1 S=1 E=2 junk",
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 b=1",
    "J=0 S=0 E=1 W=a\u00a0b\nJ=1 S=1 E=2 W=c",
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 a=1\x00",
    "J=0 S=0 E=1 W=" + "x" * 257,
    "I=0 S=0 E=1",
    "",
])
def test_blocks_the_numpy_route_refuses_are_refused(block, monkeypatch):
    assert numpy_values(block, *LINK_KEYS, monkeypatch) is None
    assert native_values(block, *LINK_KEYS) is None


@needs_extension
@pytest.mark.parametrize("seed", range(4))
def test_damaged_blocks_agree(seed, monkeypatch):
    generator = random.Random(seed)
    for _ in range(500):
        base, keys = generator.choice([(BLOCK, LINK_KEYS), (NODES, NODE_KEYS)])
        text = list(base)
        for _ in range(generator.randint(1, 3)):
            position = generator.randrange(len(text) + 1)
            action = generator.random()
            if action < 0.4 and text:
                del text[min(position, len(text) - 1)]
            elif action < 0.7:
                text.insert(position, generator.choice(PALETTE))
            elif text:
                text[min(position, len(text) - 1)] = generator.choice(PALETTE)
        block = "".join(text).rstrip()
        native = native_values(block, *keys)
        reference = numpy_values(block, *keys, monkeypatch)
        if native is not None:
            same_values(native, reference)


@needs_extension
@pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")
def test_real_lattices_take_the_compiled_route(monkeypatch):
    files = (sorted((DATA / "asr-dev" / "lat").glob("*.slf.gz"))[:12]
             + sorted((DATA / "asr-dev-ptb3g" / "lat").glob("*.slf.gz"))[:6]
             + sorted((DATA / "slf-samples").rglob("*.lat*")))
    assert len(files) > 18
    accepted = 0
    for path in files:
        text = slf.read_text(path)
        nodes_start = text.find("\nI=") + 1
        links_start = text.find("\nJ=", nodes_start) + 1
        blocks = [(text[nodes_start:links_start].rstrip(), NODE_KEYS) if nodes_start else None,
                  (text[links_start:].rstrip(), LINK_KEYS)]
        for block, keys in filter(None, blocks):
            native = native_values(block, *keys)
            if native is not None:
                same_values(native, numpy_values(block, *keys, monkeypatch))
                accepted += 1
    assert accepted >= 2 * 18  # every asr-dev* block; the samples as their layouts allow


@needs_extension
@pytest.mark.parametrize("block", [BLOCK, NODES])
def test_a_block_inside_a_text_reads_as_its_slice(block, monkeypatch):
    keys = LINK_KEYS if block is BLOCK else NODE_KEYS
    text = "VERSION=1.0\nN=3 L=3\n" + block + "\n\n"
    start = text.index(block)
    inside = block_values(text, *keys, (start, start + len(block)))
    same_values(inside, numpy_values(block, *keys, monkeypatch))
    with pytest.raises(ValueError):  # bounds beyond the text
        slf_columns._slf_block.block_values(text.encode(), 5, len(text.encode()) + 1, *keys)
    if not text.isascii():
        with pytest.raises(TypeError):  # only an ASCII str is read in place
            slf_columns._slf_block.block_values(text, 0, len(text), *keys)
