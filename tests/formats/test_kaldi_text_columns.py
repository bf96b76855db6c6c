"""The vectorised Kaldi text path equals the line parser: same FST, same errors."""
import dataclasses
import random
from pathlib import Path

import pytest
import torch

from rescorer.errors import InputFormatError
from rescorer.formats.kaldi_text import parse_text_fst
from rescorer.formats.kaldi_text_columns import _parse_fast, parse_text_entry

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "kaldi-samples"


def line_parser(raw: bytes, first_line: int = 2):
    """What the line parser gives for an entry's bytes: the FST or the error message."""
    lines = raw.decode("utf-8").split("\n")[1:]
    if lines and not lines[-1].strip():
        lines.pop()
    try:
        return parse_text_fst(lines, first_line)
    except InputFormatError as error:
        return str(error)


def outcome(raw: bytes, first_line: int = 2):
    try:
        return parse_text_entry(raw, first_line)
    except InputFormatError as error:
        return str(error)


def assert_same(fast, slow):
    if isinstance(slow, str) or isinstance(fast, str):
        assert fast == slow
        return
    for field in dataclasses.fields(slow):
        a, b = getattr(fast, field.name), getattr(slow, field.name)
        assert (torch.equal(a, b) and a.dtype == b.dtype) if isinstance(a, torch.Tensor) else a == b, \
            field.name


@pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")
def test_real_text_lattice_takes_the_fast_path_and_matches():
    raw = (DATA / "lat.txt.ark").read_bytes()
    raw = raw[raw.index(b"\n"):raw.index(b"\n\n") + 1]
    assert _parse_fast(raw[1:].rstrip(b" \t\n")) is not None
    fst = parse_text_entry(raw, 2)
    assert fst.num_arcs > 2000 and fst.arc_tids.numel() > 100000
    assert_same(fst, line_parser(raw))


def random_entry(rng: random.Random, compact: bool) -> bytes:
    num_states = rng.randint(2, 30)
    lines = []
    for state in range(num_states):
        for _ in range(rng.randint(0, 3)):
            dst, label = rng.randint(0, num_states - 1), rng.randint(0, 500)
            weight = f"{rng.uniform(-50, 50):.{rng.randint(0, 5)}f},{rng.uniform(-900, 0):.4g}"
            if compact:
                ids = "_".join(str(rng.randint(0, 9000)) for _ in range(rng.randint(0, 6)))
                weight += "," + ids if ids or rng.random() < 0.5 else ""
                fields = [str(state), str(dst), str(label)] + ([weight] if rng.random() < 0.9 else [])
            else:
                fields = [str(state), str(dst), str(label), str(rng.randint(0, 500))] + \
                    ([weight] if rng.random() < 0.9 else [])
            lines.append(rng.choice(["\t", " "]).join(fields))
        if rng.random() < 0.3:
            lines.append(f"{state}" if rng.random() < 0.5 else f"{state}\t{rng.uniform(0, 5):.3f},0"
                         + (",1_2" if compact and rng.random() < 0.5 else ""))
    if not lines:
        lines = ["0"]
    return ("\n" + "\n".join(lines) + "\n").encode()


@pytest.mark.parametrize("compact", [True, False])
def test_random_entries_match_the_line_parser(compact):
    rng = random.Random(4 + compact)
    valid = 0
    for _ in range(200):
        raw = random_entry(rng, compact)
        slow = line_parser(raw)
        if not isinstance(slow, str):  # valid: the fast path reads it
            assert _parse_fast(raw[1:].rstrip(b" \t\n")) is not None
            valid += 1
        assert_same(outcome(raw), slow)
    assert valid > 150


DAMAGE = ["0 1 2 3,4,5_x", "0 1 2 3,4,5__6", "0 1 2 3,4,_5", "0 1 2 3;4", "0 1 2 3,4,5,6",
          "0 1 +2 3,4", "0 1 2 3,inf", "0 1 2 1_0,4", "0 1 2 3 4 5", "", "0 1 2 3,4\r",
          "0 1 2 ,4", "0 1 2 3,", "0 99999999999 2", "0 1 2 3,4,99999999999", "0 1 2_3",
          "0 1 2 3 4,5", "0 1 \u00e9 3,4", "0 1 2 3,4,5_", "-1 1 2", "0 1 2 3 4 5,6,7"]


@pytest.mark.parametrize("damage", DAMAGE)
def test_damaged_lines_give_the_line_parsers_error(damage):
    raw = f"\n0 1 5 1.5,2.5,3_4\n1 2 6 0,1\n{damage}\n2 0.5,0\n".encode()
    fast, slow = outcome(raw, 7), line_parser(raw, 7)
    assert_same(fast, slow)
