"""Lowering a trained torch model to the integer IR, and refusing what Loihi 2 cannot run.

``lower(model, input_shape)`` accepts a float ``loihinet``, ``loihinet_sdnn`` or
residual ``LoihiGraphNet`` (``loihinet_sew_s``, ``sew_resnet18_loihi``; converted
to its QAT twin first: batch-norm folded, weights and thresholds mapped onto
the integer grid) or a QAT ``QuantLoihiNet`` / ``QuantSdnnNet`` / ``QuantGraphNet``
(read as is), and returns the
:class:`export.ir.Network` that netx, the native simulator and the NIR writer
share. Anything else is refused before anything is written, with an error that
names the layer, the reason and the way out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from export.ir import (
    Conv,
    CubaNeuron,
    Dense,
    Flatten,
    InputLayer,
    Layer,
    Network,
    Neuron,
    SigmaDeltaNeuron,
    conv_output_hw,
)
from hw_targets.errors import TargetLimitError


def _refusal(name: str, module: Any) -> str | None:
    """Why ``module`` cannot run on Loihi 2, or None."""
    import torch.nn as nn

    kind = type(module).__name__
    if isinstance(module, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)):
        return (f"max pooling ({kind}) is not a weighted sum, so no synapse can compute it, and netx refuses "
                "'pool' layers; use a strided conv (as loihinet does)")
    if kind == "SpikingSelfAttention" or "Attention" in kind:
        return (f"spiking self-attention ({kind}) multiplies spike tensors (Q·K^T·V); Loihi synapses only "
                "multiply a spike by a stored weight. Deploy a loihinet backbone instead")
    if kind == "SEWResNet18":
        return ("the paper's SEW-ResNet-18 is not deployable: its max pooling is no weighted sum, its LIF "
                "neurons are not CUBA-LIF with Loihi's fixed-point parameters, its ADDs sum the branches at the "
                "same step (the chip delays every synaptic hop by one step) and its read-out is non-spiking. "
                "Train its deployable form instead: --model sew_resnet18_loihi (strided convs, no max pool, "
                "average pool as a depthwise conv + BN + CUBA-LIF, hardware timing)")
    if kind in ("BasicBlock", "Bottleneck") and hasattr(module, "downsample"):
        return (f"spikingjelly SEW residual block ({kind}) adds its branches at the same step, but on Loihi "
                "every synaptic hop is one step, so the branches arrive with different latencies. Use a "
                "deployable SEW backbone (loihinet_sew_s, sew_resnet18_loihi), whose merges are one synapse "
                "per source as the chip computes them")
    if isinstance(module, (nn.BatchNorm1d, nn.LayerNorm, nn.GroupNorm)):
        return (f"normalization {kind} does not fold into a preceding conv's weights and bias; "
                "only BatchNorm2d directly after a conv folds")
    if getattr(module, "analog_input", False):
        return (f"{kind} feeds the network a real-valued input step (the hybrid code's analog image through its "
                "conv + batch-norm stem), but the netx input here carries binary spikes into the first synapse; "
                "graded input spikes would need input_message_bits > 0 on the input port and a lowering of the "
                "stem, which this exporter does not do. Use the binary input code (--encoding latency)")
    if getattr(module, "per_step_parameters", False):
        return (f"{kind} has per-time-step neuron parameters; a Loihi 2 neuron's decays and threshold are fixed "
                "registers. Use the fixed-parameter model (--neuron lif)")
    return None


def check_deployable(model: Any) -> None:
    """Raise :class:`TargetLimitError` naming the first module Loihi 2 cannot run.

    A batch-norm that is a ``LoihiBlock``'s or ``SdnnBlock``'s ``norm`` (directly after its synapse) folds
    and is allowed. In a residual ``LoihiGraphNet`` every merge must be a SEW ``ADD``.
    """
    from neuromoco.quant.graph import merge_refusal

    folded = {id(m.norm) for m in model.modules()
              if type(m).__name__ in ("LoihiBlock", "SdnnBlock") and m.norm is not None}
    for name, module in model.named_modules():
        if id(module) in folded:
            continue
        reason = _refusal(name, module)
        if reason is not None:
            raise TargetLimitError(f"layer '{name or 'model'}' ({type(module).__name__}): cannot run on loihi2: {reason}")
    graph = getattr(model, "graph", None)
    for i, layer in enumerate(graph() if callable(graph) else ()):
        reason = merge_refusal(layer)
        if reason is not None:
            raise TargetLimitError(f"layer '{layer.name}' (#{i}, {layer.kind}): cannot run on loihi2: {reason}")


def quant_to_ir(qnet: Any) -> Network:
    """Read the integer network out of a ``QuantLoihiNet``, ``QuantSdnnNet`` or ``QuantGraphNet``
    (exactly what its forward computes)."""
    import torch

    from neuromoco.quant.graph import QuantGraphNet
    from neuromoco.quant.layers import QuantBlock, QuantFlatten
    from neuromoco.quant.sdnn import QuantSdnnNet

    if isinstance(qnet, QuantSdnnNet):
        return sdnn_quant_to_ir(qnet)
    if isinstance(qnet, QuantGraphNet):
        return graph_quant_to_ir(qnet)

    layers: list[Layer] = []
    shape: tuple[int, ...] = tuple(int(s) for s in qnet.input_shape)
    with torch.no_grad():
        for i, block in enumerate(qnet.blocks):
            if isinstance(block, QuantFlatten):
                shape = (int(np.prod(shape)),)
                layers.append(Flatten(f"flatten{i}", shape))
                continue
            if not isinstance(block, QuantBlock):
                raise TargetLimitError(f"block #{i} ({type(block).__name__}) has no Loihi lowering")
            w = block.int_weight().cpu().numpy().astype(np.int32)
            b = block.int_bias().cpu().numpy().astype(np.int32)
            neuron = CubaNeuron(np.int32(block.i_decay), np.int32(block.v_decay), np.int32(block.v_th_mant))
            bias = b if np.any(b) else None
            layers.append(_synapse_layer(i, block, w, bias, neuron, shape))
            shape = layers[-1].out_shape
    return Network(tuple(layers), tuple(int(s) for s in qnet.input_shape))


def _synapse_layer(i: int, block: Any, w: npt.NDArray[np.int32], bias: npt.NDArray[np.int32] | None,
                   neuron: Neuron, shape: tuple[int, ...]) -> Layer:
    """The conv or dense IR layer of QAT block #i (either neuron family) fed by ``shape``."""
    if block.kind == "conv":
        kernel_hw = (int(w.shape[2]), int(w.shape[3]))
        hw = conv_output_hw((shape[1], shape[2]), kernel_hw, block.stride, block.padding, block.dilation)
        return Conv(f"conv{i}", (int(w.shape[0]), *hw), w, block.stride, block.padding, block.dilation,
                    int(block.groups), bias, neuron)
    return Dense(f"dense{i}", (int(w.shape[0]),), w, bias, neuron)


