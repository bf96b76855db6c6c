"""The one place that turns a ``--device`` option into a ``torch.device``."""
import torch

from rescorer.errors import ConfigError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cuda" must be available.

    Args:
      name:
        "auto", "cpu" or "cuda".
      local_rank:
        The CUDA device index to use (torchrun's LOCAL_RANK; 0 otherwise).

    Raises:
      ConfigError: for an unknown name, or "cuda" on a machine without CUDA.
    """
    if name not in DEVICES:
        raise ConfigError(f"unknown device (expected auto, cpu or cuda, got {name!r})")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda, but CUDA is not available (use --device cpu or auto)")
    if name == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", local_rank)
