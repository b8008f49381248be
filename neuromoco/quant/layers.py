"""QAT layers: CUBA-LIF dense and conv blocks whose forward is Loihi's integer arithmetic.

A :class:`QuantBlock` holds latent float weights (in the float model's units)
and a fixed per-layer scale ``q``: the deployed integer weights are
``clip(round(w * q), -127, 127)`` (a signed 8-bit mantissa with exponent 0,
which netx and Lava deliver exactly for dense and conv layers alike), the threshold mantissa is ``round(threshold * q)`` and the
bias (which on Loihi enters the voltage every step) is an integer mantissa.
:class:`QuantLoihiNet` chains them; with ``hw_timing`` it adds the one step of
synaptic delay per layer that Lava and Loihi have, so its spikes equal the
native simulator's on the exported file, layer by layer and step by step.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from spikingjelly.activation_based import surrogate
from torch import nn
from torch.nn import functional as F

from hw_targets import constants as C
from neuromoco.models.base import SpikingBackbone
from neuromoco.quant.ops import lif_step, round_ste

#: Signed 8-bit mantissas (DESIGN's numeric contract); inside netx's exact dense range [-256, 254].
WEIGHT_LIMIT = (1 << (C.WEIGHT_BITS - 1)) - 1


class QuantBlock(nn.Module):
    """Integer synapse (conv or dense) + integer bias + CUBA-LIF neuron, multi-step.

    Attributes:
        kind: ``"conv"`` or ``"dense"``.
        weight: latent float weights (float-model units); conv (Cout, Cin/g, kH, kW), dense (out, in).
        bias: latent bias mantissa (integer units; enters ``v`` as ``bias << 6`` every step), per channel.
        scale: ``q``, integer weight units per float unit.
        i_decay, v_decay: the neuron's integer decays (1/4096 units).
        threshold: the float threshold; the mantissa is ``round(threshold * q)``.
    """

    scale: torch.Tensor
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    def __init__(
        self,
        kind: str,
        weight: torch.Tensor,
        bias: torch.Tensor,
        scale: float,
        i_decay: int,
        v_decay: int,
        threshold: float,
        stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0),
        dilation: tuple[int, int] = (1, 1),
        groups: int = 1,
        surrogate_function: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float())
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.i_decay, self.v_decay, self.threshold = int(i_decay), int(v_decay), float(threshold)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups
        self.surrogate_function = surrogate_function or surrogate.ATan()

    @property
    def v_th_mant(self) -> int:
        """The threshold mantissa, ``round(threshold * q)`` (at least 1)."""
        return max(1, round(self.threshold * float(self.scale)))

    def int_weight(self) -> torch.Tensor:
        """The deployed integer weights (float tensor holding integers), straight-through."""
        return torch.clamp(round_ste(self.weight * self.scale), -WEIGHT_LIMIT, WEIGHT_LIMIT)

    def int_bias(self) -> torch.Tensor:
        """The deployed integer bias mantissas, straight-through."""
        return torch.clamp(round_ste(self.bias), float(-(1 << (C.BIAS_MANT_BITS - 1))), float((1 << (C.BIAS_MANT_BITS - 1)) - 1))

    def synapse(self, s: torch.Tensor) -> torch.Tensor:
        """Integer synaptic sums for spikes ``s`` (N, *in_shape) -> (N, *out_shape); exact in float32."""
        w = self.int_weight()
        if self.kind == "conv":
            return F.conv2d(s, w, stride=self.stride, padding=self.padding, dilation=self.dilation, groups=self.groups)
        return F.linear(s, w)

    def forward(self, s: torch.Tensor, hw_timing: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run all steps.

        Args:
            s: presynaptic spikes ``[T, B, *in_shape]`` in {0, 1}.
            hw_timing: deliver step k's spikes at step k + 1 (Loihi's synaptic delay).

        Returns:
            Spikes, currents and voltages, each ``[T, B, *out_shape]``.
        """
        return self.integrate(self.synaptic_input(s), hw_timing)

    def synaptic_input(self, s: torch.Tensor) -> torch.Tensor:
        """Integer synaptic sums of every step: spikes ``[T, B, *in_shape]`` -> ``[T, B, *out_shape]``.

        One synapse process's output: a layer reading several sources sums one of these per source.
        """
        steps, batch = s.shape[:2]
        a = self.synapse(s.flatten(0, 1))
        return a.reshape(steps, batch, *a.shape[1:])

    def integrate(self, a: torch.Tensor, hw_timing: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Run the neurons on the synaptic input ``a`` ``[T, B, *out_shape]`` of every step.

        Args:
            a: Integer synaptic input (all sources summed), as computed at each step.
            hw_timing: deliver step k's input at step k + 1 (Loihi's synaptic delay).

        Returns:
            Spikes, currents and voltages, each ``[T, B, *out_shape]``.
        """
        steps = a.shape[0]
        if hw_timing:
            a = torch.cat([torch.zeros_like(a[:1]), a[:-1]])
        b = self.int_bias()
        bias_eff = (b.view(-1, 1, 1) if self.kind == "conv" else b) * float(1 << C.BIAS_EXP)
        i_mult = float(C.DECAY_UNITY - self.i_decay)
        v_mult = float(C.DECAY_UNITY - self.v_decay)
        vth_eff = float(self.v_th_mant << C.VTH_SHIFT)
        u = torch.zeros_like(a[0], dtype=self.weight.dtype)  # float32 states, also when a merge's a is float64
        v = torch.zeros_like(u)
        spikes, us, vs = [], [], []
        for k in range(steps):
            u, v, sk = lif_step(u, v, a[k], i_mult, v_mult, bias_eff, vth_eff, self.surrogate_function)
            spikes.append(sk)
            us.append(u)
            vs.append(v)
        return torch.stack(spikes), torch.stack(us), torch.stack(vs)


class QuantFlatten(nn.Module):
    """``[T, B, C, H, W]`` -> ``[T, B, C*H*W]``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(2)