def graph_quant_to_ir(qnet: Any) -> Network:
    """Read the residual network out of a ``QuantGraphNet``: its layers one for one, with their names.

    A layer reading several sources (a SEW ``ADD`` feeding a synapse) becomes one IR layer whose
    ``sources`` name them all: one synapse per source with the layer's weights, into the same neurons.
    When a layer other than the first reads the network's input, the IR starts with a shape-only input
    layer named ``input`` for it to name.
    """
    import torch

    from neuromoco.quant.graph import INPUT
    from neuromoco.quant.layers import QuantBlock, QuantFlatten

    input_shape = tuple(int(s) for s in qnet.input_shape)
    layers: list[Layer] = [InputLayer(INPUT, input_shape)] if qnet.reads_input_later else []
    shapes: dict[str, tuple[int, ...]] = {INPUT: input_shape}
    with torch.no_grad():
        for i, (name, srcs, block) in enumerate(zip(qnet.layer_names, qnet.layer_sources, qnet.blocks)):
            # The first layer reads the network's input implicitly; naming it needs the input layer.
            sources = () if srcs == (INPUT,) and not layers else tuple(srcs)
            shape = shapes[srcs[0]]
            layer: Layer
            if isinstance(block, QuantFlatten):
                layer = Flatten(name, (int(np.prod(shape)),), sources)
            elif isinstance(block, QuantBlock):
                w = block.int_weight().cpu().numpy().astype(np.int32)
                b = block.int_bias().cpu().numpy().astype(np.int32)
                neuron = CubaNeuron(np.int32(block.i_decay), np.int32(block.v_decay), np.int32(block.v_th_mant))
                bias = b if np.any(b) else None
                if block.kind == "conv":
                    hw = conv_output_hw((shape[1], shape[2]), (int(w.shape[2]), int(w.shape[3])), block.stride,
                                        block.padding, block.dilation)
                    layer = Conv(name, (int(w.shape[0]), *hw), w, block.stride, block.padding, block.dilation,
                                 int(block.groups), bias, neuron, sources=sources)
                else:
                    layer = Dense(name, (int(w.shape[0]),), w, bias, neuron, sources=sources)
            else:
                raise TargetLimitError(f"layer '{name}' (#{i}, {type(block).__name__}) has no Loihi lowering")
            layers.append(layer)
            shapes[name] = layer.out_shape
    return Network(tuple(layers), input_shape)


