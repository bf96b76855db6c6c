"""The bulk (column-wise) SLF path: what it accepts, what it refuses, and that it agrees
with the line parser on real files."""
import gzip
from pathlib import Path

import pytest
import torch

from rescorer.errors import InputFormatError
from rescorer.formats import slf
from rescorer.formats.slf_columns import block_columns, column_words
from rescorer.lattice.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")
FIELDS = ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores")

LINKS = "J=0 S=0 E=1 a=-1.5 l=-2\nJ=1\tS=1   E=2 a=3 l=0.25 "


def column_texts(block, lead, wanted):
    """``{key: [value of each line]}`` of ``block_columns``, decoded (None when refused)."""
    columns = block_columns(block, lead, wanted)
    if columns is None:
        return None
    data = columns.chars.tobytes()
    return {key: [data[start:end].decode() for start, end in zip(starts.tolist(), ends.tolist())]
            for key, (starts, ends) in columns.values.items()}


def word_list(block, lead):
    """The W= value of each line, through ``column_words``' distinct words and codes."""
    distinct, codes = column_words(block_columns(block, lead, ("W",)), "W")
    return [distinct[code] for code in codes.tolist()]


def test_uniform_block_gives_columns():
    assert column_texts(LINKS, "J", ("S", "E", "W", "a", "l")) == {
        "S": ["0", "1"], "E": ["1", "2"], "a": ["-1.5", "3"], "l": ["-2", "0.25"]}
    assert column_texts("J=0 S=0 W=J=x\nJ=1 S=1 W=y", "J", ("W",)) == {"W": ["J=x", "y"]}
    nodes = "I=0 t=0.0 W=a=b\nI=1 t=0.1 W=!NULL"
    assert column_texts(nodes, "I", ("I", "W")) == {"I": ["0", "1"], "W": ["a=b", "!NULL"]}
    assert word_list(nodes, "I") == ["a=b", "!NULL"]
    words = "I=0 W=\u00e9t\u00e9\nI=1 W=ab\nI=2 W=\u00e9t\u00e9\nI=3 W=a"
    assert word_list(words, "I") == ["\u00e9t\u00e9", "ab", "\u00e9t\u00e9", "a"]


@pytest.mark.parametrize("block", [
    "J=0 S=0 E=1 a=-1 l=0\nJ=1 S=1 E=2 l=0 a=-1",         # key order varies
    "J=0 S=0 E=1 a=-1 l=0 J=1 S=1 E=2 a=-1 l=0\n",        # two links on one line, blank line
    "J=0 S=0 E=1 a=-1 l=0\n# comment here",                # comment inside
    "J=0 S=0 E=1 a= l=0\nJ=1 S=1 E=2 a= l=0",             # empty values
    "J=0 S=0 E=1 a=-1 a=0\nJ=1 S=1 E=2 a=-1 a=0",         # repeated key (last one wins)
    "J=0 S=0 END=1 a=-1\nJ=1 S=1 END=2 a=-1",             # alias key
    "J=0 S=0 E=1 W=\"x y\"\nJ=1 S=1 E=2 W=\"x y\"",       # quotes
    "J=0 S=0 E=1\x0ca=-1\nJ=1 S=1 E=2\x0ca=-1",           # form feed: split() splits, lines don't
    "J=0 S=0 E=1 I=3\nJ=1 S=1 E=2 I=4",                   # node key on a link line
    " J=0 S=0 E=1\n J=1 S=1 E=2",                         # indented lines
    "J=0 S=0 E=1 junk\nJ=1 S=1 E=2 junk",                 # token without '='
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 b=1",                   # a key differs on a later line
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 a",                     # a later token without '='
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 a\u00a0=1",              # Unicode white space
    "J=0 S=0 E=1 a=1\nJ=1 S=1 E=2 a=1\x00",                # NUL
    "",
])
def test_non_uniform_blocks_are_refused(block):
    assert block_columns(block, "J", ("S", "E", "W", "a", "l")) is None


