"""Training from the token cache equals training from today's in-memory stream, bitwise."""
import json
from pathlib import Path

import pytest
import torch

from rescorer.data.batching import contiguous_rows, encode_sentences
from rescorer.data.corpus import read_sentences
from rescorer.data.vocab import WordVocabulary
from rescorer.errors import ConfigError
from rescorer.formats.torch_pickle import safe_torch_load
from rescorer.model.checkpoint import load_model
from rescorer.training import loop
from rescorer.training.loop import train

from training_builders import tiny_config

PTB = Path(__file__).resolve().parents[3] / "shared" / "data" / "ptb"


class InMemoryRows:
    """Today's path: every sentence in memory, ``contiguous_rows`` over the encoded stream."""

    def __init__(self, batch):
        self.batch = batch

    def shard(self, rank, world_size):
        assert world_size == 1
        return self.batch


def run_both(tmp_path, monkeypatch, corpus, **settings):
    """(cached run's log, weights), (in-memory run's log, weights) with identical settings."""
    results = []
    for name in ("cached", "in-memory"):
        if name == "in-memory":
            def in_memory_rows(cache, rows):
                sentences = read_sentences(corpus[0])
                stream = encode_sentences(sentences, WordVocabulary.build(sentences))  # no RNG use here
                return InMemoryRows(contiguous_rows(stream, rows))

            monkeypatch.setattr(loop, "training_rows", in_memory_rows)
        train(tiny_config(corpus, tmp_path / name, **settings))
        log = [json.loads(line) for line in (tmp_path / name / "log.jsonl").read_text().splitlines()]
        ppls = [(record.get("train_ppl"), record.get("valid_ppl"), record.get("test_ppl")) for record in log]
        results.append((ppls, safe_torch_load(tmp_path / name / "model.pt")["model"]))
    return results


@pytest.mark.skipif(not (PTB / "ptb.valid.txt").is_file(), reason="needs ../shared/data/ptb")
def test_ptb_mini_cached_training_has_identical_loss_and_weights(tmp_path, monkeypatch):
    corpus = (PTB / "ptb.valid.txt", PTB / "ptb.test.txt", None)
    (cached, cached_weights), (memory, memory_weights) = run_both(
        tmp_path, monkeypatch, corpus, epochs=1, batch_size=20, bptt=35, dropout=0.1, valid_max_tokens=5000)
    assert cached == memory
    assert cached[0][0] < 5792  # it learned something on its 5,792-token vocabulary
    for name in cached_weights:
        assert torch.equal(cached_weights[name], memory_weights[name]), name


def test_tiny_corpus_cached_training_is_identical_over_epochs(corpus, tmp_path, monkeypatch):
    (cached, cached_weights), (memory, memory_weights) = run_both(tmp_path, monkeypatch, corpus, epochs=2, dropout=0.2)
    assert cached == memory and len(cached) == 3
    for name in cached_weights:
        assert torch.equal(cached_weights[name], memory_weights[name]), name


def test_valid_max_tokens_bounds_validation(corpus, tmp_path):
    full = train(tiny_config(corpus, tmp_path / "full", epochs=1, lr=0.01))
    bounded = train(tiny_config(corpus, tmp_path / "bounded", epochs=1, lr=0.01, valid_max_tokens=30))
    assert bounded.train_ppl == full.train_ppl  # same training
    assert bounded.valid_ppl != full.valid_ppl  # fewer validation sentences
    assert bounded.test_ppl == full.test_ppl  # the test text is scored whole


def test_vocabulary_options_and_oov_rate_in_the_log(corpus, tmp_path):
    result = train(tiny_config(corpus, tmp_path / "run", epochs=1, max_vocab_size=10))
    model, vocab = load_model(result.model_path)
    assert vocab.size == model.config.vocab_size == 10
    final = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert 0.0 < final["train_oov_rate"] < 1.0
    with pytest.raises(ConfigError, match="exclude --sp-vocab-size"):
        train(tiny_config(corpus, tmp_path / "other", max_vocab_size=10, sp_vocab_size=30))


def test_absurd_model_sizes_fail_before_any_allocation(corpus, tmp_path):
    with pytest.raises(ConfigError, match="iterations is out of bounds"):
        train(tiny_config(corpus, tmp_path / "run", iterations=10**12))
    with pytest.raises(ConfigError, match="hidden_dim is out of bounds"):
        train(tiny_config(corpus, tmp_path / "run2", hidden_dim=10**7))


def test_mid_epoch_resume_refuses_a_changed_training_text(corpus, tmp_path):
    train(tiny_config(corpus, tmp_path / "run", epochs=1, save_every_steps=2))
    last = tmp_path / "run" / "last.pt"
    payload = safe_torch_load(last)
    payload["training"]["epoch"] = 0  # pretend the run stopped at step 2 of epoch 1
    payload["training"]["ranks"][0]["position"] = {"step": 2, "carry": None,
                                                    "totals": torch.zeros(2, dtype=torch.float64)}
    from rescorer.model.checkpoint import save_checkpoint

    save_checkpoint(last, payload)
    corpus[0].write_text(corpus[0].read_text() + " one more line \n")
    with pytest.raises(ConfigError, match="the training text changed"):
        train(tiny_config(corpus, tmp_path / "run", epochs=1, save_every_steps=2, resume=True))