def sdnn_quant_to_ir(qnet: Any) -> Network:
    """Read the sigma-delta network out of a ``QuantSdnnNet``: a Delta input layer, ``SigmaDelta``
    conv and dense layers, a ``Sigma`` read-out (``spike_exp = state_exp = 6``, netx's positions)."""
    import torch

    from neuromoco.quant.layers import QuantFlatten
    from neuromoco.quant.sdnn import SPIKE_EXP, STATE_EXP, QuantSdnnBlock

    def neuron(v_th_mant: int, sigma_output: bool = False) -> SigmaDeltaNeuron:
        return SigmaDeltaNeuron(np.int32(v_th_mant), spike_exp=SPIKE_EXP, state_exp=STATE_EXP,
                                sigma_output=sigma_output)

    shape: tuple[int, ...] = tuple(int(s) for s in qnet.input_shape)
    layers: list[Layer] = [InputLayer("input", shape, neuron(qnet.input_v_th_mant))]
    with torch.no_grad():
        for i, block in enumerate(qnet.blocks):
            if isinstance(block, QuantFlatten):
                shape = (int(np.prod(shape)),)
                layers.append(Flatten(f"flatten{i}", shape))
                continue
            if not isinstance(block, QuantSdnnBlock):
                raise TargetLimitError(f"block #{i} ({type(block).__name__}) has no sigma-delta lowering")
            w = block.int_weight().cpu().numpy().astype(np.int32)
            b_t = block.int_bias()
            b = None if b_t is None else b_t.cpu().numpy().astype(np.int32)
            bias = b if b is not None and np.any(b) else None
            sd = neuron(block.v_th_mant, block.sigma_output)
            layers.append(_synapse_layer(i, block, w, bias, sd, shape))
            shape = layers[-1].out_shape
    return Network(tuple(layers), tuple(int(s) for s in qnet.input_shape))


def lower(model: Any, input_shape: tuple[int, int, int]) -> Network:
    """The integer IR of a trained model.

    Args:
        model: a float ``LoihiNet``, ``LoihiSdnn`` or ``LoihiGraphNet``, or a ``QuantLoihiNet`` (a
            ``QuantGraphNet`` is one) or ``QuantSdnnNet``.
        input_shape: (C, H, W) of one frame.

    Raises:
        TargetLimitError: the model contains something Loihi 2 cannot run (names the layer).
    """
    from neuromoco.quant.convert import to_quant
    from neuromoco.quant.layers import QuantLoihiNet
    from neuromoco.quant.sdnn import QuantSdnnNet

    check_deployable(model)
    qnet = model if isinstance(model, (QuantLoihiNet, QuantSdnnNet)) else to_quant(model, input_shape)
    return quant_to_ir(qnet)
