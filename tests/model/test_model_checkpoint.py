"""Checkpoints: weights_only loading, self-contained model.pt, clear errors on damage."""
import dataclasses
import zipfile
from pathlib import Path

import pytest
import torch

from rescorer.formats.torch_pickle import safe_torch_load

from rescorer.errors import CheckpointError, ConfigError
from rescorer.model.config import ModelConfig
from rescorer.model.lm import FixedPointLM
from rescorer.data.vocab import WordVocabulary
from rescorer.model.checkpoint import load_model, model_payload, save_checkpoint, weights_checksum


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


DEMO_LM = Path(__file__).resolve().parents[2] / "lattices" / "demo-lm.pt"


def rewrite(path, tmp_path, change):
    """A copy of the checkpoint at ``path`` with ``change(payload)`` applied, saved as bad.pt."""
    payload = safe_torch_load(path)
    change(payload)
    save_checkpoint(tmp_path / "bad.pt", payload)
    return tmp_path / "bad.pt"


def test_checksum_is_stored_and_a_changed_weight_is_refused(saved, tmp_path):
    path = saved[0]
    payload = safe_torch_load(path)
    assert payload["weights_sha256"] == weights_checksum(payload["model"]) and len(payload["weights_sha256"]) == 64

    def nudge(payload):
        payload["model"]["embedding.weight"][0, 0] += 1e-3

    with pytest.raises(CheckpointError, match="weights checksum mismatch") as error:
        load_model(rewrite(path, tmp_path, nudge))
    assert error.value.path == str(tmp_path / "bad.pt")


def test_flipped_bytes_in_the_file_are_refused(saved):
    """The issue's case: 64 bytes of the weights flipped in place load without complaint."""
    path, model, _ = saved
    data = bytearray(path.read_bytes())
    weight = model.state_dict()["cells.0.input_projection.weight"].numpy().tobytes()
    offset = bytes(data).find(weight[:256])
    assert offset > 0
    for index in range(offset + 64, offset + 128):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    # torch 2's loader ignores the zip CRC, so the checksum catches it; on torch 1.13 the
    # restricted loader reads the zip with Python's zipfile, whose CRC check comes first.
    expected = "checksum mismatch" if TORCH_2 else "checksum mismatch|Bad CRC-32"
    with pytest.raises(CheckpointError, match=expected) as error:
        load_model(path)
    assert error.value.path == str(path)


def test_flipped_bytes_in_a_checkpoint_without_a_checksum_are_refused(saved, tmp_path):
    """A checkpoint from before checksums (like lattices/demo-lm.pt): the zip's CRC-32 catches it."""
    path = rewrite(saved[0], tmp_path, lambda payload: payload.pop("weights_sha256"))
    weight = saved[1].state_dict()["cells.0.input_projection.weight"].numpy().tobytes()
    data = bytearray(path.read_bytes())
    offset = bytes(data).find(weight[:256])
    assert offset > 0
    for index in range(offset + 64, offset + 128):
        data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="Bad CRC-32") as error:
        load_model(path)
    assert error.value.path == str(path)


def test_non_finite_weights_are_refused_even_with_a_valid_checksum(saved, tmp_path):
    def poison(payload):
        payload["model"]["output.bias"][3] = float("nan")
        payload["weights_sha256"] = weights_checksum(payload["model"])

    with pytest.raises(CheckpointError, match=r"weight output.bias has 1 non-finite value\(s\)"):
        load_model(rewrite(saved[0], tmp_path, poison))

    def poison_old(payload):  # an older checkpoint without a checksum is checked too
        payload["model"]["output.bias"][3] = float("inf")
        del payload["weights_sha256"]

    with pytest.raises(CheckpointError, match="non-finite"):
        load_model(rewrite(saved[0], tmp_path, poison_old))


@pytest.mark.skipif(not DEMO_LM.is_file(), reason="lattices/demo-lm.pt is not in this checkout")
def test_checkpoints_without_a_checksum_still_load():
    assert "weights_sha256" not in safe_torch_load(DEMO_LM)  # written before checksums existed
    model, vocab = load_model(DEMO_LM)
    assert vocab.size == model.config.vocab_size == 5792


@pytest.mark.parametrize("key, value, message", [
    ("iterations", 10**12, "iterations is out of bounds"),
    ("hidden_dim", 10**7, "hidden_dim is out of bounds"),
    ("embed_dim", 10**7, "embed_dim is out of bounds"),
    ("vocab_size", 2**40, "vocab_size is out of bounds"),
    ("iterations", 1e12, "iterations must be a positive integer"),
    ("layers", "2", "layers must be a positive integer"),
    ("tied", "yes", "tied must be true or false"),
    ("surprise", 1, "unexpected keyword argument"),
])
def test_out_of_bounds_configs_are_one_line_before_any_allocation(saved, tmp_path, key, value, message):
    def change(payload):
        payload["config"][key] = value

    with pytest.raises(CheckpointError, match=message) as error:
        load_model(rewrite(saved[0], tmp_path, change))
    assert error.value.path == str(tmp_path / "bad.pt")


def test_model_size_is_bounded_as_a_whole():
    with pytest.raises(ConfigError, match="model too large"):
        ModelConfig(vocab_size=2**24, embed_dim=4096, hidden_dim=4096)


def crafted(path, tmp_path, pickle_bytes):
    """``path``'s zip records with data.pkl replaced by ``pickle_bytes``."""
    with zipfile.ZipFile(path) as source:
        records = {name: source.read(name) for name in source.namelist()}
    out = tmp_path / "crafted.pt"
    with zipfile.ZipFile(out, "w") as target:
        for name, content in records.items():
            target.writestr(name, pickle_bytes if name.endswith("data.pkl") else content)
    return out


@pytest.mark.parametrize("pickle_bytes", [
    b"\x80\x02ccollections\nOrderedDict\nK\x01K\x02\x86R.",  # OrderedDict(1, 2)
    b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nK\x01\x85R.",  # _rebuild_tensor_v2(1)
])
def test_crafted_pickle_calling_allowed_names_with_bad_arguments(saved, tmp_path, pickle_bytes):
    path = crafted(saved[0], tmp_path, pickle_bytes)
    with pytest.raises(CheckpointError, match="cannot read checkpoint") as error:
        load_model(path)
    assert error.value.path == str(path)


def test_malformed_entries_are_checkpoint_errors(saved, tmp_path):
    def not_a_tensor(payload):
        payload["model"]["output.bias"] = [1.0, 2.0]

    with pytest.raises(CheckpointError, match="is not a named tensor"):
        load_model(rewrite(saved[0], tmp_path, not_a_tensor))

    def bad_vocab(payload):
        payload["vocab"] = {"kind": "sentencepiece", "model_proto": 5}

    with pytest.raises(CheckpointError, match="invalid model config or vocabulary"):
        load_model(rewrite(saved[0], tmp_path, bad_vocab))
