"""Model configuration: the plain-typed description stored in every checkpoint.

``FixedPointLM(config)`` plus its ``state_dict`` fully describe a model, so a
checkpoint holds ``dataclasses.asdict(config)`` and tensors only.

Examples:
    >>> config = ModelConfig(vocab_size=10000, cell="lstm", layers=2,
    ...                      embed_dim=650, hidden_dim=650, dropout=0.5,
    ...                      solver="jacobi", iterations=4)
    >>> ModelConfig(**dataclasses.asdict(config)) == config
    True
"""
from dataclasses import dataclass

from rescorer.errors import ConfigError

CELLS = ("rnn", "gru", "lstm")
SOLVERS = ("jacobi", "sequential")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
# Sane upper bounds, checked before anything is allocated (a bad checkpoint or
# option gets one line, not an allocation failure deep inside torch).
MAX_VALUES = {"vocab_size": 2**24, "layers": 64, "embed_dim": 65536, "hidden_dim": 65536, "iterations": 1024}
MAX_PARAMETERS = 2**31  # 8 GiB of float32 weights


@dataclass
class ModelConfig:
    """Architecture and inference settings of a ``FixedPointLM``.

    Attributes:
      vocab_size:
        V, number of LM tokens.
      cell:
        "rnn" (tanh Elman), "gru" or "lstm".
      layers:
        L, number of stacked recurrent layers.
      embed_dim:
        E, embedding size.
      hidden_dim:
        H, hidden (and LSTM cell) state size.
      tied:
        Share the embedding matrix with the output projection (needs E == H).
      dropout:
        Drop probability on embeddings, between layers and before the output.
      solver:
        "jacobi" (K fixed-point iterations, a (K+1)-gram model) or "sequential"
        (ordinary recurrence over the whole sentence).
      iterations:
        K, the number of Jacobi iterations = tokens of history; ignored by
        the sequential solver.
    """

    vocab_size: int
    cell: str = "lstm"
    layers: int = 1
    embed_dim: int = 256
    hidden_dim: int = 256
    tied: bool = False
    dropout: float = 0.0
    solver: str = "jacobi"
    iterations: int = 4

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"unknown cell (expected one of {CELLS}, got {self.cell!r})")
        if self.solver not in SOLVERS:
            raise ConfigError(f"unknown solver (expected one of {SOLVERS}, got {self.solver!r})")
        for name, limit in MAX_VALUES.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer (got {value!r:.40})")
            if value > limit:
                raise ConfigError(f"{name} is out of bounds (expected at most {limit}, got {value})")
        if not isinstance(self.tied, bool):
            raise ConfigError(f"tied must be true or false (got {self.tied!r:.40})")
        if not isinstance(self.dropout, (int, float)) or isinstance(self.dropout, bool):
            raise ConfigError(f"dropout must be a number (got {self.dropout!r:.40})")
        if self.parameter_count() > MAX_PARAMETERS:
            raise ConfigError(
                f"model too large (expected at most {MAX_PARAMETERS} parameters, got {self.parameter_count()})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1) (got {self.dropout!r})")
        if self.tied and self.embed_dim != self.hidden_dim:
            raise ConfigError(
                "tied embeddings need embed_dim == hidden_dim "
                f"(got embed_dim={self.embed_dim}, hidden_dim={self.hidden_dim})"
            )

    def parameter_count(self) -> int:
        """Number of weights ``FixedPointLM(self)`` allocates (tied weights counted once)."""
        gates = GATES[self.cell] * self.hidden_dim
        recurrent = 0
        for layer in range(self.layers):
            inputs = self.embed_dim if layer == 0 else self.hidden_dim
            recurrent += gates * (inputs + 1) + gates * self.hidden_dim + (gates if self.cell == "gru" else 0)
        output = self.vocab_size * ((0 if self.tied else self.hidden_dim) + 1)  # weight (shared if tied) + bias
        return self.vocab_size * self.embed_dim + recurrent + output
