"""HTK SLF: inline lattices with hand-worked scores, round trips, bad input, real samples."""
import dataclasses
import gzip
import math
from pathlib import Path

import pytest
import torch

from rescorer.errors import InputFormatError, SymbolError
from rescorer.formats.slf import is_filler, lattice_to_slf, read_slf, write_slf
from rescorer.lattice.symbols import SymbolTable

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.is_dir(), reason="shared data not available")

# Words on nodes. Links: J0 0->1 (a=-1, l=-2), J1 0->2 (a=-3, l=-1), J2 1->3, J3 2->3.
# Node 1 "hi", node 2 "!NULL", node 3 "!SENT_END" (end, a filler).
# lmscale 10, wdpenalty -0.5, acscale 2:
#   J0 into "hi":    am = 2*-1 = -2, ngram = 10*-2 - 0.5 = -20.5
#   J1 into !NULL:   am = -6,        ngram = 10*-1       = -10    (no penalty: filler)
#   J2 into end:     am = 2*-0.5=-1, ngram = 10*-0.25 - 0.5 = -3  (penalty: end node)
#   J3 into end:     am = 0,         ngram = 0 - 0.5 = -0.5
# Every link into the end node is epsilon, so they become the -1 arcs: 4 states, 4 arcs.
NODE_WORDS = """# a comment
VERSION=1.0
UTTERANCE="my utt"
lmscale=10\twdpenalty=-0.5
acscale=2.0
N=4 L=4
I=0 t=0.00 W=!SENT_START
I=1 t=0.10 W=hi
I=2 t=0.10 W=!NULL
I=3 t=0.50 W=!SENT_END
J=0 S=0 E=1 a=-1.0 l=-2.0
J=1 S=0 E=2 a=-3.0 l=-1.0
J=2\tS=1\tE=3\ta=-0.5\tl=-0.25
J=3 S=2 E=3 a=0 l=0
"""


def write(tmp_path, text, name="x.slf", gz=False):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_words_on_nodes_scores_by_hand(tmp_path, gz):
    (lattice,), symbols = read_slf(write(tmp_path, NODE_WORDS, gz=gz))
    assert lattice.utt_id == "my utt" and lattice.num_states == 4
    assert lattice.src.tolist() == [0, 0, 1, 2] and lattice.dst.tolist() == [1, 2, 3, 3]
    assert lattice.labels.tolist() == [1, 0, -1, -1]
    assert lattice.word_ids.tolist() == [1] and list(symbols) == ["<eps>", "hi"]
    assert lattice.am_scores.tolist() == [-2.0, -6.0, -1.0, 0.0]
    assert lattice.ngram_scores.tolist() == [-20.5, -10.0, -3.0, -0.5]


# Words on links, no start/end headers: start = node 0 (no incoming), end = node 2.
# The link into the end node carries a real word, so a super-final state 3 is added.
# Default lmscale 1, wdpenalty 0. Node 0 itself carries the real word "oh" (on a node):
# it gets an arc from a new start state, shifting every node by one.
LINK_WORDS = """VERSION=1.0
N=3 L=3
I=0 W=oh
I=1
I=2
J=0 S=0 E=1 W=a a=-1 l=-1
J=1 S=1 E=2 W=b a=-2 l=-2
J=2 S=0 E=2 W=<s> a=-4 l=0
"""


def test_words_on_links_start_word_and_super_final(tmp_path):
    (lattice,), symbols = read_slf(write(tmp_path, LINK_WORDS, "utt5.lat"))
    assert lattice.utt_id == "utt5" and lattice.num_states == 5
    # arcs: new start 0 -oh-> 1 (node 0); 1 -a-> 2; 2 -b-> 3 (end node); 1 -eps-> 3; 3 -(-1)-> 4
    assert lattice.src.tolist() == [0, 1, 2, 1, 3]
    assert lattice.dst.tolist() == [1, 2, 3, 3, 4]
    assert [symbols.word(w) for w in lattice.word_ids.tolist()] == ["oh", "a", "b"]
    assert lattice.labels.tolist() == [3, 1, 2, 0, -1]  # "oh" is looked up after the links
    assert lattice.am_scores.tolist() == [0.0, -1.0, -2.0, -4.0, 0.0]
    assert lattice.ngram_scores.tolist() == [0.0, -1.0, -2.0, 0.0, 0.0]


def test_log_base_rescales_to_natural_logs(tmp_path):
    text = "base=10\nN=2 L=1\nI=0\nI=1\nJ=0 S=0 E=1 W=!NULL a=-1 l=-2\n"
    (lattice,), _ = read_slf(write(tmp_path, text))
    assert lattice.am_scores.tolist() == pytest.approx([-math.log(10)])
    assert lattice.ngram_scores.tolist() == pytest.approx([-2 * math.log(10)])


