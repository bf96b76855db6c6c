"""Issue 8 defects in the readers: each case failed (traceback, huge allocation or a wrong
message) before the fix; now every one is one ``RescorerError`` naming the file."""
import gzip
import io
import zipfile

import pytest
import torch

import rescorer
from rescorer.errors import InputFormatError
from rescorer.formats.detect import detect_format, iter_lattices
from rescorer.formats.k2_pt import write_k2
from rescorer.formats.slf import read_slf
from rescorer.lattice.symbols import SymbolTable

GOOD = "VERSION=1.0\nN=3 L=2\nI=0 W=!NULL\nI=1 W=hi\nI=2 W=!NULL\n" \
       "J=0 S=0 E=1 a=-1 l=-1\nJ=1 S=1 E=2 a=-1 l=-1\n"


def write(tmp_path, text, name="x.slf"):
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def failures(paths, symbols=None):
    return [item for item in iter_lattices(paths, symbols or SymbolTable())
            if not hasattr(item, "num_states")]


@pytest.mark.parametrize("node", ["4000000000", "100000000000", str(10**25), str(2**63)])
@pytest.mark.parametrize("layout", ["uniform", "mixed"])
def test_huge_node_ids_without_n_are_rejected_before_allocating(tmp_path, node, layout):
    # 150 bytes naming node 4e9 once used 8 GB for 30 s and then crashed.
    links = "J=0 S=0 E=1 a=-1 l=0\nJ=1 S=1 E=%s a=-1 l=0\n" % node
    if layout == "mixed":
        links = links.replace("J=1 S=1", "J=1 S=1 W=x")
    with pytest.raises(InputFormatError, match=f"node (id )?{node} out of range"):
        read_slf(write(tmp_path, "VERSION=1.0\n" + links))


@pytest.mark.parametrize("header", ["N=%d L=2" % 10**12, "N=%d L=2" % 2**63])
def test_huge_declared_node_count_is_rejected(tmp_path, header):
    text = f"VERSION=1.0\n{header}\nJ=0 S=0 E=1 a=-1 l=0\nJ=1 S=1 E=2 a=-1 l=0\n"
    with pytest.raises(InputFormatError, match="N=.* nodes but only 2 links"):
        read_slf(write(tmp_path, text))


def test_huge_start_header_is_rejected(tmp_path):
    with pytest.raises(InputFormatError, match=r"start=\d+ out of range"):
        read_slf(write(tmp_path, GOOD.replace("N=3", f"start={2**70}\nN=3")))


def test_link_to_an_undefined_node_says_so(tmp_path):
    text = GOOD.replace("N=3 L=2\n", "").replace("E=2", "E=5")
    with pytest.raises(InputFormatError, match=r"link 1 \(1->5\) names node 5, which has no I= line"):
        read_slf(write(tmp_path, text))


def corrupt_gzip(tmp_path, text, kind, name):
    data = bytearray(gzip.compress(text.encode()))
    if kind == "flipped":
        for index in range(10, 18):  # just after the gzip header
            data[index] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    return write(tmp_path, bytes(data), name)


@pytest.mark.parametrize("kind", ["flipped", "truncated"])
@pytest.mark.parametrize("text", [GOOD, "utt1\n0 1 5 1.0,2.0,\n1\n\n"], ids=["slf", "kaldi"])
def test_corrupt_gzip_is_one_failure_naming_the_file(tmp_path, kind, text):
    path = corrupt_gzip(tmp_path, text * 50, kind, "bad.gz")
    good = write(tmp_path, GOOD, "good.slf")
    symbols = SymbolTable()
    symbols.add("hi")
    symbols.frozen = True  # a --words table, so that the Kaldi reader runs
    items = list(iter_lattices([path, good], symbols))
    (failure,) = [item for item in items if not hasattr(item, "num_states")]
    assert isinstance(failure.error, InputFormatError) and str(failure.error).startswith(str(path))
    assert len(items) == 2  # the good file is still read


def test_gzip_bomb_is_refused_without_expanding_it(tmp_path):
    path = write(tmp_path, gzip.compress(GOOD.encode() + b"#" * 10_000_000), "bomb.slf.gz")
    assert path.stat().st_size < 20_000
    with pytest.raises(InputFormatError, match="bomb.slf.gz: gzip data expands more than 100 times"):
        read_slf(path)


