"""Sentence selection and detokenization of recipes/asr-demo/local/select_sentences.py."""
import pytest

from tests.recipes.conftest import SHARED_DATA, load_local

select = load_local("select_sentences")
DICTIONARY = {"the", "company", "company's", "was", "wasn't", "can't", "a", "good", "year",
              "for", "it", "said", "stocks", "fell", "today"}


def test_detokenize_joins_every_clitic_and_keeps_lone_apostrophe():
    tokens = "it was n't ca n't company 's they 're we 've you 'll he 'd i 'm investors '".split()
    assert select.detokenize(tokens) == [
        "it", "wasn't", "can't", "company's", "they're", "we've", "you'll", "he'd", "i'm",
        "investors", "'",
    ]
    assert select.detokenize(["'s", "a"]) == ["'s", "a"]  # nothing to join to


def test_sentence_words_rules():
    good = " the company 's year was n't a good year for it \n"
    assert select.sentence_words(good, DICTIONARY) == \
        ["the", "company's", "year", "wasn't", "a", "good", "year", "for", "it"]
    assert select.sentence_words(good.replace("good", "<unk>"), DICTIONARY | {"<unk>"}) is None
    assert select.sentence_words(good.replace("good", "N"), DICTIONARY | {"n"}) is None
    assert select.sentence_words(good.replace("good", "$"), DICTIONARY | {"$"}) is None
    assert select.sentence_words(" the company said it fell \n", DICTIONARY) is None  # 5 words
    assert select.sentence_words(good.replace("good", "bad"), DICTIONARY) is None  # not in dict
    assert select.sentence_words(" The Company said stocks fell today for the year \n",
                                 DICTIONARY) == "the company said stocks fell today for the year".split()
    long = " " + " ".join(["the"] * 23) + " \n"
    assert select.sentence_words(long, DICTIONARY) is None
    assert select.sentence_words(long.replace("the ", "", 1), DICTIONARY) == ["the"] * 22


def test_dictionary_variants_count(tmp_path):
    path = tmp_path / "dict"
    path.write_text("read R IY D\nread(2) R EH D\nlive(3) L IH V\nQUIT K W IH T\n")
    assert select.read_dictionary_words(path) == {"read", "live", "quit"}


def test_select_sentences_respects_line_range_and_count():
    lines = [" the company said it fell today for the year \n"] * 5
    lines[1] = " <unk> \n"
    chosen = select.select_sentences(lines, DICTIONARY, 2, 5, 2)
    assert [number for number, _ in chosen] == [3, 4]
    assert select.select_sentences(lines, DICTIONARY, 1, 5, 10)[-1][0] == 5


def test_reproduces_the_dev_set_selection(cmudict_path):
    ptb, dev = SHARED_DATA / "ptb" / "ptb.test.txt", SHARED_DATA / "asr-dev" / "text"
    if not dev.exists():
        pytest.skip("shared data absent")
    lines = ptb.read_text(encoding="utf-8").splitlines()
    chosen = select.select_sentences(lines, select.read_dictionary_words(cmudict_path),
                                     1, len(lines) // 2, 240)
    expected = [line.split(" ", 1)[1] for line in dev.read_text(encoding="utf-8").splitlines()]
    assert [" ".join(words) for _, words in chosen] == expected
    assert chosen[-1][0] == 1729  # the README's last line used
