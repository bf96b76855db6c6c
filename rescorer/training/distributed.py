"""Multi-process data parallelism under torchrun.

``torchrun --nproc_per_node N -m rescorer train ...`` sets RANK, WORLD_SIZE
and LOCAL_RANK; each process takes its share of the B batch rows, gradients
are averaged by ``DistributedDataParallel`` and only rank 0 writes files.
Without those variables everything runs as a single process.
"""
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistributedContext:
    """Where this process sits in the job.

    Attributes:
      rank:
        Global process index, 0 .. world_size - 1.
      world_size:
        Number of processes (1 without torchrun).
      local_rank:
        Index on this machine; picks the GPU.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """True on the process that writes checkpoints, logs and output."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def all_reduce_sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum over processes (identity for one process)."""
        if self.active:
            values = values.clone()
            dist.all_reduce(values, op=dist.ReduceOp.SUM)
        return values

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def launched_rank() -> int:
    """This process's rank as set by torchrun (0 without torchrun)."""
    return int(os.environ.get("RANK", "0"))


def init_distributed(device_type: str) -> DistributedContext:
    """Join the torchrun process group if launched by torchrun.

    Args:
      device_type:
        "cuda" (NCCL backend) or "cpu" (gloo backend).

    Returns:
      The context; a single-process one when WORLD_SIZE is unset or 1.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext()
    context = DistributedContext(
        rank=int(os.environ["RANK"]),
        world_size=world_size,
        local_rank=int(os.environ.get("LOCAL_RANK", "0")),
    )
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return context


def shutdown_distributed(context: DistributedContext) -> None:
    """Leave the process group (no-op for a single process)."""
    if context.active and dist.is_initialized():
        dist.destroy_process_group()
