"""NeuroMoCo: a query (master) encoder trained by gradient, a key (subordinate) EMA encoder, a key queue.

Each encoder is a spiking backbone followed by a 2-layer MLP projection head
applied at every step; its per-step outputs are L2-normalised and contrasted
with MixInfoNCE or time-mean InfoNCE (:mod:`neuromoco.ssl.losses`). The queue
stores per-step keys ``[K, T, dim]``, from which the time-mean negatives are
derived the same way as the time-mean key. Neuron state of both encoders is
reset after every forward; the key encoder runs under ``no_grad``.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn

from neuromoco.models.base import SpikingBackbone
from neuromoco.ssl.config import MoCoConfig
from neuromoco.ssl.losses import mix_info_nce
from neuromoco.ssl.shuffle import concat_all_gather, shuffle_batch, unshuffle_batch


class ProjectionHead(nn.Module):
    """MoCo v2's MLP head, ``Linear -> ReLU -> Linear``, applied to every step."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """``[T, B, in_dim]`` to ``[T, B, out_dim]``."""
        out: torch.Tensor = self.net(features)
        return out


class MoCo(nn.Module):
    """Momentum contrast for multi-step spiking backbones.

    Attributes:
        query_encoder: The backbone trained by gradient (what fine-tuning starts from).
        query_head: Its projection head.
        momentum_encoder: EMA copy of ``query_encoder``; no gradient.
        momentum_head: EMA copy of ``query_head``.
        queue: ``[K, T, dim]`` unit per-step keys, oldest overwritten first.
        queue_ptr: Next row of ``queue`` to write.
    """

    queue: torch.Tensor
    queue_ptr: torch.Tensor

    def __init__(self, backbone: SpikingBackbone, cfg: MoCoConfig, n_time_bins: int) -> None:
        """Wrap a backbone.

        Args:
            backbone: The query encoder; its copy becomes the momentum encoder.
            cfg: Queue, momentum, temperature and loss.
            n_time_bins: ``T`` of every input (the queue stores each step).
        """
        super().__init__()
        self.cfg = cfg
        self.query_encoder = backbone
        self.query_head = ProjectionHead(backbone.feature_dim, cfg.hidden_dim, cfg.dim)
        self.momentum_encoder = copy.deepcopy(backbone)
        self.momentum_head = copy.deepcopy(self.query_head)
        for param in self._momentum_params():
            param.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(cfg.queue_size, n_time_bins, cfg.dim), dim=-1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))

    def _query_params(self) -> list[torch.Tensor]:
        return [*self.query_encoder.parameters(), *self.query_head.parameters()]

    def _momentum_params(self) -> list[torch.Tensor]:
        return [*self.momentum_encoder.parameters(), *self.momentum_head.parameters()]

    @torch.no_grad()
    def momentum_update(self) -> None:
        """``θ_k ← m·θ_k + (1 − m)·θ_q`` for every encoder and head parameter."""
        query, key = self._query_params(), self._momentum_params()
        torch._foreach_mul_(key, self.cfg.momentum)
        torch._foreach_add_(key, query, alpha=1.0 - self.cfg.momentum)

    def encode_query(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Per-step unit query projections.

        Args:
            x_seq: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T, B, dim]``, with gradient.
        """
        try:
            return F.normalize(self.query_head(self.query_encoder.features(x_seq)), dim=-1)
        finally:
            functional.reset_net(self.query_encoder)

    @torch.no_grad()
    def encode_key(self, x_seq: torch.Tensor) -> torch.Tensor:
        """Per-step unit key projections, with shuffle-BN when configured.

        Args:
            x_seq: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T, B, dim]``, no gradient, in the order of ``x_seq``.
        """
        if self.cfg.shuffle_bn:
            x_seq, unshuffle = shuffle_batch(x_seq)
        try:
            key = F.normalize(self.momentum_head(self.momentum_encoder.features(x_seq)), dim=-1)
        finally:
            functional.reset_net(self.momentum_encoder)
        return unshuffle_batch(key, unshuffle) if self.cfg.shuffle_bn else key

    def contrast(self, query: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """The configured loss of per-step queries against their keys and the queue.

        Args:
            query: ``[T, B, dim]`` unit vectors.
            key: ``[T, B, dim]`` unit vectors.

        Returns:
            Scalar loss.
        """
        return mix_info_nce(query, key, self.queue.clone().detach(), self.cfg.temperature, self.cfg.effective_lambda)

    @torch.no_grad()
    def enqueue(self, key: torch.Tensor) -> None:
        """Write the keys of every rank into the queue, overwriting the oldest.

        Args:
            key: ``[T, B, dim]`` keys of this rank's batch.
        """
        keys = concat_all_gather(key, dim=1).transpose(0, 1)  # (W*B, T, dim)
        size = self.queue.shape[0]
        if keys.shape[0] > size:
            keys = keys[-size:]
        rows = (int(self.queue_ptr) + torch.arange(keys.shape[0], device=keys.device)) % size
        self.queue[rows] = keys.to(self.queue.dtype)
        self.queue_ptr.fill_((int(self.queue_ptr) + keys.shape[0]) % size)

    def forward(self, view_1: torch.Tensor, view_2: torch.Tensor) -> torch.Tensor:
        """One NeuroMoCo step: momentum update, both encoders, loss, then enqueue.

        Args:
            view_1: Frames ``[T, B, C, H, W]`` (query view).
            view_2: Frames ``[T, B, C, H, W]`` (key view), another augmentation of the same samples.

        Returns:
            Scalar loss (mean of both directions when ``symmetric``).
        """
        self.momentum_update()
        query = self.encode_query(view_1)
        key = self.encode_key(view_2)
        if not self.cfg.symmetric:
            loss = self.contrast(query, key)
            self.enqueue(key)
            return loss
        query_2 = self.encode_query(view_2)
        key_1 = self.encode_key(view_1)
        loss = 0.5 * (self.contrast(query, key) + self.contrast(query_2, key_1))
        self.enqueue(torch.cat([key, key_1], dim=1))
        return loss
