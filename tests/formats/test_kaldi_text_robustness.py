"""Issue 8 defects of the Kaldi text reader: gzip damage, int overflow, huge state ids.

Each test goes through the public reading API (``iter_lattices``) or the CLI, and
failed on the reader before the rewrite (EOFError/BadGzipFile tracebacks, an
OverflowError, a lattice of 10^11 states, a corrupt k2 file with exit 0).
"""
import gzip
import time
import warnings

import pytest
from typer.testing import CliRunner

from rescorer.cli.app import app
from rescorer.errors import EXIT_ERROR, Failure, InputFormatError
from rescorer.formats.detect import iter_lattices
from rescorer.lattice.symbols import SymbolTable

# u1: 0 -4-> 1 -5-> 2, final 2; u2: 0 -7-> 1, final 1.
GOOD = "u1\n0 1 4 1.5,10,3_4\n1 2 5 0.5,3,7\n2\n\nu2\n0 1 7 2,4,\n1\n\n"


def table(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("".join(f"w{i} {i}\n" if i else "<eps> 0\n" for i in range(10)))
    return SymbolTable.from_file(path)


def read_all(tmp_path, path):
    return list(iter_lattices([path], table(tmp_path)))


def failure_then_good(items):
    """(the one failure, the one lattice) of a file read as [lattices..., failures...]."""
    failures = [item for item in items if isinstance(item, Failure)]
    lattices = [item for item in items if not isinstance(item, Failure)]
    assert len(failures) == 1 and len(lattices) == 1
    return failures[0], lattices[0]


def test_truncated_gzip_is_one_failure_naming_the_file(tmp_path):
    entries = "".join(f"u{i}\n0 1 {1 + i % 9} {i * 0.37:.3f},{i * 1.91:.3f},{i}_{i * 7}\n1\n\n"
                      for i in range(2000))  # varied, so that half the gzip holds many entries
    data = gzip.compress(entries.encode())
    path = tmp_path / "lat.txt.gz"
    path.write_bytes(data[:len(data) // 2])  # EOFError inside gzip before the rewrite
    items = read_all(tmp_path, path)
    failures = [item for item in items if isinstance(item, Failure)]
    assert len(failures) == 1 and isinstance(failures[0].error, InputFormatError)
    # The entry running into the break is the failure; the ones before it were read.
    cut = failures[0].utt_id
    assert str(failures[0].error).startswith(f"{path}: utterance {cut}: cannot read past byte ")
    assert "EOFError" in str(failures[0].error)
    assert [item.utt_id for item in items] == [f"u{i}" for i in range(int(cut[1:]) + 1)]


def test_gzip_with_flipped_bytes_is_one_failure(tmp_path):
    data = bytearray(gzip.compress(GOOD.encode() * 50))
    data[-6] ^= 0xFF  # the CRC/length trailer: BadGzipFile at the end before the rewrite
    path = tmp_path / "lat.txt.gz"
    path.write_bytes(bytes(data))
    items = read_all(tmp_path, path)
    assert isinstance(items[-1], Failure) and items[-1].utt_id == "u2"  # not trusted
    assert all(not isinstance(item, Failure) for item in items[:-1])
    assert "BadGzipFile" in str(items[-1].error) and str(path) in str(items[-1].error)


@pytest.mark.parametrize("state", ["99999999999999999999", "2147483648", "-3", "1e25"])
def test_out_of_range_state_ids_fail_that_utterance_only(tmp_path, state):
    path = tmp_path / "lat.txt"
    path.write_text(GOOD.replace("1 2 5 0.5,3,7", f"1 {state} 5 0.5,3,7"))
    first, second = failure_then_good(read_all(tmp_path, path))
    assert first.utt_id == "u1" and second.utt_id == "u2"
    assert str(first.error).startswith(f"{path}: utterance u1: line 3: ")


def test_huge_state_id_is_rejected_before_allocating(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text(GOOD.replace("1 2 5 0.5,3,7", "1 2000000000 5 0.5,3,7"))
    started = time.process_time()
    first, second = failure_then_good(read_all(tmp_path, path))
    assert time.process_time() - started < 5  # guard only: it must not try to allocate
    assert first.utt_id == "u1" and second.utt_id == "u2"
    assert str(first.error) == (
        f"{path}: utterance u1: line 3: state id 2000000000 (expected below 6: an entry of 3 "
        "lines defines at most that many states) in '1 2000000000 5 0.5,3,7'")


def test_convert_rejects_huge_state_id_instead_of_wrapping_it(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text(GOOD.split("\n\n")[0].replace("1 2 5", "1 99999999999 5") + "\n")
    words = tmp_path / "words.txt"
    table(tmp_path)
    out = tmp_path / "out.pt"
    result = CliRunner().invoke(app, ["convert", str(path), "--words", str(words), "--to", "k2",
                                      "--out", str(out)])
    assert result.exit_code in (EXIT_ERROR, 3) and not out.exists()
    squeezed = "".join(c for c in result.output if not c.isspace() and c not in "│┃")
    assert "badstateid" in squeezed and "2147483647" in squeezed  # rich wraps the cells


def test_bad_final_weight_after_a_bare_final_line_is_one_failure(tmp_path):
    # Found by the fuzzer (IndexError at kaldi_text.py:185): the slow path that names the bad
    # weight read the weight column of a bare final line ("2"), which has none.
    path = tmp_path / "lat.txt"
    path.write_text(GOOD.replace("2\n\nu2", "2\n1 x,y\n\nu2"))
    first, second = failure_then_good(read_all(tmp_path, path))
    assert first.utt_id == "u1" and second.utt_id == "u2"
    assert "bad weight 'x,y'" in str(first.error)


def test_a_cost_beyond_float32_is_one_clean_failure(tmp_path):
    path = tmp_path / "lat.txt"
    path.write_text("u0\n0 1 4 1e300,0\n1\n\n" + GOOD)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the user's terminal
        items = read_all(tmp_path, path)
    failures = [item for item in items if isinstance(item, Failure)]
    assert [item.utt_id for item in items if not isinstance(item, Failure)] == ["u1", "u2"]
    assert len(failures) == 1 and failures[0].utt_id == "u0"
    assert "non-finite score" in str(failures[0].error)
