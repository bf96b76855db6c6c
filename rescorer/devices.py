"""Choosing the torch device from a ``--device`` option (one rule for every command)."""
import torch

from rescorer.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The device for a ``--device`` value.

    Args:
      name:
        "auto" (CUDA when available, else CPU), "cpu" or "cuda".
      local_rank:
        The CUDA device index to use (a torchrun rank's ``LOCAL_RANK``).

    Raises:
      ConfigError: an unknown name, or "cuda" when CUDA is not available.
    """
    if name not in DEVICES:
        raise ConfigError(f"unknown --device (expected one of {DEVICES}, got {name!r})")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but CUDA is not available (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)
