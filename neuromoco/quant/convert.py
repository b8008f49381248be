"""From a trained float ``loihinet`` to its QAT twin: fold, scale, map onto the integer grid.

Per block:
1. Fold a batch-norm that follows a conv or dense synapse into its weight and bias.
2. Choose the layer's scale ``q`` so the largest weight uses the 8-bit mantissa
   (``max|w| * q = 127``), lowered if needed so the threshold mantissa
   ``round(threshold * q)`` stays within 17 bits and the bias mantissa within 13.
3. Decays become ``round(decay * 4096)`` (the float model keeps them exact).
4. The float bias enters the current every step; on Loihi it enters the
   voltage. With ``current_decay = 1`` (the deployable default: ``u`` is
   memoryless) the two are the same; otherwise they agree in steady state when
   ``bias_v = bias_u / current_decay``, which is the starting bias mantissa
   ``round(bias_v * q)``, and QAT fine-tuning absorbs the transient.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
from torch import nn

from hw_targets import constants as C
from hw_targets.errors import TargetLimitError
from neuromoco.quant.layers import WEIGHT_LIMIT, QuantBlock, QuantFlatten, QuantLoihiNet
from neuromoco.quant.sdnn import QuantSdnnNet, to_quant_sdnn


def fold_batch_norm(
    weight: torch.Tensor, bias: torch.Tensor | None, norm: nn.BatchNorm2d | nn.BatchNorm1d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Conv (or dense) weight and bias with the eval-mode batch-norm that follows folded in.

    ``w' = w * gamma / sqrt(var + eps)``, ``b' = (b - mean) * gamma / sqrt(var + eps) + beta``.
    """
    assert norm.running_mean is not None and norm.running_var is not None
    gamma = norm.weight if norm.weight is not None else torch.ones_like(norm.running_mean)
    beta = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
    inv = gamma / torch.sqrt(norm.running_var + norm.eps)
    b = bias if bias is not None else torch.zeros_like(norm.running_mean)
    scale = inv.view(-1, *([1] * (weight.dim() - 1)))  # per output channel / unit
    return weight * scale, (b - norm.running_mean) * inv + beta


def layer_scale(weight: torch.Tensor, threshold: float, bias: torch.Tensor | None = None) -> float:
    """Integer units per float unit: fill the 8-bit mantissa, keep the threshold within 17 bits
    and the bias within Lava's signed 13-bit ``bias_mant``."""
    peak = float(weight.abs().max())
    q = WEIGHT_LIMIT / peak if peak > 0 else 1.0
    q = min(q, C.VTH_MANT_MAX / max(threshold, 1e-12))
    if bias is not None and float(bias.abs().max()) > 0:
        q = min(q, ((1 << (C.BIAS_MANT_BITS - 1)) - 1) / float(bias.abs().max()))
    return q


def quant_block(block: nn.Module, where: str) -> QuantBlock:
    """The QAT twin of one float ``LoihiBlock``: batch-norm folded, weights, bias and threshold on the grid.

    Args:
        block: A ``LoihiBlock`` (synapse, optional norm, ``CubaLIFNode``).
        where: How messages name the block (``block #3``, ``layer 's1b0_conv1' (#2)``).

    Raises:
        TargetLimitError: Not a ``LoihiBlock``, or its neuron is not a fixed-parameter CUBA-LIF neuron.
    """
    from neuromoco.models.loihinet import LoihiBlock
    from neuromoco.models.neuron import CubaLIFNode

    if not isinstance(block, LoihiBlock):
        raise TargetLimitError(f"{where} ({type(block).__name__}) has no Loihi lowering")
    syn = block.synapse
    weight = syn.weight.detach().float()
    bias = syn.bias.detach().float() if syn.bias is not None else torch.zeros(weight.shape[0])
    if block.norm is not None:
        weight, bias = fold_batch_norm(weight, bias, block.norm)
        weight, bias = weight.detach(), bias.detach()
    node = block.neuron
    if not isinstance(node, CubaLIFNode):
        raise TargetLimitError(
            f"{where}: {type(node).__name__} is not a CUBA-LIF neuron with fixed parameters (use --neuron lif)"
        )
    bias_v = bias / node.current_decay if node.current_decay > 0 else bias
    q = layer_scale(weight, node.threshold, bias_v)
    make_block = functools.partial(
        QuantBlock,
        bias=torch.round(bias_v * q),
        scale=q,
        i_decay=round(node.current_decay * C.DECAY_UNITY),
        v_decay=round(node.voltage_decay * C.DECAY_UNITY),
        threshold=node.threshold,
        surrogate_function=node.surrogate_function,
    )
    if isinstance(syn, nn.Conv2d):
        # torch types Conv2d's stride, padding and dilation as tuple[int, ...]; Conv2d makes them pairs.
        return make_block("conv", weight, stride=tuple(syn.stride), padding=tuple(syn.padding),  # type: ignore[arg-type]
                          dilation=tuple(syn.dilation), groups=syn.groups)  # type: ignore[arg-type]
    return make_block("dense", weight)


def binary_input_encoder(model: nn.Module) -> nn.Module | None:
    """The model's input encoder if it sends binary spikes (None without one).

    Raises:
        TargetLimitError: The encoder feeds an analog step (the hybrid code).
    """
    encoder = model._modules.get("input_encoder")
    if encoder is not None and getattr(encoder, "analog_input", False):
        raise TargetLimitError(
            f"input encoder {type(encoder).__name__} feeds an analog step; Loihi input is binary spikes "
            "(use --encoding latency)"
        )
    return encoder


def to_quant(model: nn.Module, input_shape: Sequence[int], hw_timing: bool = True) -> QuantLoihiNet | QuantSdnnNet:
    """The QAT twin of a float ``LoihiNet`` (from ``neuromoco.models.loihinet``), of a ``LoihiSdnn``
    (:func:`neuromoco.quant.sdnn.to_quant_sdnn`, always in hardware timing), or of a residual
    ``LoihiGraphNet`` (:func:`neuromoco.quant.graph.to_quant_graph`).

    Args:
        model: the trained float model (eval-mode batch-norm statistics are folded).
        input_shape: (C, H, W) of one input frame.
        hw_timing: add Loihi's one-step synaptic delay per layer.

    Raises:
        TargetLimitError: if the model is not a conv/dense CUBA-LIF network (chain or ADD graph).
    """
    from neuromoco.models.loihinet import Flatten, LoihiNet
    from neuromoco.models.loihinet_sdnn import LoihiSdnn
    from neuromoco.models.loihinet_sew import LoihiGraphNet
    from neuromoco.quant.graph import to_quant_graph

    if isinstance(model, LoihiSdnn):
        return to_quant_sdnn(model, input_shape)
    if isinstance(model, LoihiGraphNet):
        return to_quant_graph(model, input_shape, hw_timing)
    if not isinstance(model, LoihiNet):
        hint = " (the paper's sew_resnet18 is not; its deployable form is sew_resnet18_loihi)" \
            if type(model).__name__ == "SEWResNet18" else ""
        raise TargetLimitError(
            f"QAT for Loihi needs a loihinet model; got {type(model).__name__}{hint}. "
            "Train loihinet_s, loihinet_m, loihinet_sew_s or sew_resnet18_loihi for deployment"
        )
    encoder = binary_input_encoder(model)
    blocks: list[nn.Module] = []
    for i, block in enumerate(model.blocks):
        blocks.append(QuantFlatten() if isinstance(block, Flatten) else quant_block(block, f"block #{i}"))
    return QuantLoihiNet(blocks, tuple(input_shape), hw_timing=hw_timing, input_encoder=encoder)
