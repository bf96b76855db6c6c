"""Exact values of the hand-written 4-gram (conftest.TINY_ARPA), worked out by hand."""
import gzip
import math

import pytest
import torch

from rescorer.errors import InputFormatError
from rescorer.ngram.arpa import read_arpa
from rescorer.ngram.model import NgramLM

LN10 = math.log(10.0)

# (history, token, log10 P) with the back-off arithmetic spelled out.
CASES = [
    (["<s>"], "a", -0.25),                      # 2-gram "<s> a"
    (["<s>", "a"], "b", -0.1),                  # 3-gram "<s> a b"
    (["<s>", "a", "b"], "c", -0.01),            # 4-gram "<s> a b c"
    (["a", "b"], "c", -0.05),                   # 3-gram "a b c"
    (["x", "a", "b"], "c", -0.05),              # "x a b c" absent, "a b c"; bow("x a b") = 0
    (["a", "b", "c"], "</s>", -1.0),            # unigram -1.0; bows of "a b c", "b c", "c" are 0
    (["<s>", "b"], "c", -0.2),                  # 2-gram "b c"; "<s> b" is not a context
    (["a", "b"], "a", -0.5 - 0.1 - 0.125),      # unigram a + bow("a b") + bow("b")
    (["c", "a"], "b", -0.4),                    # 3-gram "c a b" behind the hole "c a"
    (["c", "a"], "c", -1.5 + 0.0 - 0.25),       # unigram c + bow(hole "c a") = 0 + bow("a")
    (["<s>"], "</s>", -1.0 - 0.5),              # unigram </s> + bow("<s>")
    (["<s>"], "<unk>", -100.0 - 0.5),           # added <unk> + bow("<s>")
    (["<unk>"], "a", -0.5),                     # <unk> is no context: unigram a
    (["<s>", "<unk>"], "a", -0.5),
    (["<unk>", "a"], "b", -0.5),                # 2-gram "a b", bow("<unk> a") = 0
    ([], "b", -0.75),                           # empty history: unigram
]


@pytest.fixture
def tiny_lm(tiny_arpa):
    return NgramLM.from_arpa(read_arpa(tiny_arpa), tiny_arpa)


def _ids(lm, words):
    return [lm.vocabulary.encode_word(word)[0] for word in words]


def test_tiny_values_match_hand_computation(tiny_lm):
    width = max(len(history) for history, _, _ in CASES)
    histories = torch.full((len(CASES), width), 12345, dtype=torch.int64)  # padding is ignored
    for row, (history, _, _) in enumerate(CASES):
        histories[row, :len(history)] = torch.tensor(_ids(tiny_lm, history), dtype=torch.int64)
    lengths = torch.tensor([len(history) for history, _, _ in CASES])
    tokens = torch.tensor([_ids(tiny_lm, [token])[0] for _, token, _ in CASES])
    got = tiny_lm.log_probs(histories, lengths, tokens)
    expected = torch.tensor([value * LN10 for _, _, value in CASES], dtype=torch.float64)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)  # float32 storage


def test_tiny_sentence_log_probs(tiny_lm):
    # "a b c": -0.25 - 0.1 - 0.01 - 1.0; "b": P(b|<s>) = -0.75 - 0.5, P(</s>|<s> b) = -0.3;
    # the empty sentence: P(</s>|<s>) = -1.5; "zebra" -> <unk>: -100.5, then unigram </s> -1.0.
    sentences = [["a", "b", "c"], ["b"], [], ["zebra"]]
    got = tiny_lm.sentence_log_probs([_ids(tiny_lm, words) for words in sentences])
    expected = torch.tensor([-1.36, -1.55, -1.5, -101.5], dtype=torch.float64) * LN10
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_vocabulary_specials_and_unknown(tiny_lm):
    vocabulary = tiny_lm.vocabulary
    assert vocabulary.words[:5] == ["<s>", "</s>", "a", "b", "c"]
    assert (vocabulary.bos_id, vocabulary.eos_id, vocabulary.unk_id, vocabulary.size) == (0, 1, 5, 6)
    assert vocabulary.encode_word("zebra") == [5]
    assert vocabulary.is_oov("zebra") and not vocabulary.is_oov("a")


def test_gzip_reads_the_same(tiny_arpa, tmp_path, tiny_lm):
    packed = tmp_path / "tiny.arpa.gz"
    packed.write_bytes(gzip.compress(tiny_arpa.read_bytes()))
    lm = NgramLM.from_arpa(read_arpa(packed), packed)
    for ours, theirs in zip(lm.tables, tiny_lm.tables):
        assert torch.equal(ours.keys, theirs.keys)
        torch.testing.assert_close(ours.log_probs, theirs.log_probs, equal_nan=True, rtol=0, atol=0)


def test_arpa_with_unk_keeps_its_own(tmp_path):
    path = tmp_path / "unk.arpa"
    path.write_text("\\data\\\nngram 1=4\n\n\\1-grams:\n-1\t<s>\n-0.5\t</s>\n-2\t<unk>\n-0.25\ta\n\\end\\\n")
    lm = NgramLM.from_arpa(read_arpa(path), path)
    assert lm.vocabulary.size == 4 and lm.vocabulary.unk_id == 2
    unk = lm.vocabulary.encode_word("zebra")
    got = lm.sentence_log_probs([unk])  # unigram LM: P(<unk>) P(</s>)
    torch.testing.assert_close(got, torch.tensor([-2.5 * LN10], dtype=torch.float64), rtol=0, atol=1e-6)


@pytest.mark.parametrize("text, problem", [
    ("hello\n", "no \\data\\ header"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n", "section ends early"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t<s>\n\\end\\\n", "duplicate unigram '<s>'"),
    ("\\data\\\nngram 1=2\nngram 2=1\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\2-grams:\n-1\t<s> zz\n\\end\\\n",
     "word 'zz' of a 2-gram is not among the unigrams"),
    ("\\data\\\nngram 1=2\nngram 2=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n\n\\2-grams:\n-1\t<s> </s>\n"
     "-2\t<s> </s>\n\\end\\\n", "duplicate 2-gram '<s> </s>'"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\nx\t</s>\n\\end\\\n", "bad number"),
    ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1\t<s>\n-1\t</s>\n", "expected \\end\\"),
    ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1\t<s>\n\\end\\\n", "lacks </s>"),
])
def test_bad_files_name_file_and_problem(tmp_path, text, problem):
    path = tmp_path / "bad.arpa"
    path.write_text(text)
    with pytest.raises(InputFormatError) as caught:
        NgramLM.from_arpa(read_arpa(path), path)
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_truncated_gzip_is_an_input_error(tiny_arpa, tmp_path):
    packed = tmp_path / "cut.arpa.gz"
    packed.write_bytes(gzip.compress(tiny_arpa.read_bytes())[:60])
    with pytest.raises(InputFormatError, match="cut.arpa.gz"):
        read_arpa(packed)


def test_corrupt_gzip_body_is_an_input_error(tiny_arpa, tmp_path):
    packed = bytearray(gzip.compress(tiny_arpa.read_bytes()))
    packed[20:40] = bytes(20)  # damage the deflate stream
    path = tmp_path / "bad.arpa.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(InputFormatError, match="bad.arpa.gz"):
        read_arpa(path)
