"""The QAT twin of a residual ``LoihiGraphNet``: Loihi's integer CUBA-LIF arithmetic on a graph.

Each layer is a :class:`~neuromoco.quant.layers.QuantBlock` (or a flatten) that
reads named sources. As on the chip, a layer reading several sources has one
synapse process per source, all with the layer's weights, and its neurons
receive their sum (Lava's ``a_in`` port adds every connection): the float
model's SEW ``ADD`` of spike tensors before the synapse. In hardware timing
every synapse delivers the spikes of step ``k`` at step ``k + 1``, every layer
runs the chip's ``T + L`` steps, and a layer's spikes, currents and voltages
are exactly the native simulator's on the lowered IR (``export.lower.graph_quant_to_ir``).

Lava's conv process wraps its own 24-bit accumulator before the sum
(``signed_clamp``, reference/loihi_netx.md section 7.4); with binary spikes one
process's sum is at most ``127 * fan_in`` in magnitude, so a conv whose fan-in
could reach the wrap is refused at conversion, naming the layer. Dense
processes do not wrap (int32).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from hw_targets import constants as C
from hw_targets.errors import TargetLimitError
from neuromoco.quant.layers import WEIGHT_LIMIT, QuantBlock, QuantFlatten, QuantLoihiNet

#: The source name of the network's input spikes (``neuromoco.models.loihinet_sew.INPUT``).
INPUT = "input"
#: The largest magnitude a conv process's accumulator holds without wrapping (Lava: [-2**23, 2**23 - 1]).
CONV_ACC_LIMIT = (1 << (C.CONV_ACC_BITS - 1)) - 1

LayerRun = tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]


class QuantGraphNet(QuantLoihiNet):
    """Integer blocks reading named sources, read out by spike count (a ``QuantLoihiNet`` on a graph).

    Attributes:
        blocks: ``QuantBlock`` or ``QuantFlatten`` per layer, in execution order.
        layer_names: The layers' names (the IR's).
        layer_sources: Per layer, the names it reads (:data:`INPUT` for the input spikes), in merge order.
    """

    def __init__(self, blocks: list[nn.Module], names: Sequence[str], sources: Sequence[tuple[str, ...]],
                 input_shape: Sequence[int], hw_timing: bool = True, input_encoder: nn.Module | None = None) -> None:
        super().__init__(blocks, input_shape, hw_timing=hw_timing, input_encoder=input_encoder)
        self.layer_names = tuple(names)
        self.layer_sources = tuple(tuple(s) for s in sources)
        hops: dict[str, int] = {INPUT: 0}
        for name, srcs, block in zip(self.layer_names, self.layer_sources, self.blocks):
            hops[name] = max(hops[s] for s in srcs) + int(isinstance(block, QuantBlock))
        self._hops = hops
        head = self.blocks[-1]
        assert isinstance(head, QuantBlock) and len(self.layer_sources[-1]) == 1
        self.feature_dim = int(head.weight.shape[1])

    @property
    def latency(self) -> int:
        """Synaptic hops on the longest path from the input to the output (0 without hardware timing)."""
        return self._hops[self.layer_names[-1]] if self.hw_timing else 0

    @property
    def reads_input_later(self) -> bool:
        """Whether a layer but the first reads the input (the IR then starts with a shape-only input layer)."""
        return any(INPUT in srcs for srcs in self.layer_sources[1:])

    def _run(self, x: torch.Tensor, upto: int) -> dict[str, LayerRun]:
        """(spikes, u, v) of layers ``0 .. upto - 1`` and the input, from frames ``[T, B, C, H, W]``."""
        outs: dict[str, LayerRun] = {INPUT: (self.prepare_input(x), None, None)}  # (T + L, B, C, H, W)
        for name, srcs, block in zip(self.layer_names[:upto], self.layer_sources[:upto], self.blocks[:upto]):
            if isinstance(block, QuantBlock):
                # One synapse process per source, summed at the neurons' input port; several 24-bit
                # process sums can pass float32's exact integers (2**24), so a merge sums in float64.
                a = block.synaptic_input(outs[srcs[0]][0])
                for src in srcs[1:]:
                    a = a.double() + block.synaptic_input(outs[src][0]).double()
                outs[name] = block.integrate(a, self.hw_timing)
            else:
                outs[name] = (block(outs[srcs[0]][0]), None, None)
        return outs

    def run_layers(self, x: torch.Tensor) -> list[LayerRun]:
        """(spikes, u, v) of every IR layer (a leading shape-only input layer's spikes when the IR has one)."""
        outs = self._run(x, len(self.blocks))
        first = [outs[INPUT]] if self.reads_input_later else []
        return first + [outs[name] for name in self.layer_names]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The classifier's source's spikes over the whole run ``[T + L, B, feature_dim]``."""
        return self._run(x, len(self.blocks) - 1)[self.layer_sources[-1][0]][0]

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        spikes: torch.Tensor = self.blocks[-1](features, self.hw_timing)[0]
        return spikes


def merge_refusal(layer: Any) -> str | None:
    """Why a ``GraphLayer``'s merge cannot run on Loihi 2 (None: one source, or a SEW ``ADD``)."""
    if len(layer.sources) < 2 or layer.cnf == "ADD":
        return None
    return (f"SEW connect function cnf={layer.cnf!r} merges {list(layer.sources)} by multiplying spikes; a Loihi "
            "neuron only sums what its synapses deliver (one synapse per source), so only cnf='ADD' deploys. "
            "Retrain with cnf='ADD'")


def _check_accumulator(block: QuantBlock, where: str) -> None:
    """Refuse a conv whose per-process 24-bit accumulator could wrap (the QAT twin sums exactly)."""
    if block.kind != "conv":
        return
    fan_in = int(block.weight[0].numel())
    if WEIGHT_LIMIT * fan_in > CONV_ACC_LIMIT:
        raise TargetLimitError(
            f"{where}: fan-in {fan_in} x weight {WEIGHT_LIMIT} = {WEIGHT_LIMIT * fan_in} can exceed the "
            f"{C.CONV_ACC_BITS}-bit accumulator of a Lava conv process (|sum| <= {CONV_ACC_LIMIT}), which wraps "
            "on its own and which QAT does not model; use fewer input channels or a smaller kernel"
        )


def to_quant_graph(model: Any, input_shape: Sequence[int], hw_timing: bool = True) -> QuantGraphNet:
    """The QAT twin of a float ``LoihiGraphNet`` (:mod:`neuromoco.models.loihinet_sew`).

    Args:
        model: The trained float graph (eval-mode batch-norm statistics are folded).
        input_shape: ``(C, H, W)`` of one input frame.
        hw_timing: Loihi's one-step synaptic delay per hop.

    Raises:
        TargetLimitError: A merge that is not ``ADD`` (not a sum of spikes, so no set of synapses computes
            it), a neuron that is not a fixed CUBA-LIF, an analog input code, or a conv accumulator that could
            wrap; naming the layer.
    """
    from neuromoco.models.loihinet import Flatten
    from neuromoco.quant.convert import binary_input_encoder, quant_block

    encoder = binary_input_encoder(model)
    blocks: list[nn.Module] = []
    for i, (layer, block) in enumerate(zip(model.graph(), model.blocks)):
        where = f"layer '{layer.name}' (#{i}, {layer.kind})"
        reason = merge_refusal(layer)
        if reason is not None:
            raise TargetLimitError(f"{where}: {reason}")
        if isinstance(block, Flatten):
            blocks.append(QuantFlatten())
            continue
        qblock = quant_block(block, where)
        _check_accumulator(qblock, where)
        blocks.append(qblock)
    names = [layer.name for layer in model.graph()]
    sources = [layer.sources for layer in model.graph()]
    return QuantGraphNet(blocks, names, sources, tuple(input_shape), hw_timing=hw_timing, input_encoder=encoder)