def test_detect_format_of_corrupt_gzip_raises_input_format_error(tmp_path):
    path = corrupt_gzip(tmp_path, GOOD * 50, "flipped", "bad.gz")
    with pytest.raises(InputFormatError, match="bad.gz: cannot read"):
        detect_format(path)


def test_k2_file_with_huge_declared_state_count_is_a_failure(tmp_path):
    from rescorer.lattice.fsavec import Lattice

    lattice = Lattice("u", 3, torch.tensor([0, 1]), torch.tensor([1, 2]), torch.tensor([5, -1]),
                      torch.tensor([0, 1, 1]), torch.tensor([5]), torch.zeros(2), torch.zeros(2))
    path = tmp_path / "x.pt"
    write_k2(path, [lattice, lattice.__class__(**{**lattice.__dict__, "utt_id": "v"})])
    content = torch.load(path)
    content["arcs"][3] = 2**31 - 1 - 3  # row_splits1: FSA 0 claims ~2^31 states
    content["arcs"][4] = 2**31 - 1
    torch.save(content, path)
    symbols = SymbolTable()
    for word in "abcde":
        symbols.add(word)
    symbols.frozen = True
    (good, failure) = list(iter_lattices([path], symbols))
    assert good.utt_id == "v" and failure.utt_id == "u"
    assert isinstance(failure.error, InputFormatError)
    assert "claims 2147483644 states for 2 arcs" in str(failure.error)


# data.pkl bodies found by bench/fuzz.py that made torch's loader raise something other than
# a load error: PROTO 2 + STOP pops an empty stack (IndexError); a persistent id that is an
# int ("saved_id must be a tuple") is an AssertionError.
@pytest.mark.parametrize("pickled", [b"\x80\x02.", b"\x80\x02K\x05Q."], ids=["stack", "persid"])
def test_corrupt_pickle_is_an_input_format_error(tmp_path, pickled):
    buffer = io.BytesIO()
    torch.save({"arcs": torch.zeros(4, dtype=torch.int32)}, buffer)
    source = zipfile.ZipFile(io.BytesIO(buffer.getvalue()))
    path = tmp_path / "corrupt.pt"
    with zipfile.ZipFile(path, "w") as target:
        for name in source.namelist():
            target.writestr(name, pickled if name.endswith("data.pkl") else source.read(name))
    symbols = SymbolTable()
    symbols.frozen = True  # a --words table, so that the k2 reader runs
    with pytest.raises(InputFormatError, match="corrupt.pt: cannot load as a torch file"):
        rescorer.read_lattices(path, symbols)


@pytest.mark.parametrize("state", ["99999999", "2147483000"])
def test_kaldi_lattice_claiming_huge_states_fails_before_algorithms_allocate(tmp_path, state):
    # Kaldi text numbers states by id: one arc into state 99999999 used to pass the reader
    # and then allocate 800 MB per state array in the algorithms (issue 8, item 2).
    path = write(tmp_path, f"u\n0 {state} 5 1.0,2.0,\n{state}\n\nv\n0 1 5 1.0,2.0,\n1\n\n", "x.txt")
    symbols = SymbolTable()
    for word in "abcde":
        symbols.add(word)
    symbols.frozen = True
    good, failure = list(iter_lattices([path], symbols))  # per file: lattices, then failures
    assert good.utt_id == "v" and failure.utt_id == "u"
    bound = f"state id {state} (expected below 4: an entry of 2 lines defines at most that many"
    assert bound in str(failure.error)
    with pytest.raises(InputFormatError, match=f"utterance u: line [0-9]+: state id {state}"):
        rescorer.read_lattices(path, symbols)


def test_words_table_with_a_huge_id_checks_lattices_without_a_huge_mask(tmp_path):
    words = write(tmp_path, "<eps> 0\nhi 1\nfar 99999999999\n", "words.txt")
    table = SymbolTable.from_file(words)
    assert table.known(torch.tensor([1, 2, 99999999999, -1])).tolist() == [True, False, True, False]
    batch = rescorer.read_lattices(write(tmp_path, GOOD), table)
    assert batch.word_ids.tolist() == [1]

