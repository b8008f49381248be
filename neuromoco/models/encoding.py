"""Static-image input codes: direct, latency, and ASNN's hybrid (He, arXiv:2408.12407).

A static image ``x`` (pixel values in [0, 1]) becomes ``T`` steps of backbone input:

- ``direct``: the analog image at every step (no encoder module; the data
  already repeats it, see :class:`neuromoco.data.static.StaticFrames`).
- ``latency``: one spike per lit pixel, brighter earlier (:func:`latency_code`).
- ``hybrid``: step 0 is the analog image through the encoder's own conv +
  batch-norm stem; steps 1..T-1 are the latency code of the same image.

The hybrid stem's output and the spikes sit in separate channel groups,
``[T, B, 2C, H, W]``: step 0 is ``[stem(x), 0]`` and step ``t >= 1`` is
``[0, spikes[t]]``. The backbone is built for ``2C`` input channels, so its
first conv holds separate weights for the analog step and for the spike
steps (ASNN's ``con11`` vs ``con1``) while every later layer is shared, and
no backbone needs to know about the code: all three take ``[T, B, C', H, W]``.

Encoders are submodules of the backbone (``input_encoder``, run first in
``features``); the model input is then the image repeated ``T`` times, of
which step 0 is read.
"""

from __future__ import annotations

import torch
from torch import nn

from hw_targets.errors import ConfigError

ENCODINGS = ("direct", "latency", "hybrid")


def latency_code(images: torch.Tensor, steps: int, first_step: int = 0) -> torch.Tensor:
    """Single-spike latency code with linear timing: brighter pixels fire earlier.

    With ``K = steps - first_step`` slots, a pixel of value ``x`` (clamped to
    [0, 1]) fires exactly once, at step::

        t(x) = first_step + round((1 - x) * (K - 1))     (ties to even, torch.round)

    so ``x = 1`` fires at ``first_step`` and the dimmest lit pixels at the last
    step; ``x == 0`` never fires (a dark pixel carries no event, as in ASNN's
    hybrid code, where pixels below the last threshold stay silent). Steps
    before ``first_step`` are empty. ``first_step = 1`` is the hybrid code's
    spike part: ``t(x) = round((1 - x) * (T - 2)) + 1``.

    Args:
        images: ``(B, C, H, W)`` float, values in [0, 1].
        steps: ``T``, total steps, > ``first_step``.
        first_step: First step that may carry spikes.

    Returns:
        ``[T, B, C, H, W]`` float32 spikes in {0, 1}.

    Raises:
        ConfigError: ``steps <= first_step``.
    """
    if first_step < 0 or steps <= first_step:
        raise ConfigError(f"latency code: steps={steps} must exceed first_step={first_step}")
    x = images.detach().float().clamp(0.0, 1.0)
    slots = steps - first_step
    fire_at = first_step + torch.round((1.0 - x) * (slots - 1)).long()  # (B, C, H, W)
    fire_at = torch.where(x > 0, fire_at, torch.full_like(fire_at, -1))
    time = torch.arange(steps, device=images.device).view(steps, *([1] * images.dim()))
    return (time == fire_at.unsqueeze(0)).float()


def direct_code(images: torch.Tensor, steps: int) -> torch.Tensor:
    """Direct coding: the analog image at every step.

    Args:
        images: ``(B, C, H, W)``.
        steps: ``T``.

    Returns:
        ``[T, B, C, H, W]`` (an expanded view; no copy).
    """
    return images.unsqueeze(0).expand(steps, *images.shape)


class LatencyEncoder(nn.Module):
    """``latency``: :func:`latency_code` over all ``T`` steps; no parameters, binary output."""

    #: Binary spikes only: a Loihi input port can carry it.
    analog_input = False

    def encode(self, images: torch.Tensor, steps: int) -> torch.Tensor:
        """Images ``(B, C, H, W)`` to spikes ``[T, B, C, H, W]``."""
        return latency_code(images, steps)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode a repeated static image.

        Args:
            frames: ``[T, B, C, H, W]``, the same image at every step (only step 0 is read).

        Returns:
            ``[T, B, C, H, W]`` spikes.
        """
        return self.encode(frames[0], frames.shape[0])


class HybridEncoder(nn.Module):
    """``hybrid``: analog step 0 through its own conv + batch-norm stem, latency spikes after.

    Output ``[T, B, 2C, H, W]``: channels ``[:C]`` hold ``BN(conv3x3(x))`` at
    step 0 and zeros after; channels ``[C:]`` hold zeros at step 0 and
    ``latency_code(x, T, first_step=1)`` after.

    Attributes:
        stem: ``Conv2d(C, C, 3, padding=1, bias=False)``; the analog step's own conv.
        stem_norm: ``BatchNorm2d(C)``; the analog step's own batch-norm.
    """

    #: Step 0 is a real-valued map: a binary Loihi input port cannot carry it.
    analog_input = True

    def __init__(self, channels: int) -> None:
        """Build the stem.

        Args:
            channels: ``C`` of the images.
        """
        super().__init__()
        self.stem = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.stem_norm = nn.BatchNorm2d(channels)

    def encode(self, images: torch.Tensor, steps: int) -> torch.Tensor:
        """Images ``(B, C, H, W)`` to ``[T, B, 2C, H, W]``.

        Raises:
            ConfigError: ``steps < 2`` (one analog step and at least one spike step).
        """
        if steps < 2:
            raise ConfigError(f"hybrid code: needs T >= 2 steps (1 analog + T-1 latency), got {steps}")
        analog = self.stem_norm(self.stem(images))  # (B, C, H, W)
        spikes = latency_code(images, steps, first_step=1)[1:].to(analog.dtype)  # (T-1, B, C, H, W)
        first = torch.cat([analog, torch.zeros_like(analog)], dim=1).unsqueeze(0)  # (1, B, 2C, H, W)
        rest = torch.cat([torch.zeros_like(spikes), spikes], dim=2)  # (T-1, B, 2C, H, W)
        return torch.cat([first, rest])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """Encode a repeated static image.

        Args:
            frames: ``[T, B, C, H, W]``, the same image at every step (only step 0 is read).

        Returns:
            ``[T, B, 2C, H, W]``.
        """
        return self.encode(frames[0], frames.shape[0])


def encoded_channels(encoding: str, channels: int) -> int:
    """``C'``: channels of the backbone input for images with ``channels`` channels."""
    return 2 * channels if encoding == "hybrid" else channels


def build_encoder(encoding: str, channels: int) -> nn.Module | None:
    """The input encoder of ``encoding``, or None for ``direct`` (the frames are the input).

    Raises:
        ConfigError: Unknown encoding.
    """
    if encoding == "direct":
        return None
    if encoding == "latency":
        return LatencyEncoder()
    if encoding == "hybrid":
        return HybridEncoder(channels)
    raise ConfigError(f"encoding={encoding!r}; choose one of {list(ENCODINGS)}")
