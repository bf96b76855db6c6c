"""The training state in ``last.pt``: what ``--resume`` needs to continue bitwise.

``last.pt`` is a model checkpoint (``rescorer.model.checkpoint``) plus::

    "training": {
        "epoch": completed epochs,
        "optimizer": optimizer.state_dict(), "schedule": PlateauSchedule.state(),
        "history": the epoch log records, "settings": {RESUME_KEYS}, "world_size": W,
        "data_key": the training cache's key (a mid-epoch position needs the same text),
        "ranks": [per process: {"rng": {"cpu": ByteTensor, "cuda": [ByteTensor]},
                                "position": None at an epoch end, else
                                {"step": segments done in epoch + 1,
                                 "carry": [solver carry parts of this rank's rows],
                                 "totals": float64 (2,) NLL and tokens so far}}],
    }

It is written at every epoch end and, with ``--save-every-steps S``, every S
steps mid-epoch. Every process's RNG and carry are gathered to rank 0, so a
resumed DDP run with the same number of processes continues exactly too.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor

from rescorer.errors import CheckpointError, ConfigError
from rescorer.solvers.protocol import State
from rescorer.training.distributed import DistributedContext

# Settings that must not change when a run is resumed.
RESUME_KEYS = ("batch_size", "bptt", "optimizer", "seed")


@dataclass
class EpochPosition:
    """Where a mid-epoch checkpoint left this process's rows.

    Attributes:
      step:
        Segments of the epoch already trained.
      carry:
        The solver carry after them (detached), or None.
      totals:
        1-D float64 tensor of shape (2,): NLL sum and token count so far.
    """

    step: int
    carry: Optional[State]
    totals: Tensor


def rank_state(device: torch.device, position: Optional[EpochPosition]) -> Dict[str, Any]:
    """This process's RNG states and epoch position, on the CPU."""
    state: Dict[str, Any] = {
        "rng": {
            "cpu": torch.get_rng_state(),
            "cuda": [torch.cuda.get_rng_state(device)] if device.type == "cuda" else [],
        },
        "position": None,
    }
    if position is not None:
        carry = None if position.carry is None else [part.detach().cpu() for part in position.carry]
        state["position"] = {"step": position.step, "carry": carry, "totals": position.totals.cpu()}
    return state


def gather_rank_states(context: DistributedContext, state: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Every process's ``rank_state`` in rank order (collective under DDP)."""
    if not context.active:
        return [state]
    gathered: List[Any] = [None] * context.world_size
    dist.all_gather_object(gathered, state)
    return gathered


def check_resumable(config: Any, checkpoint: Dict[str, Any], path: Path, world_size: int) -> None:
    """Refuse to resume with a different model, batching or (mid-epoch) process count.

    Args:
      config:
        The ``TrainConfig`` given now.
    """
    if not isinstance(checkpoint.get("training"), dict):
        raise CheckpointError("not a resumable checkpoint (no 'training' entry; use last.pt)", path=path)
    training = checkpoint["training"]
    stored = training["settings"]
    expected = dataclasses.asdict(config.model_config(checkpoint["config"]["vocab_size"]))
    differences = [f"{key}: {checkpoint['config'][key]!r} != {value!r}" for key, value in expected.items()
                   if checkpoint["config"].get(key) != value]
    differences += [f"{key}: {stored[key]!r} != {getattr(config, key)!r}" for key in RESUME_KEYS
                    if stored.get(key) != getattr(config, key)]
    if differences:
        changes = "; ".join(differences)
        raise ConfigError(f"cannot resume with different settings (stored != given: {changes})", path=path)
    ranks = training.get("ranks", [])
    mid_epoch = any(rank.get("position") is not None for rank in ranks)
    if mid_epoch and len(ranks) != world_size:
        raise ConfigError(
            f"a mid-epoch checkpoint resumes only with the same number of processes "
            f"(expected {len(ranks)}, got {world_size})",
            path=path,
        )


def restore_rank(training: Dict[str, Any], context: DistributedContext, device: torch.device,
                 seed: int) -> Optional[EpochPosition]:
    """Set this process's RNG states from ``last.pt``; returns its epoch position (None at an epoch end).

    A checkpoint of another process count (or one written before per-process
    states were kept) restores rank 0's RNG, and the other ranks reseed
    deterministically from the seed and the epoch.
    """
    ranks = training.get("ranks") or [{"rng": training["rng"], "position": None}]
    if len(ranks) != context.world_size and context.rank > 0:
        torch.manual_seed(seed + 1000 * (int(training["epoch"]) + 1) + context.rank)
        return None
    mine = ranks[context.rank]
    torch.set_rng_state(mine["rng"]["cpu"])
    if device.type == "cuda" and mine["rng"].get("cuda"):
        torch.cuda.set_rng_state(mine["rng"]["cuda"][0], device)
    position = mine.get("position")
    if position is None:
        return None
    carry = None if position["carry"] is None else tuple(part.to(device) for part in position["carry"])
    return EpochPosition(int(position["step"]), carry, position["totals"].to(torch.float64))
