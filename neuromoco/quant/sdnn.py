"""QAT for ``loihinet_sdnn``: sigma-delta layers whose forward is Loihi 2's integer arithmetic.

Units. Layer l's messages carry its float activation times a per-layer
message scale ``M_l`` (``M_0 = 64 * input_scale``: the input encoder sends
``x_int << 6``). Its ``act`` register holds ``64 * M_l`` per float unit, so the
message ``act >> 6`` is ``M_l`` per unit. Hence, with ``E = 12``:

* integer weights ``W_int = round(W * 64 * M_l / M_{l-1})`` (signed 8 bits),
* bias mantissas ``b_int = round(b * M_l / 64)`` (they enter as ``b << 12``),
* the delta threshold ``v_th_mant = round(theta * M_l / 64)``,
* a Sigma read-out's message is its sigma, ``64 * M_L`` per float unit.

:func:`to_quant_sdnn` picks ``M_l`` so the weights fill the 8-bit mantissa
(``max |W_int| = 127``), capped at :data:`MESSAGE_SCALE_CAP`, which leaves room
for what a batch-normed network computes: an activation change of up to
:data:`ACTIVATION_BOUND` float units in netx's 16-bit signed message payload, and
a pre-activation of up to :data:`PRE_ACTIVATION_BOUND` in the 24-bit conv
accumulator and the chip's 24-bit sigma/act states. The scales are buffers: a QAT
checkpoint restores them.
"""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from hw_targets import constants as C
from hw_targets.errors import TargetLimitError
from neuromoco.models.base import SpikingBackbone
from neuromoco.quant.layers import WEIGHT_LIMIT, QuantFlatten
from neuromoco.quant.ops import round_ste
from neuromoco.quant.sdnn_ops import dense_sum, delta_encode, netx_dense_scale_bits, wrap32, wrap_conv

#: ``E``: netx's sigma-delta message and state positions (``spike_exp + state_exp``).
SPIKE_EXP, STATE_EXP = C.SDNN_SPIKE_EXP, C.SDNN_STATE_EXP
SHIFT = SPIKE_EXP + STATE_EXP
#: Float activation changes (a first step sends the whole activation) one 16-bit message holds. The
#: batch-normed ``loihinet_sdnn_s`` trained on ndigits reaches ~15 in its hidden layers and ~41 in its
#: read-out (128 test samples): 8 overflowed both the payload and the read-out's 24-bit sigma.
ACTIVATION_BOUND = 32.0
#: The largest message scale: ``M * ACTIVATION_BOUND = 2**15`` (netx's signed 16-bit payload).
MESSAGE_SCALE_CAP = float(1 << (C.SDNN_MESSAGE_BITS - 1)) / ACTIVATION_BOUND
#: Float pre-activations that fit 24 bits at the cap: ``64 * MESSAGE_SCALE_CAP * PRE_ACTIVATION_BOUND = 2**23``.
PRE_ACTIVATION_BOUND = float(1 << (C.CONV_ACC_BITS - 1)) / ((1 << STATE_EXP) * MESSAGE_SCALE_CAP)
_BIAS_LIMIT = float(C.BIAS_STORE_MAX)

#: Per layer: (messages, sigma or None, act or None), each ``[T, B, *shape]`` float64 integers.
LayerRun = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]