# SpikingBackbone is Any to mypy while neuromoco.models is outside the checked set (pyproject.toml).
class QuantLoihiNet(SpikingBackbone):  # type: ignore[misc]
    """The QAT network: integer blocks in sequence, read out by spike count.

    ``forward`` binarizes its input frames (Loihi receives binary spikes) and,
    in ``hw_timing`` mode, appends one zero frame per synaptic layer so the last
    input reaches the output: the output then has ``T + L`` steps.
    """

    readout = "spike_count"

    def __init__(
        self, blocks: list[nn.Module], input_shape: Sequence[int], hw_timing: bool = True,
        input_encoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        # A binary input code of the float model (latency coding of static images): it runs on the
        # host, and the chip receives its spikes. None: the frames themselves are the spikes.
        self.input_encoder = input_encoder
        self.input_shape = tuple(input_shape)
        self.hw_timing = hw_timing
        quant = [b for b in blocks if isinstance(b, QuantBlock)]
        self.num_classes = int(quant[-1].weight.shape[0])
        self.feature_dim = int(quant[-2].weight.shape[0]) if len(quant) > 1 else self.num_classes

    @property
    def latency(self) -> int:
        """Steps of synaptic delay from input to output in hardware timing."""
        return sum(isinstance(b, QuantBlock) for b in self.blocks) if self.hw_timing else 0

    @property
    def classifier(self) -> nn.Module:
        return self.blocks[-1]

    def input_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The binary spikes ``[T, B, C, H, W]`` the chip receives for frames ``[T, B, C, H, W]``."""
        if self.input_encoder is not None:
            x = self.input_encoder(x)
        return (x > 0).to(torch.float32)

    def prepare_input(self, x: torch.Tensor) -> torch.Tensor:
        """Binary spikes ``[T + latency, B, C, H, W]`` from frames ``[T, B, C, H, W]``."""
        s = self.input_spikes(x)
        if self.latency:
            s = torch.cat([s, torch.zeros((self.latency, *s.shape[1:]), dtype=s.dtype, device=s.device)])
        return s

    def run_layers(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]]:
        """(spikes, u, v) of every block and flatten, from frames ``[T, B, C, H, W]``."""
        s = self.prepare_input(x)
        out: list[tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]] = []
        for block in self.blocks:
            if isinstance(block, QuantBlock):
                s, u, v = block(s, self.hw_timing)
                out.append((s, u, v))
            else:
                s = block(s)
                out.append((s, None, None))
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        s = self.prepare_input(x)
        for block in self.blocks[:-1]:
            s = block(s, self.hw_timing)[0] if isinstance(block, QuantBlock) else block(s)
        return s

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        spikes: torch.Tensor = self.blocks[-1](features, self.hw_timing)[0]
        return spikes
