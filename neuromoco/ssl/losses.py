"""InfoNCE on time-mean features and MixInfoNCE, for per-step spiking projections.

Notation (../shared/reference/neuromoco_asnn.md, section 1.5): ``q_t``, ``k_t``
are L2-normalised per-step projections of the query (master) and key
(subordinate, momentum) encoders; the queue holds per-step keys ``n_t`` of
earlier batches; ``x̄ = normalise(mean_t x_t)`` for queries, keys and queue
entries alike, so the per-step and the time-mean terms see negatives built
exactly like their positives.

    NCE(q, k, N)  = -log( exp(q·k/τ) / (exp(q·k/τ) + Σ_{n∈N} exp(q·n/τ)) )
    infonce       = NCE(q̄, k̄, N̄)
    mixinfonce    = λ · mean_t NCE(q_t, k_t, N_t) + (1 − λ) · NCE(q̄, k̄, N̄)

Both are averaged over the batch. With λ = 0 MixInfoNCE is InfoNCE.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("infonce", "mixinfonce")


def time_mean(z_seq: torch.Tensor, time_dim: int = 0) -> torch.Tensor:
    """``normalise(mean_t z_t)``.

    Args:
        z_seq: Per-step vectors with time on ``time_dim``, e.g. ``[T, B, d]`` or ``[K, T, d]``.
        time_dim: The axis to average.

    Returns:
        Unit vectors with ``time_dim`` removed.
    """
    return F.normalize(z_seq.mean(time_dim), dim=-1)


def nce(query: torch.Tensor, key: torch.Tensor, negatives: torch.Tensor, temperature: float) -> torch.Tensor:
    """Batched InfoNCE with a shared set of negatives, as MoCo computes it.

    Args:
        query: ``[..., B, d]`` unit vectors (with gradient).
        key: ``[..., B, d]`` unit vectors, the positives.
        negatives: ``[..., K, d]`` unit vectors, the same leading axes as ``query``.
        temperature: ``τ`` > 0.

    Returns:
        The mean of ``NCE`` over all leading axes and the batch; a scalar.
    """
    positive = (query * key).sum(-1, keepdim=True)  # (..., B, 1)
    negative = query @ negatives.transpose(-1, -2)  # (..., B, K)
    logits = torch.cat([positive, negative], dim=-1) / temperature  # (..., B, 1+K)
    # The positive sits at index 0, so NCE is cross-entropy against label 0.
    return -torch.log_softmax(logits, dim=-1)[..., 0].mean()


def mix_info_nce(
    query_seq: torch.Tensor, key_seq: torch.Tensor, queue_seq: torch.Tensor, temperature: float, mix_lambda: float
) -> torch.Tensor:
    """MixInfoNCE: ``λ · mean_t NCE(q_t, k_t, N_t) + (1 − λ) · NCE(q̄, k̄, N̄)``.

    Args:
        query_seq: ``[T, B, d]`` per-step unit query projections.
        key_seq: ``[T, B, d]`` per-step unit key projections (no gradient).
        queue_seq: ``[K, T, d]`` per-step unit keys of earlier batches.
        temperature: ``τ`` > 0.
        mix_lambda: ``λ`` in [0, 1]; 0 skips the per-step term (plain time-mean InfoNCE).

    Returns:
        Scalar loss.
    """
    loss = (1.0 - mix_lambda) * nce(time_mean(query_seq), time_mean(key_seq), time_mean(queue_seq, 1), temperature)
    if mix_lambda > 0.0:
        per_step = nce(query_seq, key_seq, queue_seq.transpose(0, 1), temperature)  # mean over t and b
        loss = loss + mix_lambda * per_step
    return loss


def info_nce(query_seq: torch.Tensor, key_seq: torch.Tensor, queue_seq: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE on time-mean features, ``NCE(q̄, k̄, N̄)``; arguments as :func:`mix_info_nce`."""
    return mix_info_nce(query_seq, key_seq, queue_seq, temperature, 0.0)
