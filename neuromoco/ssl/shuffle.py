"""Key-batch shuffling for MoCo's shuffle-BN, on one device and across DDP ranks.

The key encoder sees its batch in a random order (one device, with split
batch-norm) or a random slice of the global batch (DDP, where each rank's
batch-norm is one split), and its output is put back in the original order,
so the key of sample ``i`` is normalised with other samples than its query
(MoCo, facebookresearch/moco ``moco/builder.py``, ``_batch_shuffle_ddp``).
Tensors are multi-step, ``[T, B, ...]``: shuffling acts on axis 1.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def distributed() -> bool:
    """True when a process group with more than one rank is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


@torch.no_grad()
def concat_all_gather(x: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """Concatenate ``x`` from every rank along ``dim`` (rank order); no gradient.

    Args:
        x: The same shape on every rank.
        dim: Axis to concatenate.

    Returns:
        ``x`` itself without a process group, else the concatenation.
    """
    if not distributed():
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts, dim=dim)


@torch.no_grad()
def shuffle_batch(x_seq: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shuffle the batch axis of ``[T, B, ...]``, across ranks when distributed.

    Args:
        x_seq: ``[T, B, ...]`` with the same ``B`` on every rank.

    Returns:
        The shuffled ``[T, B, ...]`` slice for this rank and the index that undoes it.
    """
    if not distributed():
        perm = torch.randperm(x_seq.shape[1], device=x_seq.device)
        return x_seq[:, perm], torch.argsort(perm)
    gathered = concat_all_gather(x_seq, dim=1)  # (T, W*B, ...)
    total = gathered.shape[1]
    perm = torch.randperm(total, device=x_seq.device)
    dist.broadcast(perm, src=0)  # every rank uses rank 0's permutation
    unshuffle = torch.argsort(perm)
    mine = perm.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[:, mine], unshuffle


@torch.no_grad()
def unshuffle_batch(y_seq: torch.Tensor, unshuffle: torch.Tensor) -> torch.Tensor:
    """Undo :func:`shuffle_batch` on the key encoder's output.

    Args:
        y_seq: ``[T, B, ...]`` computed on the shuffled batch.
        unshuffle: The index :func:`shuffle_batch` returned.

    Returns:
        ``[T, B, ...]`` in the original order of this rank's batch.
    """
    if not distributed():
        return y_seq[:, unshuffle]
    gathered = concat_all_gather(y_seq, dim=1)  # (T, W*B, ...)
    mine = unshuffle.view(dist.get_world_size(), -1)[dist.get_rank()]
    return gathered[:, mine]
