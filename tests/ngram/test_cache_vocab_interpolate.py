"""Binary cache, word mapping parity with the neural LM vocabulary, interpolation."""
import math
import os

import pytest
import torch

from rescorer.data.vocab import WordVocabulary
from rescorer.errors import InputFormatError
from rescorer.ngram import cache as cache_module
from rescorer.ngram.cache import cache_file, load_ngram
from rescorer.ngram.interpolate import interpolate_log_probs
from rescorer.ngram.model import ArpaVocabulary


def _same_model(first, second):
    assert first.vocabulary.words == second.vocabulary.words
    assert first.order == second.order
    for ours, theirs in zip(first.tables, second.tables):
        assert torch.equal(ours.keys, theirs.keys)
        assert torch.equal(ours.log_probs.nan_to_num(7.0), theirs.log_probs.nan_to_num(7.0))
        assert torch.equal(ours.backoffs, theirs.backoffs)


def test_cache_is_written_then_used(tiny_arpa, tmp_path, monkeypatch):
    progress = []
    first = load_ngram(tiny_arpa, cache_dir=tmp_path / "cache", progress=lambda d, t: progress.append((d, t)))
    assert cache_file(tiny_arpa, tmp_path / "cache").is_file()
    assert progress[-1][0] == progress[-1][1] == tiny_arpa.stat().st_size
    monkeypatch.setattr(cache_module, "read_arpa", lambda *a: pytest.fail("the ARPA was parsed again"))
    _same_model(first, load_ngram(tiny_arpa, cache_dir=tmp_path / "cache"))


def test_stale_or_corrupt_cache_is_rebuilt(tiny_arpa, tmp_path):
    cache_dir = tmp_path / "cache"
    load_ngram(tiny_arpa, cache_dir=cache_dir)
    target = cache_file(tiny_arpa, cache_dir)
    # A changed ARPA (new mtime and size): the cache must not be used.
    tiny_arpa.write_text(tiny_arpa.read_text().replace("-0.05\ta b c", "-0.06\ta b c"))
    os.utime(tiny_arpa, ns=(1, 1))
    changed = load_ngram(tiny_arpa, cache_dir=cache_dir)
    assert torch.any(torch.isclose(changed.tables[2].log_probs.double(),
                                   torch.tensor(-0.06 * math.log(10), dtype=torch.float64)))
    target.write_bytes(b"not a torch file")
    _same_model(changed, load_ngram(tiny_arpa, cache_dir=cache_dir))
    assert target.read_bytes() != b"not a torch file"  # rewritten


def test_missing_arpa_is_an_input_error(tmp_path):
    with pytest.raises(InputFormatError, match="nothing.arpa"):
        load_ngram(tmp_path / "nothing.arpa", cache_dir=tmp_path)


def test_word_mapping_follows_the_neural_lm_rules():
    words = ["<s>", "</s>", "<unk>", "the", "company", "'s", "was", "n't", "ca", "can", "investors", "'"]
    arpa = ArpaVocabulary(words)
    neural = WordVocabulary(["<eos>"] + words[2:])
    probes = ["the", "company's", "wasn't", "can't", "investors'", "zebra's", "zebra", "CAN'T", "'s"]
    for word in probes:
        ours = [arpa.words[i] for i in arpa.encode_word(word)]
        theirs = [neural.words[i] for i in neural.encode_word(word)]
        assert ours == theirs, word
    assert [arpa.words[i] for i in arpa.encode_word("can't")] == ["ca", "n't"]


def test_interpolation_is_the_probability_mixture():
    ngram = torch.tensor([math.log(0.2), math.log(0.5), -1000.0], dtype=torch.float64)
    nnlm = torch.tensor([math.log(0.6), math.log(0.5), math.log(0.1)], dtype=torch.float32)
    got = interpolate_log_probs(ngram, nnlm, 0.25)
    # 0.75 * 0.2 + 0.25 * 0.6 = 0.3; 0.5; 0.75 * e^-1000 + 0.25 * 0.1 = 0.025 (no underflow to -inf)
    expected = torch.tensor([math.log(0.3), math.log(0.5), math.log(0.025)], dtype=torch.float64)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-7)
    assert torch.equal(interpolate_log_probs(ngram, nnlm, 0.0), ngram)
    assert torch.equal(interpolate_log_probs(ngram, nnlm, 1.0), nnlm.double())
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        interpolate_log_probs(ngram, nnlm, 1.5)
