"""Checkpoints: weights_only loading, self-contained model.pt, clear errors on damage."""
import dataclasses

import pytest
import torch

from rescorer.formats.torch_pickle import safe_torch_load

from rescorer.errors import CheckpointError
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.data.vocab import WordVocabulary
from rescorer.model.checkpoint import load_model, model_payload, save_checkpoint


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(0)
    vocab = WordVocabulary.build([["a", "b", "c"]])
    model = FixedPointLM(ModelConfig(vocab_size=vocab.size, embed_dim=8, hidden_dim=8, tied=True, iterations=3))
    path = tmp_path / "model.pt"
    save_checkpoint(path, model_payload(model, vocab))
    return path, model, vocab


TORCH_2 = int(torch.__version__.split(".")[0]) >= 2


def test_model_checkpoint_loads_with_weights_only(saved):
    """torch >= 2 loads it with weights_only; torch 1.13's weights-only unpickler
    lacks the float opcode, so there the project's equally strict loader does."""
    path, model, vocab = saved
    payload = torch.load(path, weights_only=True) if TORCH_2 else safe_torch_load(path)
    assert payload["format"] == "fprescore-lm" and payload["version"] == 1
    assert payload["config"] == dataclasses.asdict(model.config)
    assert payload["vocab"] == {"kind": "word", "words": vocab.words}
    loaded, loaded_vocab = load_model(path)
    assert not loaded.training and loaded.config == model.config and loaded_vocab.words == vocab.words
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor)
    assert loaded.output.weight is loaded.embedding.weight  # tying survives the round trip


def test_truncated_checkpoint_names_the_file(saved):
    path = saved[0]
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt") as error:
        load_model(path)
    assert error.value.path == str(path)


def test_corrupted_checkpoint_names_the_file(saved):
    path = saved[0]
    data = bytearray(path.read_bytes())
    data[:64] = b"\x00" * 64  # destroy the zip header
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as error:
        load_model(path)
    assert error.value.path == str(path)


def test_missing_foreign_and_pickled_checkpoints_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "absent.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="not an fprescore LM checkpoint"):
        load_model(tmp_path / "foreign.pt")
    torch.save({"format": "fprescore-lm", "version": 1, "config": {}, "vocab": {}, "model": {}, "x": ValueError("x")},
               tmp_path / "pickle.pt")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):  # weights_only refuses the object
        load_model(tmp_path / "pickle.pt")


def test_weights_that_do_not_fit_are_refused(saved, tmp_path):
    path = saved[0]
    payload = safe_torch_load(path)
    payload["config"]["hidden_dim"] = 9
    payload["config"]["embed_dim"] = 9
    save_checkpoint(tmp_path / "bad.pt", payload)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_model(tmp_path / "bad.pt")
