"""Spikformer (Zhou et al., arXiv:2209.15425) for event frames, built from spikingjelly neurons.

spikingjelly 0.0.0.0.14 ships no Spikformer, so the network is written here
after the CIFAR10-DVS model of ZK-Zhou/spikformer: spiking patch splitting
(four conv-BN-LIF-maxpool stages and a conv relative position embedding),
encoder blocks of spike-driven self-attention (scale 0.25, attention LIF
threshold 0.5) and a spiking MLP, LIF neurons with tau 2 and threshold 1.
Every tensor keeps the time axis in front; convs and batch-norms see
``T*B`` samples.
"""

from __future__ import annotations

from typing import Callable

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from neuromoco.models.base import SpikingBackbone

#: Attention scale of the CIFAR10-DVS Spikformer (q, k, v are spikes, so no 1/sqrt(d)).
ATTENTION_SCALE = 0.25
#: Threshold of the LIF after q @ k^T @ v, lower than elsewhere.
ATTENTION_THRESHOLD = 0.5


def _lif(tau: float, alpha: float, threshold: float = 1.0) -> neuron.LIFNode:
    return neuron.LIFNode(
        tau=tau, v_threshold=threshold, detach_reset=True, surrogate_function=surrogate.ATan(alpha=alpha), step_mode="m"
    )


def _time_flat(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Apply a stateless function to ``[T, B, ...]`` as one batch of ``T*B``."""
    steps, batch = x.shape[:2]
    y = fn(x.flatten(0, 1))
    return y.reshape(steps, batch, *y.shape[1:])


class ConvBNLIF(nn.Module):
    """Conv (2-d or 1-d, no bias) + batch-norm + LIF, multi-step."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, norm: nn.Module, lif: neuron.LIFNode) -> None:
        super().__init__()
        self.conv, self.norm, self.lif = conv, norm, lif

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lif(_time_flat(lambda z: self.norm(self.conv(z)), x))


class SpikingPatchSplitting(nn.Module):
    """Four conv3x3-BN-LIF-maxpool stages (channels E/8, E/4, E/2, E), plus a relative position embedding."""

    def __init__(self, in_channels: int, embed_dim: int, tau: float, alpha: float) -> None:
        super().__init__()
        widths = (embed_dim // 8, embed_dim // 4, embed_dim // 2, embed_dim)
        stages = []
        for width in widths:
            stages.append(
                ConvBNLIF(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), _lif(tau, alpha))
            )
            in_channels = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.rpe = ConvBNLIF(nn.Conv2d(embed_dim, embed_dim, 3, 1, 1, bias=False), nn.BatchNorm2d(embed_dim), _lif(tau, alpha))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Frames ``[T, B, C, H, W]`` to tokens ``[T, B, E, N]``."""
        for stage in self.stages:
            x = _time_flat(self.pool, stage(x))
        x = x + self.rpe(x)  # (T, B, E, H/16, W/16)
        return x.flatten(3)


class SpikingSelfAttention(nn.Module):
    """Spike-driven self-attention: no softmax, ``(q k^T) v * scale``, then LIF and a projection."""

    def __init__(self, dim: int, heads: int, tau: float, alpha: float) -> None:
        super().__init__()
        self.heads = heads

        def proj() -> ConvBNLIF:
            return ConvBNLIF(nn.Conv1d(dim, dim, 1, bias=False), nn.BatchNorm1d(dim), _lif(tau, alpha))

        self.q, self.k, self.v = proj(), proj(), proj()
        self.attn_lif = _lif(tau, alpha, ATTENTION_THRESHOLD)
        self.out = ConvBNLIF(nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim), _lif(tau, alpha))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch, dim, tokens = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:  # (T, B, E, N) -> (T, B, heads, N, E/heads)
            return t.reshape(steps, batch, self.heads, dim // self.heads, tokens).transpose(3, 4)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        y = (q @ k.transpose(3, 4)) @ v * ATTENTION_SCALE  # (T, B, heads, N, E/heads)
        y = y.transpose(3, 4).reshape(steps, batch, dim, tokens)
        return self.out(self.attn_lif(y))


class EncoderBlock(nn.Module):
    """``x + SSA(x)``, then ``x + MLP(x)`` with a 4x hidden spiking MLP."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int, tau: float, alpha: float) -> None:
        super().__init__()
        hidden = dim * mlp_ratio
        self.attn = SpikingSelfAttention(dim, heads, tau, alpha)
        self.mlp = nn.Sequential(
            ConvBNLIF(nn.Conv1d(dim, hidden, 1), nn.BatchNorm1d(hidden), _lif(tau, alpha)),
            ConvBNLIF(nn.Conv1d(hidden, dim, 1), nn.BatchNorm1d(dim), _lif(tau, alpha)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class Spikformer(SpikingBackbone):
    """Spikformer-``depth``-``embed_dim``; features are the token mean per step.

    The read-out is a non-spiking linear head per step, averaged over time
    (``readout == "membrane_mean"``), as in the original model.
    """

    readout = "membrane_mean"

    def __init__(
        self,
        input_shape: tuple[int, int, int],
        num_classes: int,
        depth: int,
        embed_dim: int,
        heads: int,
        lif_tau: float,
        surrogate_alpha: float,
        mlp_ratio: int = 4,
    ) -> None:
        """Build the network.

        Args:
            input_shape: ``(C, H, W)``.
            num_classes: Width of the head.
            depth: Number of encoder blocks.
            embed_dim: Token width ``E``; a multiple of 8 and of ``heads``.
            heads: Attention heads.
            lif_tau: Membrane time constant of every LIF neuron, in steps.
            surrogate_alpha: ``alpha`` of the ATan surrogate gradient.
            mlp_ratio: Hidden width of the MLP over ``E``.
        """
        super().__init__()
        self.sps = SpikingPatchSplitting(input_shape[0], embed_dim, lif_tau, surrogate_alpha)
        self.encoder = nn.Sequential(
            *(EncoderBlock(embed_dim, heads, mlp_ratio, lif_tau, surrogate_alpha) for _ in range(depth))
        )
        self.head = nn.Linear(embed_dim, num_classes)
        self.feature_dim = embed_dim
        self.num_classes = num_classes

    @property
    def classifier(self) -> nn.Module:
        """The linear head (``head``)."""
        return self.head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.sps(self.encode_input(x))).mean(3)  # (T, B, E)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)  # (T, B, num_classes)
