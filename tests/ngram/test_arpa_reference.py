"""The tensor scorer against two independent references on the asr-dev-ptb3g trigram.

- ``DictBackoff``: a plain-Python reading of the ARPA text and the textbook
  back-off recursion (no code shared with ``rescorer.ngram``); agreement is to
  float32 storage precision.
- ``pocketsphinx.NGramModel``: its scores are integers in log base 1.0001 and
  it stores probabilities and back-off weights quantized, so tokens differ by
  up to 2.8e-4 nats on this file (measured: 5000 queries, mean -4.5e-5, no
  trend with the number of back-offs); we allow 5e-4 per token.
"""
import math
import random

import pytest
import torch

from rescorer.ngram.arpa import read_arpa
from rescorer.ngram.model import NgramLM

LN10 = math.log(10.0)
PS_TOLERANCE = 5e-4  # nats per token, pocketsphinx's quantization
UNKNOWN = "zzzunknownzzz"


class DictBackoff:
    """ln P(w | h) from the ARPA text with dictionaries (reference only)."""

    def __init__(self, path):
        self.prob, self.bow, order = {}, {}, 0
        for line in open(path, encoding="utf-8"):
            line = line.strip()
            if line.startswith("\\") and line.endswith("-grams:"):
                order = int(line[1:line.index("-")])
            elif line and order and not line.startswith("\\"):
                fields = line.split()
                words = tuple(fields[1:order + 1])
                self.prob[words] = float(fields[0]) * LN10
                if len(fields) == order + 2:
                    self.bow[words] = float(fields[order + 1]) * LN10
        self.order = max(len(key) for key in self.prob)

    def log_prob(self, history, word):
        history = tuple(history[-(self.order - 1):]) if self.order > 1 else ()
        if history + (word,) in self.prob:
            return self.prob[history + (word,)]
        if not history:
            return -100.0 * LN10  # an unknown word: the documented <unk> convention
        return self.bow.get(history, 0.0) + self.log_prob(history[1:], word)


@pytest.fixture(scope="module")
def models(shared_arpa):
    lm = NgramLM.from_arpa(read_arpa(shared_arpa), shared_arpa)
    return lm, DictBackoff(shared_arpa)


def _queries(lm, count, seed):
    """Random (history words, word) pairs: mostly back-offs, with <s>, </s> and unknowns."""
    rng = random.Random(seed)
    words = [word for word in lm.vocabulary.words if word not in ("<s>", "</s>", "<unk>")]
    queries = []
    for index in range(count):
        history = [rng.choice(words) for _ in range(rng.randint(0, 3))]
        if index % 4 == 0:  # at the sentence start
            history = ["<s>"] + history[:rng.randint(0, 1)]
        elif index % 4 == 1 and history:  # an unknown word somewhere in the history
            history[rng.randrange(len(history))] = UNKNOWN
        target = "</s>" if index % 4 == 2 else rng.choice(words)
        queries.append((history, target))
    return queries


def _trigram_queries(path, count, seed):
    """Histories and words of real 3-grams of the file, so the highest order is hit."""
    rng = random.Random(seed)
    trigrams, inside = [], False
    for line in open(path, encoding="utf-8"):
        inside = inside or line.startswith("\\3-grams:")
        fields = line.split()
        if inside and len(fields) == 4:
            trigrams.append(fields[1:4])
    return [(trigram[:2], trigram[2]) for trigram in rng.sample(trigrams, count)]


def _score(lm, queries):
    width = max(1, max(len(history) for history, _ in queries))
    histories = torch.zeros(len(queries), width, dtype=torch.int64)
    for row, (history, _) in enumerate(queries):
        ids = [lm.vocabulary.encode_word(word)[0] for word in history]
        histories[row, :len(ids)] = torch.tensor(ids, dtype=torch.int64)
    lengths = torch.tensor([len(history) for history, _ in queries], dtype=torch.int64)
    tokens = torch.tensor([lm.vocabulary.encode_word(word)[0] for _, word in queries])
    return lm.log_probs(histories, lengths, tokens)


def _pocketsphinx(path):
    pocketsphinx = pytest.importorskip("pocketsphinx")
    return pocketsphinx.NGramModel.readfile(str(path))


def test_random_queries_match_dict_reference(models, shared_arpa):
    lm, reference = models
    queries = _queries(lm, 4000, seed=1) + _trigram_queries(shared_arpa, 1000, seed=2)
    got = _score(lm, queries)
    expected = torch.tensor([reference.log_prob(h, w) for h, w in queries], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=0, atol=2e-5)


def test_random_queries_match_pocketsphinx(models, shared_arpa):
    lm, _ = models
    ps_model = _pocketsphinx(shared_arpa)
    queries = _queries(lm, 4000, seed=3) + _trigram_queries(shared_arpa, 1000, seed=4)
    got = _score(lm, queries)
    # pocketsphinx: history most recent first, scores in log base 1.0001.
    expected = torch.tensor([ps_model.prob([w] + h[::-1]) * math.log(1.0001) for h, w in queries],
                            dtype=torch.float64)
    assert (got - expected).abs().max() <= PS_TOLERANCE
    # The sample really exercises every order and the back-off: count the cases.
    _, reference = models
    hits = [len(h[-2:]) + 1 if tuple(h[-2:]) + (w,) in reference.prob else 0 for h, w in queries]
    assert hits.count(3) >= 1000 and hits.count(0) >= 2000


def test_unknown_words_in_history_back_off_like_pocketsphinx(models, shared_arpa):
    lm, _ = models
    ps_model = _pocketsphinx(shared_arpa)
    queries = [([UNKNOWN], "the"), (["<s>", UNKNOWN], "company"), ([UNKNOWN, "the"], "company")]
    got = _score(lm, queries)
    expected = torch.tensor([ps_model.prob([w] + h[::-1]) * math.log(1.0001) for h, w in queries],
                            dtype=torch.float64)
    assert (got - expected).abs().max() <= PS_TOLERANCE
    # pocketsphinx gives an unknown *prediction* probability 0; ours is the documented 10^-100.
    unknown = _score(lm, [(["<s>"], UNKNOWN)])
    expected_unknown = -100.0 * LN10 + models[1].bow[("<s>",)]
    torch.testing.assert_close(unknown, torch.tensor([expected_unknown], dtype=torch.float64),
                               rtol=0, atol=1e-5)


def test_sentence_scores_match_pocketsphinx(models, shared_arpa):
    lm, _ = models
    ps_model = _pocketsphinx(shared_arpa)
    text = shared_arpa.parents[1] / "text"
    sentences = [line.split()[1:] for line in open(text, encoding="utf-8")]
    sentences = [[w for w in s if w in lm.vocabulary.index] for s in sentences]
    got = lm.sentence_log_probs([[lm.vocabulary.index[w] for w in s] for s in sentences])
    for sentence, score in zip(sentences, got.tolist()):
        history, expected = ["<s>"], 0.0
        for word in sentence + ["</s>"]:
            expected += ps_model.prob([word] + history[::-1][:2]) * math.log(1.0001)
            history.append(word)
        assert abs(score - expected) <= PS_TOLERANCE * (len(sentence) + 1)
    assert len(sentences) == 240
