"""The vectorised field parser equals Python's int() and float(), bit for bit."""
import random
import struct

import numpy as np
import pytest

from rescorer.formats.text_fields import (has_control_bytes, parse_floats, parse_ints,
                                          token_bounds)

EDGE_FLOATS = [
    "0", "-0", "-0.0", "+0.0", ".5", "5.", "-.5", "+.5e-3", "1e22", "1e23", "1e-22", "1e-23",
    "9007199254740992", "9007199254740993", "9007199254740993.0", "123456789012345678",
    "1234567890123456789", "0.1", "0.30000000000000004", "3.14", "-34.81", "0.000", "2.5e+1",
    "1E5", "1.e5", "4.9e-324", "5e-324", "2.2250738585072014e-308", "1.7976931348623157e308",
    "1e400", "-1e400", "1e-400", "inf", "-inf", "Infinity", "nan", "-NaN", "1_0", "1_0.5",
    "00000000000000000000001.5", "1.000000000000000000001", "0.0000000000000000000000001",
    "\u0661\u0662", "E5", "1e", "1e+", "1e+-5", "-", "+", ".", "..", "1.2.3", "1e5.5", "--1",
    "+-1", "0x10", "1,5", "abc", "1e99999", "\u00e9", "1\x005", "12345678901234567890123456789012345",
]
EDGE_INTS = ["0", "7", "007", "-5", "+3", "1_0", "x", "", "99999999999999999999",
             "9223372036854775807", "9223372036854775808", "-9223372036854775808",
             "123456789012345678", "1234567890123456789", "\u0663", "1.0", "1e3", "1\x002"]


def bounds(tokens):
    """The buffer of ``tokens`` joined by spaces and each token's byte range."""
    encoded = [token.encode() for token in tokens]
    lengths = np.array([len(token) for token in encoded], dtype=np.int64)
    ends = np.cumsum(lengths + 1) - 1
    chars = np.frombuffer(b" ".join(encoded), dtype=np.uint8)
    return chars, ends - lengths, ends


def python_float(text):
    try:
        return float(text)
    except ValueError:
        return None


def python_int(text):
    try:
        value = int(text)
    except ValueError:
        return None
    return value if -2**63 <= value < 2**63 else None


def assert_floats_match(tokens):
    values, ok = parse_floats(*bounds(tokens))
    for token, value, good in zip(tokens, values.tolist(), ok.tolist()):
        expected = python_float(token)
        assert good == (expected is not None), token
        if expected is not None and expected == expected:
            assert struct.pack("<d", value) == struct.pack("<d", expected), token
        elif expected is not None:
            assert value != value, token  # nan


def test_edge_floats_match_python_bit_for_bit():
    assert_floats_match(EDGE_FLOATS)
    values, ok = parse_floats(*bounds(["-0", "-34.81", "1e23", "nan"]))
    assert ok.all() and np.signbit(values[0]) and values[1] == -34.81 and values[2] == 1e23


def random_floats(rng, count):
    tokens = []
    for _ in range(count):
        kind = rng.random()
        if kind < 0.3:
            tokens.append(f"{rng.uniform(-1000, 1000):.{rng.randint(0, 8)}f}")
        elif kind < 0.5:  # any double's repr, subnormals and huge exponents included
            tokens.append(repr(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]))
        elif kind < 0.65:
            tokens.append(f"{rng.uniform(-1, 1) * 10 ** rng.randint(-30, 30):.{rng.randint(0, 16)}e}")
        elif kind < 0.8:
            tokens.append(str(np.float32(rng.uniform(-500, 500))))  # Kaldi's shortest float32 form
        else:  # junk made of number characters
            tokens.append("".join(rng.choice("0123456789.eE+-") for _ in range(rng.randint(1, 9))))
    return tokens


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_floats_match_python_bit_for_bit(seed):
    assert_floats_match(random_floats(random.Random(seed), 20000))


def test_ints_match_python():
    rng = random.Random(3)
    tokens = EDGE_INTS[:7] + EDGE_INTS[8:] + [str(rng.randint(0, 10 ** rng.randint(1, 19)))
                                               for _ in range(5000)]
    values, ok = parse_ints(*bounds(tokens))
    for token, value, good in zip(tokens, values.tolist(), ok.tolist()):
        expected = python_int(token)
        assert good == (expected is not None), token
        assert value == (expected if expected is not None else 0), token


def test_token_bounds_single_and_runs_of_separators():
    for text in (b"a bb\tccc\nd", b"  a  bb\t\tccc \n d  ", b"x", b" \n "):
        chars = np.frombuffer(text, dtype=np.uint8)
        starts, ends = token_bounds(chars)
        assert [text[s:e] for s, e in zip(starts.tolist(), ends.tolist())] == text.split()


def test_control_bytes():
    assert not has_control_bytes(np.frombuffer(b"a\tb\nc d", dtype=np.uint8))
    for byte in (b"\x00", b"\r", b"\x0b", b"\x0c", b"\x1c"):
        assert has_control_bytes(np.frombuffer(b"a b" + byte, dtype=np.uint8))