def test_round_trip_is_exact_and_multi_word_arcs_become_chains(tmp_path):
    (lattice,), symbols = read_slf(write(tmp_path, NODE_WORDS))
    out = tmp_path / "out" / "u.slf"
    write_slf(out, lattice, symbols)
    (again,), _ = read_slf(out, symbols)
    for field in ("src", "dst", "labels", "word_splits", "word_ids", "am_scores", "ngram_scores"):
        assert torch.equal(getattr(lattice, field), getattr(again, field)), field
    assert again.utt_id == "my utt"
    # an arc with two words: written as two links through an extra node 4
    two = dataclasses.replace(lattice, word_splits=torch.tensor([0, 2, 2, 2, 2]),
                              word_ids=torch.tensor([1, 1]))
    text = lattice_to_slf(two, symbols)
    assert "N=5\tL=5" in text and "J=0\tS=0\tE=4\tW=hi\ta=-2.0\tl=-20.5" in text
    assert "J=1\tS=4\tE=1\tW=hi\ta=0.0\tl=0.0" in text


@pytest.mark.parametrize(
    "replace, message",
    [
        (("N=4 L=4", "N=4 L=5"), "line 6: L=5 but 4 link lines"),
        (("N=4 L=4", "N=5 L=4"), "line 6: N=5 but 4 node lines"),
        (("a=-3.0", "a=-3.x"), "line 12: bad a='-3.x' (expected a number)"),
        (("E=2 a=-3.0", "E=9 a=-3.0"), "line 12: link node 9 out of range (expected 0..3)"),
        (("J=1 S=0 E=2", "J=1 E=2"), "line 12: missing S="),
        (("I=2 t=0.10", "I=1 t=0.10"), "line 9: node 1 defined twice (first on line 8)"),
        (("J=3 S=2", "J=3 S=2 junk"), "line 14: expected key=value, got 'junk'"),
        (("lmscale=10", "lmscale=ten"), "line 4: bad lmscale='ten'"),
    ],
)
def test_bad_input_names_file_utterance_and_line(tmp_path, replace, message):
    path = write(tmp_path, NODE_WORDS.replace(*replace))
    with pytest.raises(InputFormatError) as caught:
        read_slf(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_ambiguous_start_and_truncated_gzip(tmp_path):
    text = "N=3 L=1\nI=0\nI=1\nI=2\nJ=0 S=0 E=1 a=0 l=0\n"
    with pytest.raises(InputFormatError, match=r"cannot tell the start node: 2 nodes without incoming"):
        read_slf(write(tmp_path, text))
    data = gzip.compress(NODE_WORDS.encode())
    path = tmp_path / "cut.slf.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFormatError, match="cut.slf.gz: cannot read .*truncated or corrupt"):
        read_slf(path)


def test_frozen_table_rejects_unknown_words(tmp_path):
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\nbye 1\n")
    with pytest.raises(SymbolError, match=r"x.slf: utterance my utt: word 'hi' is not in .*words.txt"):
        read_slf(write(tmp_path, NODE_WORDS), SymbolTable.from_file(words))


def test_filler_set():
    assert all(is_filler(w) for w in ["!NULL", "<s>", "</s>", "<sil>", "++BREATH++", "[NOISE]",
                                      "!ENTER", "!EXIT", "!SENT_START", "!SENT_END"])
    assert not any(is_filler(w) for w in ["a.", "didn't", "[", "++"])


@needs_data
def test_theanolm_slf_sample():
    (lattice,), symbols = read_slf(DATA / "slf-samples/theanolm/lattice.slf")
    # 24 nodes, 39 links; the 2 !EXIT links into node 23 become the -1 arcs
    assert (lattice.utt_id, lattice.num_states, lattice.num_arcs) == ("utterance 123", 24, 39)
    assert lattice.word_ids.numel() == 33 and len(symbols) == 13  # 12 words + <eps>
    # J=4: S=1 E=5 W=to a=-2434.05 l=-87.29; lmscale 12.3, wdpenalty 0.7
    assert lattice.am_scores[4].item() == pytest.approx(-2434.05)
    assert lattice.ngram_scores[4].item() == pytest.approx(12.3 * -87.29 + 0.7)
    # J=37: !EXIT into the end node: no word, penalty anyway (it enters the end node)
    assert lattice.labels[37].item() == -1
    assert lattice.ngram_scores[37].item() == pytest.approx(12.3 * -13.83 + 0.7)


@needs_data
def test_ami_samples_words_on_nodes():
    for path in sorted((DATA / "slf-samples/ami").glob("*.lat.gz"))[:3]:
        (lattice,), symbols = read_slf(path)
        lines = gzip.decompress(path.read_bytes()).decode().splitlines()
        node_word = {int(f["I"]): f.get("W", "!NULL") for f in map(_fields, lines) if "I" in f}
        into = [int(f["E"]) for f in map(_fields, lines) if "J" in f]
        # every link into a node with a real word carries that word (words on nodes)
        assert lattice.word_ids.numel() == sum(not is_filler(node_word[e]) for e in into)
        assert lattice.num_arcs in (len(into), len(into) + 1)
        assert lattice.utt_id.startswith("AMI-3E0501_u3005")
        assert 0 < lattice.num_states <= len(node_word) + 2


def _fields(line: str) -> dict:
    return dict(token.split("=", 1) for token in line.split() if "=" in token)


# The end node (1) is not the last id, and node 0 carries a word: states are
# [new start, node 0, node 2, node 1 (end), super-final]; the link into the end
# node has a word, so the super-final state is added.
TIMED = """VERSION=1.0
N=3 L=3
I=0 t=0.25 W=oh
I=1 t=0.90 W=!NULL
I=2 t=0.40 W=!NULL
J=0 S=0 E=2 W=a a=-1 l=-1
J=1 S=2 E=1 W=b a=-2 l=-2
J=2 S=0 E=1 W=!NULL a=-4 l=0
"""


@pytest.mark.parametrize("bulk", [True, False])
def test_node_times_land_on_their_states(tmp_path, monkeypatch, bulk):
    import rescorer
    from rescorer.formats import slf

    if not bulk:
        monkeypatch.setattr(slf, "fast_nodes", lambda *args: False)
    path = write(tmp_path, TIMED)
    (lattice,), _ = read_slf(path)
    assert lattice.src.tolist() == [0, 1, 2, 1, 3] and lattice.dst.tolist() == [1, 2, 3, 3, 4]
    assert lattice.state_times.dtype == torch.float64
    assert lattice.state_times.tolist() == [0.25, 0.25, 0.40, 0.90, 0.90]
    batch = rescorer.read_lattices([path, write(tmp_path, NODE_WORDS, "y.slf")])
    assert batch.state_times.tolist() == [0.25, 0.25, 0.40, 0.90, 0.90, 0.0, 0.10, 0.10, 0.50]
    assert batch.lattice(1).state_times.tolist() == [0.0, 0.10, 0.10, 0.50]


def test_no_times_unless_every_node_has_one(tmp_path):
    import rescorer

    (lattice,), _ = read_slf(write(tmp_path, LINK_WORDS))
    assert lattice.state_times is None
    partial = TIMED.replace("I=2 t=0.40", "I=2 t=x")
    (lattice,), _ = read_slf(write(tmp_path, partial))
    assert lattice.state_times is None
    batch = rescorer.read_lattices([write(tmp_path, TIMED, "a.slf"), write(tmp_path, partial, "b.slf")])
    assert batch.state_times is None  # only when every lattice has them


# Words on nodes; links first enter node 3 "c" (J0), node 1 "a" (J1), node 2 "b" (J2), the
# end node 4 (J3). Node 5 "zz" has no links (start= and end= name the terminals).
ORDERED = """start=0 end=4
N=6 L=5
I=0 W=!NULL
I=1 W=a
I=2 W=b
I=3 W=c
I=4 W=!NULL
I=5 W=zz
J=0 S=0 E=3 a=0 l=0
J=1 S=3 E=1 a=0 l=0
J=2 S=1 E=2 a=0 l=0
J=3 S=2 E=4 a=0 l=0
J=4 S=0 E=1 a=0 l=0
"""


@pytest.mark.parametrize("bulk", [True, False])
def test_new_words_are_numbered_in_link_order_across_files(tmp_path, monkeypatch, bulk):
    from rescorer.formats import slf

    if not bulk:
        monkeypatch.setattr(slf, "fast_nodes", lambda *args: False)
    table = SymbolTable()
    (first,), _ = read_slf(write(tmp_path, ORDERED, "a.slf"), table)
    assert first.labels.tolist() == [1, 2, 3, -1, 2]  # c=1, a=2, b=3 by first entering link
    assert list(table) == ["<eps>", "c", "a", "b"]  # zz: no link enters node 5
    # The second file: "a" is known, the new words go in link order (new2 before new1).
    second_text = ORDERED.replace("W=a", "W=new1").replace("W=b", "W=a").replace("W=c", "W=new2")
    (second,), _ = read_slf(write(tmp_path, second_text, "b.slf"), table)
    assert list(table) == ["<eps>", "c", "a", "b", "new2", "new1"]
    assert second.labels.tolist() == [4, 5, 2, -1, 5]
    assert second.word_ids.tolist() == [4, 5, 2, 5]
    words = tmp_path / "words.txt"
    words.write_text("<eps> 0\na 1\n")
    with pytest.raises(SymbolError, match="word 'c' is not in"):  # the first unknown by link order
        read_slf(write(tmp_path, ORDERED, "a.slf"), SymbolTable.from_file(words))
    words.write_text("<eps> 0\na 1\nb 2\nc 3\n")
    (frozen,), _ = read_slf(write(tmp_path, ORDERED, "a.slf"), SymbolTable.from_file(words))
    assert frozen.labels.tolist() == [3, 1, 2, -1, 1]  # zz is never looked up
