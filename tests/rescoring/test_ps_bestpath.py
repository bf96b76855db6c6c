"""The pocketsphinx bestpath reference (ps_bestpath.py) on hand-built SLF lattices.

The trigram (log10): P(a|<s>) = -0.5, P(b|<s>) = -0.6, P(c|a) = P(c|b) = -0.3
(via back-off weight 0 from <s> a / <s> b), P(</s>|a c) = -2.0, P(</s>|b c) = -0.1.
Paths "<s> a c </s>" (log10 -2.8) and "<s> b c </s>" (log10 -1.0); all a= are 0,
lmscale 1, wdpenalty 0, so a path's score is its ln P.
"""
import math
import sys
from pathlib import Path

import pytest

from rescorer.formats.slf import read_slf
from rescorer.lattice.batch import LatticeBatch
from rescorer.ngram.cache import load_ngram

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ps_bestpath import ps_bestpath  # noqa: E402

LN10 = math.log(10.0)
ARPA = """\\data\\
ngram 1=6
ngram 2=7
ngram 3=2

\\1-grams:
-99\t<s>\t0
-1.0\t</s>
-2.0\t<unk>
-1.0\ta\t0
-1.0\tb\t0
-1.0\tc\t0

\\2-grams:
-0.5\t<s> a\t0
-0.6\t<s> b\t0
-0.3\ta c\t0
-0.3\tb c\t0
-1.0\tc </s>
-1.0\ta </s>
-1.0\tb </s>

\\3-grams:
-2.0\ta c </s>
-0.1\tb c </s>

\\end\\
"""


def slf(nodes, links):
    """An SLF text with words on nodes, a=0 and l=0 on every link."""
    lines = ["VERSION=1.0", "UTTERANCE=u", "lmscale=1.0", "wdpenalty=0.0", "start=0",
             f"end={len(nodes) - 1}", f"N={len(nodes)} L={len(links)}"]
    lines += [f"I={i} t={0.1 * i:.2f} W={word}" for i, word in enumerate(nodes)]
    lines += [f"J={j} S={s} E={e} a=0.00 l=0.000" for j, (s, e) in enumerate(links)]
    return "\n".join(lines) + "\n"


@pytest.fixture()
def ngram(tmp_path):
    (tmp_path / "lm.arpa").write_text(ARPA)
    return load_ngram(tmp_path / "lm.arpa")


def best(tmp_path, ngram, nodes, links):
    (tmp_path / "u.slf").write_text(slf(nodes, links))
    (lattice,), symbols = read_slf(tmp_path / "u.slf")
    return ps_bestpath(LatticeBatch.from_lattices([lattice]), symbols, ngram, 1.0, 0.0)


def test_without_fillers_the_recursion_is_trigram_exact(tmp_path, ngram):
    # 0 <s> -> 1 a / 2 b -> 3 c -> 4 </s>: the link state 3->4 after 1->3 or 2->3 knows "a c" / "b c"
    found = best(tmp_path, ngram, ["!SENT_START", "a", "b", "c", "!SENT_END"],
                 [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)])
    assert found.words == [["b", "c"]]
    assert found.arcs[0].tolist() == [1, 3, 4]
    assert float(found.scores[0]) == pytest.approx(-1.0 * LN10, abs=1e-5)


def test_through_a_filler_the_history_is_the_best_path_into_it(tmp_path, ngram):
    # 0 <s> -> 1 a / 2 b -> 3 !NULL -> 4 c -> 5 </s>: link 3->4 keeps one history, from
    # its best predecessor (via a: -0.5 - 0.3 beats via b: -0.6 - 0.3), so "b c </s>" is lost
    found = best(tmp_path, ngram, ["!SENT_START", "a", "b", "!NULL", "c", "!SENT_END"],
                 [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5)])
    assert found.words == [["a", "c"]]
    assert found.arcs[0].tolist() == [0, 2, 4, 5]
    assert float(found.scores[0]) == pytest.approx(-2.8 * LN10, abs=1e-5)
    exact = ngram.sentence_log_probs([[ngram.vocabulary.index[w] for w in words]
                                      for words in (["a", "c"], ["b", "c"])])
    assert exact.tolist() == pytest.approx([-2.8 * LN10, -1.0 * LN10], abs=1e-5)


def test_lattices_of_a_batch_are_searched_independently(tmp_path, ngram):
    (tmp_path / "f.slf").write_text(slf(["!SENT_START", "a", "b", "!NULL", "c", "!SENT_END"],
                                        [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4), (4, 5)]))
    (tmp_path / "g.slf").write_text(slf(["!SENT_START", "a", "b", "c", "!SENT_END"],
                                        [(0, 1), (0, 2), (1, 3), (2, 3), (3, 4)]))
    (first,), symbols = read_slf(tmp_path / "f.slf")
    (second,), symbols = read_slf(tmp_path / "g.slf", symbols)
    found = ps_bestpath(LatticeBatch.from_lattices([second, first]), symbols, ngram, 1.0, 0.0)
    assert found.words == [["b", "c"], ["a", "c"]]
    assert [arcs.tolist() for arcs in found.arcs] == [[1, 3, 4], [0, 2, 4, 5]]
