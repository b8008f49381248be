"""``loihinet_sdnn``: the deployable sigma-delta family (graded spikes, ReLU, a Sigma read-out).

The network is Loihi 2's own kind (Intel's PilotNet SDNN): a ``Delta`` input
encoder, strided convs and a dense feature layer of ``SigmaDelta`` ReLU
neurons, and a dense ``Sigma`` read-out whose accumulated sigma are the class
scores. In float, with hardware timing (every synapse delivers step k at step
k + 1), per step k and layer l::

    r_0[k]  = delta(x[k])                            # the input as the chip's Delta encodes it
    a_l[k]  = relu(W_l r_{l-1}[k-1] + b_l)           # 0 input at k = 0: bias only
    r_l     = delta(a_l)                             # what the next layer's sigma reconstructs
    out[k]  = W_L r_{L-1}[k-1]                       # Sigma: no bias (Lava's Sigma takes none)

``delta`` is the sigma-delta code with threshold ``theta``: it sends
``d = a[k] - (sum of what it sent)`` when ``|d| >= theta`` and keeps ``d`` as
the residue otherwise, so the receiver's sum lags ``a`` by less than
``theta``. Its gradient is the identity (straight-through), as in lava-dl
slayer's ``sigma_delta`` neurons. With ``theta = 0`` the network is a ReLU
ANN run once per step. The logits are the read-out's mean over the run
(``readout == "membrane_mean"``; argmax equals that of the chip's summed sigma).

A run of T input frames becomes T + L steps (``L`` synaptic layers): the input
is padded with L zero frames, exactly the run the QAT model
(:mod:`neuromoco.quant.sdnn`) and the simulators make.

Why not slayer's blocks: lava-dl's ``slayer.block.sigma_delta`` is time-last
``[N, C, H, W, T]``, quantizes its states to its own fixed-point grid in float
and places the synaptic delay inside its ``delay_shift`` option; the project's
backbones are time-first and the integer arithmetic lives once, in the QAT
layers. What is kept from slayer is its recipe: ReLU activation, delta
threshold, straight-through delta gradient, Sigma read-out.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from neuromoco.models.base import SpikingBackbone
from neuromoco.models.loihinet import ConvSpec, Flatten


@dataclass(frozen=True)
class SdnnSpec:
    """Layer sizes and delta thresholds of a named ``loihinet_sdnn`` variant.

    Attributes:
        convs: Conv layers from the input on (ReLU sigma-delta neurons).
        feature_dim: Width of the dense sigma-delta feature layer (the SSL features).
        input_threshold: Delta threshold of the input encoder, in input units.
        threshold: Delta threshold of every hidden layer, in activation units.
        input_scale: The chip receives ``round(x * input_scale)`` as the integer input; 16 keeps
            binary and count frames exact and gives static images 4 fractional bits.
    """

    convs: tuple[ConvSpec, ...]
    feature_dim: int
    input_threshold: float = 0.0
    threshold: float = 1.0 / 16
    input_scale: float = 16.0


#: The registered variants; ``s`` trains on ndigits in minutes on 2 CPU cores.
SDNN_SPECS: dict[str, SdnnSpec] = {
    "loihinet_sdnn_s": SdnnSpec(convs=(ConvSpec(16), ConvSpec(32), ConvSpec(32)), feature_dim=128),
}


def delta_reconstruction(a: torch.Tensor, threshold: float) -> torch.Tensor:
    """What a sigma-delta receiver accumulates from ``a`` ``[T, ...]``; straight-through gradient.

    Per step: ``d = a[k] - r[k-1]``; ``r[k] = a[k]`` when ``|d| >= threshold``, else ``r[k-1]``
    (the residue formulation of Lava's delta encoder, in float).
    """
    if threshold <= 0:
        return a
    with torch.no_grad():
        recon = torch.empty_like(a)
        sent = torch.zeros_like(a[0])
        for k in range(a.shape[0]):
            d = a[k] - sent
            sent = torch.where(d.abs() >= threshold, a[k], sent)
            recon[k] = sent
    return a + (recon - a).detach()


def delay(x: torch.Tensor) -> torch.Tensor:
    """One step of synaptic delay on ``[T, ...]``: step k carries step k - 1, step 0 zeros."""
    return torch.cat([torch.zeros_like(x[:1]), x[:-1]])


class SdnnBlock(nn.Module):
    """Synapse, optional foldable batch-norm, ReLU sigma-delta neurons (or a Sigma read-out); multi-step.

    Attributes:
        synapse: ``nn.Conv2d`` or ``nn.Linear``.
        norm: ``nn.BatchNorm2d`` after a conv, ``nn.BatchNorm1d`` after a dense synapse, or None.
        threshold: Delta threshold of the neurons' output code (activation units).
        sigma_output: A Sigma read-out: no ReLU, no delta code; the output is the accumulated input.
    """

    def __init__(self, synapse: nn.Conv2d | nn.Linear, norm: nn.BatchNorm2d | nn.BatchNorm1d | None,
                 threshold: float, sigma_output: bool = False) -> None:
        super().__init__()
        self.synapse = synapse
        self.norm = norm
        self.threshold = float(threshold)
        self.sigma_output = sigma_output

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        """Run all steps.

        Args:
            r: The previous layer's reconstructed activations ``[T, B, *in_shape]``.

        Returns:
            ``[T, B, *out_shape]``: this layer's reconstruction (the read-out's sigma for a Sigma layer).
        """
        steps, batch = r.shape[:2]
        z = self.synapse(delay(r).flatten(0, 1))  # (T*B, *out_shape); step 0: bias only
        if self.norm is not None:
            z = self.norm(z)
        z = z.reshape(steps, batch, *z.shape[1:])
        if self.sigma_output:
            return z
        return delta_reconstruction(torch.relu(z), self.threshold)


class LoihiSdnn(SpikingBackbone):
    """Delta input, strided sigma-delta convs, a dense sigma-delta feature layer, a dense Sigma read-out.

    ``forward`` returns the read-out ``[T + L, B, num_classes]`` (``L = latency``), step for step
    what the chip's Sigma layer sends; ``features`` the feature layer's activations over the
    ``T`` steps that follow the input's (``[T, B, feature_dim]``).
    """

    readout = "membrane_mean"

    def __init__(self, spec: SdnnSpec, input_shape: tuple[int, int, int], num_classes: int,
                 batch_norm: bool) -> None:
        """Build the network.

        Args:
            spec: Layer sizes and thresholds.
            input_shape: ``(C, H, W)`` of one frame.
            num_classes: Read-out width.
            batch_norm: A foldable batch-norm after each conv and after the dense feature layer.
        """
        super().__init__()
        channels, height, width = input_shape
        blocks: list[nn.Module] = []
        for conv in spec.convs:
            synapse = nn.Conv2d(channels, conv.out_channels, conv.kernel, conv.stride, conv.padding, bias=not batch_norm)
            norm = nn.BatchNorm2d(conv.out_channels) if batch_norm else None
            blocks.append(SdnnBlock(synapse, norm, spec.threshold))
            channels = conv.out_channels
            height = (height + 2 * conv.padding - conv.kernel) // conv.stride + 1
            width = (width + 2 * conv.padding - conv.kernel) // conv.stride + 1
        blocks.append(Flatten())
        norm1d = nn.BatchNorm1d(spec.feature_dim) if batch_norm else None
        blocks.append(SdnnBlock(nn.Linear(channels * height * width, spec.feature_dim, bias=not batch_norm), norm1d,
                                spec.threshold))
        # Lava's Sigma process has no bias register: the read-out is a plain weighted sum.
        blocks.append(SdnnBlock(nn.Linear(spec.feature_dim, num_classes, bias=False), None, 0.0, sigma_output=True))
        self.blocks = nn.ModuleList(blocks)
        self.spec = spec
        self.feature_dim = spec.feature_dim
        self.num_classes = num_classes
        self.input_shape = tuple(input_shape)

    @property
    def latency(self) -> int:
        """``L``: steps of synaptic delay from input to read-out (one per synaptic layer)."""
        return sum(isinstance(b, SdnnBlock) for b in self.blocks)

    @property
    def classifier(self) -> nn.Module:
        """The Sigma read-out block (``blocks[-1]``)."""
        return self.blocks[-1]

    def input_code(self, x: torch.Tensor) -> torch.Tensor:
        """The chip's input integers ``round(x * input_scale)`` for frames ``x``, padded with ``L`` zero frames.

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T + L, B, C, H, W]`` float32 holding integers.
        """
        x = self.encode_input(x)
        q = torch.round(x * self.spec.input_scale)
        return torch.cat([q, q.new_zeros((self.latency, *q.shape[1:]))])

    def _feature_run(self, x: torch.Tensor) -> torch.Tensor:
        xi = self.input_code(x) / self.spec.input_scale
        r = delta_reconstruction(xi, self.spec.input_threshold)  # (T + L, B, C, H, W)
        for block in self.blocks[:-1]:
            r = block(r)
        return r  # (T + L, B, feature_dim)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        feats = self._feature_run(x)
        first = self.latency - 1  # the feature layer sees input step 0 at step L - 1
        return feats[first : first + x.shape[0]]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The read-out of features ``[T, B, feature_dim]``: ``[T + 1, B, num_classes]`` (its synaptic delay)."""
        out: torch.Tensor = self.classifier(torch.cat([features, torch.zeros_like(features[:1])]))
        return out

    def classifier_input(self, x: torch.Tensor) -> torch.Tensor:
        """The feature layer's whole run (``T + L`` steps), as ``forward`` feeds it."""
        return self._feature_run(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step read-out ``[T + L, B, num_classes]`` from frames ``[T, B, C, H, W]``.

        ``classify(features(x))`` differs only in the read-out's first ``L - 1`` steps, which the
        chip drives with the input-independent activity of the steps before any input arrived.
        """
        out: torch.Tensor = self.classifier(self._feature_run(x))
        return out
