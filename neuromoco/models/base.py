"""The contract every backbone follows, whatever its family.

A backbone maps frames ``[T, B, C, H, W]`` to per-step features ``[T, B, D]``
(what the SSL projection head and the linear probe see) and per-step class
outputs ``[T, B, num_classes]``; ``forward(x) == classify(features(x))``.
``readout`` says how class outputs become logits: ``"spike_count"`` sums
spikes over time (what Loihi returns), ``"membrane_mean"`` averages a
non-spiking read-out over time.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

READOUTS = ("spike_count", "membrane_mean")


class SpikingBackbone(nn.Module):
    """Base class: ``features`` + ``classify``; state is reset by ``functional.reset_net``.

    Attributes:
        feature_dim: ``D``, the size of one step of ``features``.
        num_classes: Size of one step of ``forward``.
        readout: ``"spike_count"`` or ``"membrane_mean"`` (see :func:`readout_logits`).
        classifier: The module ``classify`` runs; the only trained part in a linear probe.
    """

    feature_dim: int
    num_classes: int
    readout: str

    @property
    def classifier(self) -> nn.Module:
        """The read-out layer ``classify`` runs (registered once, under its own name)."""
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step features (the input encoder, if any, runs first: :meth:`encode_input`).

        Args:
            x: Frames ``[T, B, C, H, W]``, float32.

        Returns:
            ``[T, B, D]`` with ``D = feature_dim``.
        """
        raise NotImplementedError

    def classifier_input(self, x: torch.Tensor) -> torch.Tensor:
        """What ``classifier`` receives inside ``forward`` (a linear probe trains on exactly this).

        Defaults to :meth:`features`; a backbone whose ``forward`` feeds the classifier more
        steps than ``features`` returns (``loihinet`` in hardware timing) overrides it.
        """
        return self.features(x)

    def set_input_encoder(self, encoder: nn.Module) -> None:
        """Install a static-image encoder (:mod:`neuromoco.models.encoding`) that ``features`` runs first."""
        self.add_module("input_encoder", encoder)

    def encode_input(self, x: torch.Tensor) -> torch.Tensor:
        """The backbone input: ``x`` itself, or ``input_encoder(x)`` when one is installed.

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T, B, C', H, W]`` (``C' = 2C`` for the hybrid code).
        """
        encoder = self._modules.get("input_encoder")
        return x if encoder is None else encoder(x)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """Per-step class outputs from per-step features.

        Args:
            features: ``[T, B, D]``.

        Returns:
            ``[T, B, num_classes]``: spikes for ``readout == "spike_count"``, values otherwise.
        """
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step class outputs.

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T, B, num_classes]``.
        """
        return self.classify(self.features(x))

    def backbone_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter outside ``classifier`` (frozen in a linear probe)."""
        head = {id(p) for p in self.classifier.parameters()}
        return (p for p in self.parameters() if id(p) not in head)


def readout_logits(model: SpikingBackbone, out: torch.Tensor) -> torch.Tensor:
    """Reduce per-step class outputs over time to logits.

    Args:
        model: The backbone that produced ``out`` (its ``readout`` decides).
        out: ``[T, B, num_classes]``.

    Returns:
        ``[B, num_classes]``: the spike count for ``"spike_count"``, the time mean otherwise.
    """
    if model.readout == "spike_count":
        return out.sum(0)
    return out.mean(0)
