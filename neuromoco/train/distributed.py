"""torch.distributed setup for ``torchrun``: one process per device, NCCL on CUDA, gloo on CPU."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from hw_targets.errors import ConfigError


@dataclass(frozen=True)
class DistContext:
    """Where this process sits in the job.

    Attributes:
        rank: Global rank (0 writes the run folder).
        world_size: Number of processes; 1 without torchrun.
        local_rank: Rank on this node (picks the CUDA device).
        device: The device this process trains on.
        owns_group: True when this process created the process group (and must destroy it).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    owns_group: bool

    @property
    def is_main(self) -> bool:
        """Rank 0."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """More than one process."""
        return self.world_size > 1


def pick_device(request: str, local_rank: int) -> torch.device:
    """The training device for ``[train] device``.

    Raises:
        ConfigError: ``cuda`` requested where there is none.
    """
    if request == "cuda" and not torch.cuda.is_available():
        raise ConfigError("[train] device='cuda' but CUDA is not available; use device='auto' or 'cpu'")
    if request in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    return torch.device("cpu")


def setup_distributed(device_request: str) -> DistContext:
    """Join the process group ``torchrun`` describes in the environment, if any.

    Reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``; with ``WORLD_SIZE`` > 1
    it initialises NCCL (CUDA) or gloo (CPU). A group that already exists
    (tests spawn their own) is used as it is.

    Args:
        device_request: ``[train] device``.

    Returns:
        The context; a single-process one without torchrun.
    """
    if dist.is_available() and dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", dist.get_rank()))
        device = pick_device(device_request, local_rank)
        return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, owns_group=False)
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_request, local_rank)
    if world_size <= 1:
        return DistContext(0, 1, 0, device, owns_group=False)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(
        backend="nccl" if device.type == "cuda" else "gloo", timeout=datetime.timedelta(minutes=30)
    )
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, device, owns_group=True)


def barrier(ctx: DistContext) -> None:
    """Wait for every rank (no-op with one process)."""
    if ctx.distributed:
        dist.barrier()


def teardown(ctx: DistContext) -> None:
    """Destroy the process group if this process created it."""
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()