def line_parser_only(monkeypatch):
    monkeypatch.setattr(slf, "fast_nodes", lambda *args: False)
    monkeypatch.setattr(slf, "fast_links", lambda *args: False)


def read_both(path, monkeypatch):
    (fast,), fast_symbols = slf.read_slf(path, SymbolTable())
    with monkeypatch.context() as patch:
        line_parser_only(patch)
        (slow,), slow_symbols = slf.read_slf(path, SymbolTable())
    return fast, slow, list(fast_symbols) == list(slow_symbols)


@needs_data
@pytest.mark.parametrize("name", ["asr-dev/lat/dev-0001.slf.gz", "asr-dev/lat/dev-0240.slf.gz",
                                  "slf-samples/theanolm/lattice.slf",
                                  "slf-samples/ami/AMI-3E0501_u3005_128188_128447.lat.gz"])
def test_bulk_and_line_parsers_agree_on_real_files(name, monkeypatch):
    fast, slow, same_table = read_both(DATA / name, monkeypatch)
    assert same_table and fast.utt_id == slow.utt_id and fast.num_states == slow.num_states
    for field in FIELDS:
        assert torch.equal(getattr(fast, field), getattr(slow, field)), field


@needs_data
def test_asr_dev_blocks_take_the_bulk_path():
    text = gzip.decompress((DATA / "asr-dev/lat/dev-0001.slf.gz").read_bytes()).decode()
    links = text[text.index("\nJ=") + 1:].rstrip()
    nodes = text[text.index("\nI=") + 1:text.index("\nJ=")]
    assert len(column_texts(links, "J", ("S", "E", "a", "l"))["a"]) == 11692
    assert len(column_texts(nodes, "I", ("I", "W"))["W"]) == 998


def uniform_text(num_links: int) -> str:
    """A chain 0 -> 1 -> ... -> num_links with words on nodes, all lines uniform."""
    lines = ["VERSION=1.0", f"N={num_links + 1}\tL={num_links}"]
    lines += [f"I={node}\tW={'w%d' % (node % 3) if 0 < node < num_links else '!NULL'}"
              for node in range(num_links + 1)]
    lines += [f"J={link}\tS={link}\tE={link + 1}\ta=-{link}.5\tl=-0.25" for link in range(num_links)]
    return "\n".join(lines) + "\n"


def test_uniform_file_crlf_and_trailing_blank_lines(tmp_path):
    text = uniform_text(50)
    plain, crlf = tmp_path / "a.slf", tmp_path / "b.slf"
    plain.write_text(text + "\n\n  \n")
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    (one,), _ = slf.read_slf(plain)
    (two,), _ = slf.read_slf(crlf)
    assert one.num_arcs == 50 and one.am_scores[7].item() == -7.5
    assert one.word_ids.tolist()[:4] == [1, 2, 3, 1]  # w1 w2 w0 w1 (node 1's word first)
    for field in FIELDS:
        assert torch.equal(getattr(one, field), getattr(two, field)), field


@pytest.mark.parametrize("replace, message", [
    ("a=-30.5", "line 84: bad a='-30.x' (expected a number)"),
    ("E=40\t", "line 93: link node 99 out of range (expected 0..50)"),
    ("I=20\t", "line 23: node 7 defined twice (first on line 10)"),
])
def test_errors_in_uniform_blocks_name_the_line(tmp_path, monkeypatch, replace, message):
    text = uniform_text(50)
    bad = {"a=-30.5": "a=-30.x", "E=40\t": "E=99\t", "I=20\t": "I=7\t"}[replace]
    path = tmp_path / "u.slf"
    path.write_text(text.replace(replace, bad, 1))
    with pytest.raises(InputFormatError) as caught:
        slf.read_slf(path)
    assert message in str(caught.value)
    line_parser_only(monkeypatch)
    with pytest.raises(InputFormatError) as again:
        slf.read_slf(path)
    assert str(again.value) == str(caught.value)