class QuantSdnnBlock(nn.Module):
    """Integer synapse (conv or dense) + integer bias + ReLU sigma-delta neurons (or a Sigma read-out).

    Attributes:
        kind: ``"conv"`` or ``"dense"``.
        weight: Latent float weights (float-model units, batch-norm folded).
        bias: Latent float bias (float units), or None (a Sigma read-out has none).
        in_scale, msg_scale: ``M_{l-1}`` and ``M_l`` (buffers).
        threshold: The float delta threshold; the mantissa is ``round(threshold * M_l / 64)``.
        sigma_output: The layer is a Sigma read-out.
    """

    in_scale: torch.Tensor
    msg_scale: torch.Tensor

    def __init__(
        self, kind: str, weight: torch.Tensor, bias: torch.Tensor | None, in_scale: float, msg_scale: float,
        threshold: float, sigma_output: bool = False, stride: tuple[int, int] = (1, 1),
        padding: tuple[int, int] = (0, 0), dilation: tuple[int, int] = (1, 1), groups: int = 1,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.weight = nn.Parameter(weight.detach().clone().float())
        self.bias = nn.Parameter(bias.detach().clone().float()) if bias is not None else None
        self.register_buffer("in_scale", torch.tensor(float(in_scale), dtype=torch.float64))
        self.register_buffer("msg_scale", torch.tensor(float(msg_scale), dtype=torch.float64))
        self.threshold, self.sigma_output = float(threshold), sigma_output
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, groups

    @property
    def weight_scale(self) -> float:
        """Integer weight units per float unit, ``64 * M_l / M_{l-1}``."""
        return float((1 << STATE_EXP) * self.msg_scale / self.in_scale)

    @property
    def v_th_mant(self) -> int:
        """The delta threshold mantissa (0 for a Sigma read-out)."""
        return 0 if self.sigma_output else round(self.threshold * float(self.msg_scale) / (1 << STATE_EXP))

    def int_weight(self) -> torch.Tensor:
        """The deployed signed 8-bit weights (float64 integers), straight-through."""
        w = round_ste(self.weight.double() * self.weight_scale)
        return torch.clamp(w, -WEIGHT_LIMIT, WEIGHT_LIMIT)

    def int_bias(self) -> torch.Tensor | None:
        """The deployed bias mantissas (float64 integers), straight-through; None without a bias."""
        if self.bias is None:
            return None
        b = round_ste(self.bias.double() * float(self.msg_scale) / (1 << STATE_EXP))
        return torch.clamp(b, -_BIAS_LIMIT - 1, _BIAS_LIMIT)

    def synapse(self, m: torch.Tensor) -> torch.Tensor:
        """The wrapped integer synaptic input for messages ``m`` (N, *in_shape) -> (N, *out_shape)."""
        w = self.int_weight()
        if self.kind == "conv":
            return wrap_conv(F.conv2d(m, w, stride=self.stride, padding=self.padding, dilation=self.dilation,
                                      groups=self.groups))
        return dense_sum(m, w, netx_dense_scale_bits(w.detach()))

    def forward(self, m: torch.Tensor) -> LayerRun:
        """Run all steps on the previous layer's messages.

        Args:
            m: Messages ``[T, B, *in_shape]`` (float64 integers).

        Returns:
            ``(messages, sigma, act)``, each ``[T, B, *out_shape]``; ``act`` is None for a Sigma read-out.
        """
        steps, batch = m.shape[:2]
        a = self.synapse(m.flatten(0, 1))
        a = a.reshape(steps, batch, *a.shape[1:])
        a = torch.cat([torch.zeros_like(a[:1]), a[:-1]])  # step k's messages arrive at step k + 1
        sigma = wrap32(torch.cumsum(a, 0))  # sigma <- sigma + a, int32 (wrapping commutes with the sum)
        if self.sigma_output:
            return sigma, sigma, None
        b = self.int_bias()
        if b is not None:
            b = b.view(-1, 1, 1) if self.kind == "conv" else b
            sigma_b = wrap32(sigma + b * float(1 << SHIFT))
        else:
            sigma_b = sigma
        act = torch.relu(sigma_b)
        return delta_encode(act, float(self.v_th_mant << SHIFT), STATE_EXP), sigma, act


# SpikingBackbone is Any to mypy while neuromoco.models is outside the checked set (pyproject.toml).
class QuantSdnnNet(SpikingBackbone):  # type: ignore[misc]
    """The QAT sigma-delta network: Delta input encoder, integer blocks in sequence, a Sigma read-out.

    ``forward`` returns the read-out in float units ``[T + L, B, num_classes]`` (sigma over
    ``64 * M_L``); :meth:`run_layers` every IR layer's integer messages and states.
    """

    readout = "membrane_mean"

    def __init__(self, blocks: list[nn.Module], input_shape: Sequence[int], input_scale: float,
                 input_v_th_mant: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_scale = float(input_scale)
        self.input_v_th_mant = int(input_v_th_mant)
        quant = [b for b in blocks if isinstance(b, QuantSdnnBlock)]
        self.num_classes = int(quant[-1].weight.shape[0])
        self.feature_dim = int(quant[-2].weight.shape[0]) if len(quant) > 1 else self.num_classes

    @property
    def latency(self) -> int:
        """Steps of synaptic delay from input to read-out (one per synaptic layer)."""
        return sum(isinstance(b, QuantSdnnBlock) for b in self.blocks)

    @property
    def classifier(self) -> nn.Module:
        return self.blocks[-1]

    def input_spikes(self, x: torch.Tensor) -> torch.Tensor:
        """The integers ``round(x * input_scale)`` ``[T, B, C, H, W]`` the chip's input port receives."""
        return torch.round(x.double() * self.input_scale)

    def _input_run(self, x: torch.Tensor) -> LayerRun:
        """The Delta input layer's messages and ``act`` over ``T + L`` steps (the input padded with zeros)."""
        xi = self.input_spikes(x)
        xi = torch.cat([xi, xi.new_zeros((self.latency, *xi.shape[1:]))])
        act = wrap32(xi * float(1 << SHIFT))
        return delta_encode(act, float(self.input_v_th_mant << SHIFT), STATE_EXP), None, act

    def run_layers(self, x: torch.Tensor) -> list[LayerRun]:
        """(messages, sigma, act) of the input layer and every block, from frames ``[T, B, C, H, W]``.

        One entry per IR layer (input, convs, flatten, dense layers), ``[T + L, B, *shape]`` each.
        """
        out = [self._input_run(x)]
        m = out[0][0]
        for block in self.blocks:
            if isinstance(block, QuantSdnnBlock):
                out.append(block(m))
            else:
                out.append((block(m), None, None))
            m = out[-1][0]
        return out

    def layer_units(self) -> list[tuple[float, bool]]:
        """Per IR layer: integer units per float unit of its messages, and whether a receiver sums them.

        A sigma-delta layer's messages are changes (``cumulative``): their running sum over steps,
        divided by the scale, is the activation in float units. A Sigma read-out sends its sigma
        (``64 * M_L`` per float unit) every step.
        """
        units = [(float((1 << STATE_EXP) * self.input_scale), True)]
        scale = units[0][0]
        for block in self.blocks:
            if isinstance(block, QuantSdnnBlock):
                scale = float(block.msg_scale)
                units.append(((1 << STATE_EXP) * scale, False) if block.sigma_output else (scale, True))
            else:
                units.append((scale, True))
        return units

    def _act_unit(self, index: int) -> float:
        """Integer ``act`` (or Sigma) units per float unit of ``blocks[index]``: ``64 * M``."""
        block = self.blocks[index]
        assert isinstance(block, QuantSdnnBlock)
        return float((1 << STATE_EXP) * block.msg_scale)

    def _scale_out(self, sigma: torch.Tensor) -> torch.Tensor:
        return (sigma / self._act_unit(-1)).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The read-out in float units ``[T + L, B, num_classes]`` from frames ``[T, B, C, H, W]``."""
        return self._scale_out(self.run_layers(x)[-1][0])

    def classifier_input(self, x: torch.Tensor) -> torch.Tensor:
        """The feature layer's messages over the whole run (``T + L`` steps), as the read-out receives them."""
        return self.run_layers(x)[-2][0]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature layer's ``act`` in float units over the ``T`` steps after its latency."""
        act = self.run_layers(x)[-2][2]
        assert act is not None
        first = self.latency - 1
        return (act[first : first + x.shape[0]] / self._act_unit(-2)).float()

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        """The read-out (float units) of feature-layer messages ``[T, B, feature_dim]`` (:meth:`classifier_input`)."""
        return self._scale_out(self.blocks[-1](features.double())[0])


def _fill_scale(weight: torch.Tensor, in_scale: float) -> float:
    """``M_l`` that fills the 8-bit weight mantissa, capped at :data:`MESSAGE_SCALE_CAP`."""
    peak = float(weight.abs().max())
    fill = in_scale * WEIGHT_LIMIT / ((1 << STATE_EXP) * peak) if peak > 0 else MESSAGE_SCALE_CAP
    return min(fill, MESSAGE_SCALE_CAP)


def to_quant_sdnn(model: nn.Module, input_shape: Sequence[int]) -> QuantSdnnNet:
    """The QAT twin of a float ``LoihiSdnn``: batch-norm folded, message scales chosen (module docstring).

    Raises:
        TargetLimitError: ``model`` is not a ``loihinet_sdnn`` network, or has an input encoder.
    """
    from neuromoco.models.loihinet import Flatten
    from neuromoco.models.loihinet_sdnn import LoihiSdnn, SdnnBlock
    from neuromoco.quant.convert import fold_batch_norm

    if not isinstance(model, LoihiSdnn):
        raise TargetLimitError(f"sigma-delta QAT needs a loihinet_sdnn model; got {type(model).__name__}")
    if model._modules.get("input_encoder") is not None:
        raise TargetLimitError("loihinet_sdnn takes graded input as it is (input_scale); use --encoding direct")
    spec = model.spec
    scale = float((1 << STATE_EXP) * spec.input_scale)  # M_0: the Delta encoder sends x_int << 6
    blocks: list[nn.Module] = []
    for i, block in enumerate(model.blocks):
        if isinstance(block, Flatten):
            blocks.append(QuantFlatten())
            continue
        if not isinstance(block, SdnnBlock):
            raise TargetLimitError(f"block #{i} ({type(block).__name__}) has no sigma-delta lowering")
        syn = block.synapse
        weight = syn.weight.detach().float()
        bias = syn.bias.detach().float() if syn.bias is not None else None
        if block.norm is not None:
            weight, bias = fold_batch_norm(weight, bias, block.norm)
            weight, bias = weight.detach(), bias.detach()
        msg_scale = _fill_scale(weight, scale)
        make_block = functools.partial(QuantSdnnBlock, bias=bias, in_scale=scale, msg_scale=msg_scale,
                                       threshold=block.threshold, sigma_output=block.sigma_output)
        if isinstance(syn, nn.Conv2d):
            # torch types Conv2d's stride, padding and dilation as tuple[int, ...]; Conv2d makes them pairs.
            blocks.append(make_block("conv", weight, stride=tuple(syn.stride), padding=tuple(syn.padding),  # type: ignore[arg-type]
                                     dilation=tuple(syn.dilation), groups=syn.groups))  # type: ignore[arg-type]
        else:
            blocks.append(make_block("dense", weight))
        scale = msg_scale
    input_vth = round(spec.input_threshold * spec.input_scale)
    if not math.isfinite(scale) or scale <= 0:
        raise TargetLimitError("loihinet_sdnn: a layer has no nonzero weights; train the model first")
    return QuantSdnnNet(blocks, input_shape, spec.input_scale, input_vth)
