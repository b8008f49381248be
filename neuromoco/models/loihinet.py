"""``loihinet``: the deployable family, conv and dense only, CUBA-LIF everywhere.

Every layer is a synapse (``nn.Conv2d`` or ``nn.Linear``, bias allowed), an
optional batch-norm directly after it (``nn.BatchNorm2d`` after a conv,
``nn.BatchNorm1d`` after the dense feature layer; either folds into the
synapse's weight and bias on export) and a :class:`CubaLIFNode`. Downsampling is done by
strided convs, never by pooling, because netx refuses pooling layers. The
exporter walks ``LoihiNet.blocks`` in order; each entry is a
:class:`LoihiBlock` or a :class:`Flatten`.

Hardware timing (``hw_timing``, lava-dl slayer's ``delay_shift=True``): on
Loihi every synapse delivers the spikes of step k at step k + 1, so layer
ell's input at step k is ``Syn(s_{ell-1}[k-1])`` and ``0`` at k = 0, where the
neuron integrates its bias alone (loihi_netx.md section 8). A block in hardware
timing prepends one zero spike frame to its input and keeps the last one: a
run of T input steps becomes T + 1 output steps, so after the L synaptic
layers the classifier emits T + L steps -- exactly the run the chip, the QAT
model and the native simulator make on the input padded with L zero frames,
and the last input frame still reaches the output. A float network trained
without the delays loses ~17 points when converted; trained with them, the
float -> integer conversion is exact up to rounding (with ``current_decay=1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from spikingjelly.activation_based import surrogate
from torch import nn

from neuromoco.models.base import SpikingBackbone
from neuromoco.models.neuron import CubaLIFNode


@dataclass(frozen=True)
class ConvSpec:
    """One strided conv layer: ``out_channels``, square ``kernel``, ``stride``, ``padding``."""

    out_channels: int
    kernel: int = 3
    stride: int = 2
    padding: int = 1


@dataclass(frozen=True)
class LoihiNetSpec:
    """The layer sizes of a named ``loihinet`` variant.

    Attributes:
        convs: Conv layers from the input on.
        feature_dim: Width of the spiking dense feature layer (the SSL features).
    """

    convs: tuple[ConvSpec, ...]
    feature_dim: int


#: The registered variants; ``s`` trains on ndigits in minutes on 2 CPU cores.
LOIHINET_SPECS: dict[str, LoihiNetSpec] = {
    "loihinet_s": LoihiNetSpec(convs=(ConvSpec(16), ConvSpec(32)), feature_dim=128),
    "loihinet_m": LoihiNetSpec(convs=(ConvSpec(32), ConvSpec(64), ConvSpec(64)), feature_dim=256),
}


class Flatten(nn.Module):
    """Reshape ``[T, B, C, H, W]`` to ``[T, B, C*H*W]`` (C-major, as the IR's flatten)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


class LoihiBlock(nn.Module):
    """Synapse, optional folded batch-norm, CUBA-LIF neuron; multi-step.

    Attributes:
        synapse: ``nn.Conv2d`` or ``nn.Linear``.
        norm: ``nn.BatchNorm2d`` after a conv, ``nn.BatchNorm1d`` after a dense synapse, or None.
        neuron: The :class:`CubaLIFNode`.
        hw_timing: Loihi's one-step synaptic delay: the output has one step more than the input.
    """

    def __init__(
        self,
        synapse: nn.Conv2d | nn.Linear,
        norm: nn.BatchNorm2d | nn.BatchNorm1d | None,
        node: CubaLIFNode,
        hw_timing: bool = False,
    ) -> None:
        super().__init__()
        self.synapse = synapse
        self.norm = norm
        self.neuron = node
        self.hw_timing = hw_timing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Run all steps.

        Args:
            x: Spikes or frames ``[T, B, *in_shape]``.

        Returns:
            Spikes ``[T, B, *out_shape]``, or ``[T + 1, B, *out_shape]`` in hardware timing.
        """
        if self.hw_timing:
            # Step k's spikes arrive at step k + 1; step 0 sees no spikes, only the bias
            # (the synapse's bias / folded batch-norm shift of a zero frame), as on Loihi.
            x = torch.cat([torch.zeros_like(x[:1]), x])  # (T + 1, B, *in_shape)
        steps, batch = x.shape[:2]
        y = self.synapse(x.flatten(0, 1))  # (T*B, *out_shape)
        if self.norm is not None:
            y = self.norm(y)
        return self.neuron(y.reshape(steps, batch, *y.shape[1:]))


class LoihiNet(SpikingBackbone):
    """Strided spiking convs, a spiking dense feature layer, a spiking dense classifier.

    ``features`` are the feature layer's spikes ``[T, B, feature_dim]``;
    ``forward`` returns the classifier's spikes ``[T, B, num_classes]`` and the
    logits are their count over time (``readout == "spike_count"``), which is
    what a Loihi chip reports.

    In hardware timing (``hw_timing``, see the module docstring) ``forward``
    returns ``[T + L, B, num_classes]`` (``L = latency``), step for step what
    the chip emits. ``features`` stays ``[T, B, feature_dim]`` (MoCo's queue
    and the linear probe rely on it): the feature layer runs ``T + L - 1``
    steps and its first ``L - 1``, emitted before any input can have arrived
    (bias only), are left out, so feature step k has seen input steps <= k.
    Hence ``classify(features(x))`` differs from ``forward(x)`` only in the
    classifier's first ``L - 1`` steps, which the chip drives with those
    input-independent spikes.
    """

    readout = "spike_count"

    def __init__(
        self,
        spec: LoihiNetSpec,
        input_shape: tuple[int, int, int],
        num_classes: int,
        current_decay: float,
        voltage_decay: float,
        threshold: float,
        surrogate_alpha: float,
        batch_norm: bool,
        hw_timing: bool = False,
    ) -> None:
        """Build the network.

        Args:
            spec: Layer sizes.
            input_shape: ``(C, H, W)`` of one frame.
            num_classes: Classifier width.
            current_decay: CUBA-LIF current decay of every layer.
            voltage_decay: CUBA-LIF voltage decay of every layer.
            threshold: CUBA-LIF threshold of every layer.
            surrogate_alpha: ``alpha`` of the ATan surrogate gradient.
            batch_norm: Put a foldable batch-norm after each conv and after the dense feature layer.
            hw_timing: Loihi's one-step synaptic delay per layer (lava-dl's ``delay_shift``).

        Raises:
            ConfigError: A neuron parameter is not representable on Loihi 2.
        """
        super().__init__()

        def node() -> CubaLIFNode:
            return CubaLIFNode(
                current_decay, voltage_decay, threshold, surrogate_function=surrogate.ATan(alpha=surrogate_alpha)
            )

        channels, height, width = input_shape
        blocks: list[nn.Module] = []
        for conv in spec.convs:
            # With a batch-norm after it, a conv bias would only duplicate the BN shift.
            synapse = nn.Conv2d(channels, conv.out_channels, conv.kernel, conv.stride, conv.padding, bias=not batch_norm)
            norm = nn.BatchNorm2d(conv.out_channels) if batch_norm else None
            blocks.append(LoihiBlock(synapse, norm, node(), hw_timing))
            channels = conv.out_channels
            height = (height + 2 * conv.padding - conv.kernel) // conv.stride + 1
            width = (width + 2 * conv.padding - conv.kernel) // conv.stride + 1
        blocks.append(Flatten())
        # Without a norm here the dense layer's drive is dominated by the summed activity of
        # thousands of inputs: units end up always on or always off and SSL collapses.
        feature_norm = nn.BatchNorm1d(spec.feature_dim) if batch_norm else None
        blocks.append(
            LoihiBlock(nn.Linear(channels * height * width, spec.feature_dim, bias=not batch_norm), feature_norm, node(),
                       hw_timing)
        )
        blocks.append(LoihiBlock(nn.Linear(spec.feature_dim, num_classes), None, node(), hw_timing))
        self.blocks = nn.ModuleList(blocks)
        self.feature_dim = spec.feature_dim
        self.num_classes = num_classes
        self.hw_timing = hw_timing

    @property
    def latency(self) -> int:
        """``L``: steps of synaptic delay from input to output (the synaptic layers in hardware timing, else 0)."""
        # Every block but the flatten is a synaptic layer (the classifier may be wrapped, see adaptive.py).
        return sum(not isinstance(b, Flatten) for b in self.blocks) if self.hw_timing else 0

    @property
    def classifier(self) -> nn.Module:
        """The last block: dense synapse and spiking neuron (``blocks[-1]``)."""
        return self.blocks[-1]

    def _feature_run(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encode_input(x)
        for block in self.blocks[:-1]:
            x = block(x)
        return x  # (T + max(L - 1, 0), B, feature_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._feature_run(x)
        return feats[self.latency - 1:] if self.latency else feats  # (T, B, feature_dim)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)  # (T, B, num_classes); T + 1 steps in hardware timing

    def classifier_input(self, x: torch.Tensor) -> torch.Tensor:
        """The feature layer's whole run (``T + L - 1`` steps in hardware timing), as ``forward`` feeds it."""
        return self._feature_run(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step class spikes; in hardware timing ``[T + L, B, num_classes]``, the chip's run.

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T + latency, B, num_classes]``.
        """
        out: torch.Tensor = self.classifier(self._feature_run(x))
        return out