BASE = """VERSION=1.0
UTTERANCE=u
lmscale=2 wdpenalty=-1
N=4 L=4
I=0 t=0.0 W=!NULL
I=1 t=0.1 W=hi
I=2 t=0.1 W=ho
I=3 t=0.2 W=!NULL
J=0 S=0 E=1 a=-1.5 l=-2
J=1 S=0 E=2 a=-3 l=-1
J=2 S=1 E=3 a=-0.5 l=-0.25
J=3 S=2 E=3 a=0 l=0
"""
NODES, LINKS_PART = BASE.split("J=0", 1)[0], "J=0" + BASE.split("J=0", 1)[1]
HEAD, NODE_LINES = NODES.split("I=0", 1)[0], "I=0" + NODES.split("I=0", 1)[1]


@pytest.mark.parametrize("text", [
    BASE,
    HEAD + LINKS_PART + NODE_LINES,                                  # links before nodes
    BASE.replace("I=2 t=0.1 W=ho\n", "").replace("J=2 ", "I=2 t=0.1 W=ho\nJ=2 "),  # interleaved
    BASE.replace("J=0", "lmscale=3\nJ=0"),                            # header after the nodes
    BASE.replace("\nI=", "\n  I="),                                   # indented node lines
    BASE.replace("\nJ=0", "\n# links\n\nJ=0"),                        # comment and blank line
    BASE.replace(" W=ho", ""),                                        # a node without a word
    BASE.replace("W=hi", "W=h\u00e9").replace("a=-3 ", "a=-3 W=\u00fc "),  # UTF-8, one link word
    BASE.replace("\n", "\r\n"),                                       # CRLF
    BASE.replace("l=0\n", "l=0 \t \n"),                               # trailing white space
    BASE.replace(" l=", " W= l="),                                    # empty words on links
    BASE.replace("J=", "LINK=").replace("I=", "NODE="),               # alias keys
    BASE.replace(" l=", " a=7 l="),                                   # repeated key: last wins
    BASE.replace("N=4 L=4", "N=4 L=5"),                               # count mismatch
    BASE.replace("E=3 a=0", "E=4 a=0"),                               # node out of range
    BASE.replace("\nI=3", "\nI=2"),                                   # node defined twice
    BASE.replace("a=-0.5", "a=1e-2").replace("l=-2", "l=+2"),         # Python number forms
    BASE.replace("S=0 E=2", "S=0 E=2 p=0.5"),                         # one line with more fields
    BASE.replace("J=2 ", "I=1 t=0.1 W=hx\nJ=2 "),                      # a node again, among links
    BASE.replace("I=3 t=0.2 W=!NULL\n", "").replace("J=2 ", "I=3 t=x\nJ=2 "),  # a late bad t=
    BASE.replace("I=3 t=0.2 W=!NULL\n", "").replace("J=3 ", "I=3 t=0.3\nJ=3 "),  # a late end node
])
def test_bulk_and_line_parsers_agree_on_variants(tmp_path, monkeypatch, text):
    path = tmp_path / "v.slf"
    path.write_bytes(text.encode("utf-8"))
    outcomes = []
    for patch in (None, line_parser_only):
        with monkeypatch.context() as context:
            if patch is not None:
                patch(context)
            try:
                (lattice,), symbols = slf.read_slf(path, SymbolTable())
                outcomes.append((lattice, list(symbols)))
            except InputFormatError as error:
                outcomes.append(str(error))
    (fast, slow) = outcomes
    if isinstance(slow, str):
        assert fast == slow
        return
    assert fast[1] == slow[1] and fast[0].num_states == slow[0].num_states
    for field in FIELDS:
        assert torch.equal(getattr(fast[0], field), getattr(slow[0], field)), field
    times = fast[0].state_times, slow[0].state_times
    assert times[0] is times[1] is None or torch.equal(*times)
