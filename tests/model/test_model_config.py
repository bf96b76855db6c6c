"""ModelConfig validates its fields and round-trips through asdict."""
from dataclasses import asdict

import pytest

from rescorer.errors import ConfigError
from rescorer.model.config import ModelConfig


def test_asdict_round_trip_uses_only_plain_types():
    config = ModelConfig(
        vocab_size=50, cell="gru", layers=2, embed_dim=8, hidden_dim=8, tied=True, dropout=0.25
    )
    state = asdict(config)
    assert all(isinstance(value, (int, float, str, bool)) for value in state.values())
    assert ModelConfig(**state) == config


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"cell": "transformer"}, "unknown cell"),
        ({"solver": "newton"}, "unknown solver"),
        ({"layers": 0}, "layers must be a positive integer"),
        ({"iterations": 2.5}, "iterations must be a positive integer"),
        ({"dropout": 1.0}, "dropout must be in [0, 1)"),
        ({"tied": True, "embed_dim": 8, "hidden_dim": 16}, "embed_dim=8, hidden_dim=16"),
    ],
)
def test_invalid_settings_raise_config_error(changes, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        ModelConfig(vocab_size=10, **changes)
