"""How much of a chip an integer network takes: the resource estimate.

:func:`estimate_resources` gives per layer the neurons, synapses, synaptic
memory, fan-in and cores, and the chip count (model and assumptions in its
docstring and in :attr:`ResourceTable.notes`). Each IR layer kind has one entry
in :data:`LAYER_COUNTS`; the limit rules of :mod:`export.check` use the same counts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.geometry import ConvGeometry
from export.ir import Conv, Dense, Layer, Network, SigmaDeltaNeuron, sdnn_role
from hw_targets import constants as C
from hw_targets.base import Sourced, Target

Int64Array = npt.NDArray[np.int64]


def is_sourced(limit: Sourced) -> bool:
    """A limit the target actually states: a positive value with a named source."""
    return limit.value > 0 and bool(limit.source.strip())


def conv_fan_in(layer: Conv, in_shape: tuple[int, ...]) -> Int64Array:
    """Nonzero synapses into each output neuron, (C, H, W), borders and zero weights excluded."""
    taps = np.count_nonzero(layer.weight, axis=1)  # (Cout, kH, kW)
    return ConvGeometry.of(layer, in_shape).output_sums(taps)


def conv_input_axons(layer: Conv, in_shape: tuple[int, ...]) -> int:
    """Input neurons that reach at least one output neuron through a nonzero weight."""
    geometry = ConvGeometry.of(layer, in_shape)
    # used[c, kh, kw]: input channel c feeds some output channel of its group through tap (kh, kw).
    used = geometry.per_input_channel(np.asarray(layer.weight) != 0) > 0
    return int(np.count_nonzero(geometry.input_sums(used)))


# ----------------------------------------------------------------------------- resources


def _dense_memory_bytes(weight: npt.NDArray[Any], weight_bits: int, delays: bool) -> int:
    """Synaptic memory of a dense weight matrix (N_out, N_in): the cheaper of two formats.

    Dense format: every (pre, post) pair, zeros included, ``weight_bits`` each.
    Sparse format: each nonzero synapse stores its weight and the index of its
    postsynaptic neuron (``ceil(log2 N_out)`` bits) in the per-axon synapse list.
    Delays add ``ceil(log2(62 + 1))`` = 6 bits per stored entry.
    """
    n_out, n_in = weight.shape
    extra = math.ceil(math.log2(C.NETX_MAX_DELAY + 1)) if delays else 0
    dense_bits = n_out * n_in * (weight_bits + extra)
    index_bits = max(1, math.ceil(math.log2(max(n_out, 2))))
    sparse_bits = int(np.count_nonzero(weight)) * (weight_bits + index_bits + extra)
    return math.ceil(min(dense_bits, sparse_bits) / 8)


@dataclass(frozen=True)
class LayerCounts:
    """What one layer stores and connects, before any per-core limit (see :class:`LayerResources`).

    The distinct presynaptic neurons (input axons) are counted apart, by :data:`LAYER_INPUT_AXONS`:
    only the estimate needs them, and for conv layers they cost more than the rest together.

    Attributes:
        kernel_weights: weights one neuron's incoming synapses store (dense: its nonzero weights;
            conv: one output channel's kernel, zeros included); 0 without synapses.
    """

    neurons: int
    synapses: int
    connections: int
    memory_bytes: int
    fan_in: int
    kernel_weights: int


#: A layer that stores and connects nothing (flatten, a shape-only input layer).
NOTHING = LayerCounts(neurons=0, synapses=0, connections=0, memory_bytes=0, fan_in=0, kernel_weights=0)


def _input_counts(layer: Layer, in_shape: tuple[int, ...], weight_bits: int) -> LayerCounts:
    if not layer.has_neurons:
        return NOTHING  # the host feeds the first synapse
    n = int(np.prod(layer.shape))
    # Each input neuron receives the one external input line.
    return dataclasses.replace(NOTHING, neurons=n, fan_in=1)


def _dense_counts(layer: Layer, in_shape: tuple[int, ...], weight_bits: int) -> LayerCounts:
    assert isinstance(layer, Dense)
    nonzero = int(np.count_nonzero(layer.weight))
    fan_in = int(np.count_nonzero(layer.weight, axis=1).max())
    return LayerCounts(
        neurons=int(np.prod(layer.shape)), synapses=nonzero, connections=nonzero,
        memory_bytes=_dense_memory_bytes(layer.weight, weight_bits, layer.delay is not None),
        fan_in=fan_in, kernel_weights=fan_in,
    )


def _conv_counts(layer: Layer, in_shape: tuple[int, ...], weight_bits: int) -> LayerCounts:
    assert isinstance(layer, Conv)
    fan_in = conv_fan_in(layer, in_shape)
    synapses = int(layer.weight.size)
    return LayerCounts(
        neurons=int(np.prod(layer.shape)), synapses=synapses, connections=int(fan_in.sum()),
        memory_bytes=math.ceil(synapses * weight_bits / 8), fan_in=int(fan_in.max()),
        kernel_weights=int(np.prod(layer.weight.shape[1:])),
    )


def _flatten_counts(layer: Layer, in_shape: tuple[int, ...], weight_bits: int) -> LayerCounts:
    return NOTHING


#: One entry per IR layer kind: ``counts(layer, in_shape, weight_bits)``.
LAYER_COUNTS: dict[str, Callable[[Layer, tuple[int, ...], int], LayerCounts]] = {
    "input": _input_counts,
    "dense": _dense_counts,
    "conv": _conv_counts,
    "flatten": _flatten_counts,
}


def layer_counts(layer: Layer, in_shape: tuple[int, ...], weight_bits: int) -> LayerCounts:
    """:data:`LAYER_COUNTS`' entry for the layer's kind."""
    return LAYER_COUNTS[layer.kind](layer, in_shape, weight_bits)


def _dense_input_axons(layer: Layer, in_shape: tuple[int, ...]) -> int:
    assert isinstance(layer, Dense)
    return int(np.count_nonzero(np.any(layer.weight != 0, axis=0)))


def _conv_input_axons(layer: Layer, in_shape: tuple[int, ...]) -> int:
    assert isinstance(layer, Conv)
    return conv_input_axons(layer, in_shape)


#: Distinct presynaptic neurons that reach a layer of each IR kind, ``axons(layer, in_shape)``.
LAYER_INPUT_AXONS: dict[str, Callable[[Layer, tuple[int, ...]], int]] = {
    # An input layer's neurons each receive one external line (none without neurons).
    "input": lambda layer, in_shape: int(np.prod(layer.shape)) if layer.has_neurons else 0,
    "dense": _dense_input_axons,
    "conv": _conv_input_axons,
    "flatten": lambda layer, in_shape: 0,
}


#: State words one neuron keeps, by model. The per-core neuron limits are sourced for CUBA-LIF
#: neurons (``u`` and ``v``); a sigma-delta neuron keeps what Lava 0.10's ``lava/proc/sdn`` models
#: hold: ``Delta`` act and residue, ``SigmaDelta`` sigma, act and residue, ``Sigma`` sigma.
LIF_STATE_WORDS = 2
SDNN_STATE_WORDS: dict[str, int] = {"Delta": 2, "SigmaDelta": 3, "Sigma": 1}


def neuron_slots(layer: Layer) -> int:
    """The layer's neurons in LIF-neuron equivalents of per-core neuron memory.

    ASSUMPTION (no published per-model figure): a core's neuron memory holds ``neurons_per_core``
    LIF neurons of :data:`LIF_STATE_WORDS` words each, and other models fill it word for word:
    ``ceil(neurons * words / 2)``. A CUBA layer's slots are its neurons.
    """
    neurons = int(np.prod(layer.shape)) if layer.has_neurons else 0
    neuron = getattr(layer, "neuron", None)
    if not isinstance(neuron, SigmaDeltaNeuron):
        return neurons
    return math.ceil(neurons * SDNN_STATE_WORDS[sdnn_role(layer)] / LIF_STATE_WORDS)


def in_shapes(net: Network) -> list[tuple[int, ...]]:
    """The shape flowing into each layer: its (first) source's output, the network's input for the
    first layer (an input layer's own shape for itself). The layers a merge reads share one shape."""
    return [tuple(net.layers[srcs[0]].out_shape) if (srcs := net.sources(i)) else tuple(net.input_shape)
            for i in range(len(net.layers))]


def merge_sources(net: Network, index: int) -> int:
    """How many synapse processes layer ``index``'s synapse is: 1, or k for a merge of k sources.

    A merge is one synapse per source, with the same weights, into the same neurons (Lava sums the
    connections made to one ``a_in``), so on the chip it stores and connects k times what one does.
    """
    return max(1, len(net.sources(index))) if net.layers[index].synaptic else 1


def _times(counts: LayerCounts, k: int) -> LayerCounts:
    """A merge's counts: every synapse, connection, stored weight and input of a neuron k times."""
    if k == 1:
        return counts
    return dataclasses.replace(counts, synapses=counts.synapses * k, connections=counts.connections * k,
                               memory_bytes=counts.memory_bytes * k, fan_in=counts.fan_in * k,
                               kernel_weights=counts.kernel_weights * k)


def network_counts(net: Network, weight_bits: int) -> list[LayerCounts]:
    """:func:`layer_counts` of every layer against its input, a merge's counted once per source."""
    return [_times(layer_counts(layer, shape, weight_bits), merge_sources(net, i))
            for i, (layer, shape) in enumerate(zip(net.layers, in_shapes(net)))]


def output_axons(net: Network, index: int) -> int:
    """Axons layer ``index``'s neurons send: one per neuron and synapse process that reads it.

    A flatten passes its source's spikes on to its own readers. The last layer's spikes go to the
    host, which is not counted. ASSUMPTION: one axon per (neuron, reading synapse process); how many
    destination cores each reaches (a conv's halo, a dense layer split over cores) is not modelled.
    """
    layer = net.layers[index]
    if not layer.has_neurons:
        return 0
    readers = 0
    pending = [index]
    while pending:
        for j in net.consumers(pending.pop()):
            if net.layers[j].synaptic:
                readers += 1
            elif net.layers[j].kind == "flatten":
                pending.append(j)
    return int(np.prod(layer.shape)) * readers


@dataclass(frozen=True)
class LayerResources:
    """What one layer takes on the target.

    Attributes:
        name, kind: the layer's name and kind.
        neurons: neurons (compartments) the layer needs; 0 for flatten and a neuron-less input.
        synapses: weights stored: dense nonzero weights, conv ``Cout*Cin/g*kH*kW`` (shared kernel).
        connections: (pre, post) pairs joined by a nonzero weight (conv: borders excluded).
        synaptic_memory_bytes: memory for the stored synapses (model in :func:`estimate_resources`).
        fan_in: the most nonzero inputs of one neuron.
        input_axons: distinct presynaptic neurons that reach the layer (a merge: summed over its sources).
        output_axons: axons the layer's neurons send, one per neuron and reading synapse process
            (:func:`output_axons`).
        cores: cores the layer needs.
        bound: which limit set ``cores`` (``neurons``, ``synaptic memory``, ``input axons``; ``-`` when 0).
    """

    name: str
    kind: str
    neurons: int
    synapses: int
    connections: int
    synaptic_memory_bytes: int
    fan_in: int
    input_axons: int
    output_axons: int
    cores: int
    bound: str


_COLUMNS = ("neurons", "synapses", "connections", "synaptic_memory_bytes", "fan_in", "input_axons", "output_axons",
            "cores")
_HEADERS = ("neurons", "synapses", "connections", "syn. memory B", "fan-in", "in axons", "out axons", "cores")


@dataclass(frozen=True)
class ResourceTable:
    """Per-layer resources and chip totals of a network on a target.

    Attributes:
        target: the target's name.
        layers: one entry per IR layer.
        cores: sum of the layers' cores.
        chips: chips needed (at least 1).
        chip_bound: which per-chip limit set ``chips``.
        notes: the model's assumptions, printed under the table and kept in the sidecar.
    """

    target: str
    layers: tuple[LayerResources, ...]
    cores: int
    chips: int
    chip_bound: str
    notes: tuple[str, ...]

    def total(self, column: str) -> int:
        """Sum of one integer column over the layers (``neurons``, ``synapses``, ...)."""
        return sum(int(getattr(layer, column)) for layer in self.layers)

    def format_table(self) -> str:
        """A plain-text table, one row per layer, totals and notes below."""
        rows: list[tuple[str, ...]] = [("layer", "kind", *_HEADERS, "bound")]
        for r in self.layers:
            rows.append((r.name, r.kind, *(f"{getattr(r, c):,}" for c in _COLUMNS), r.bound))
        totals = [f"{self.total(c):,}" if c not in ("fan_in",) else "" for c in _COLUMNS]
        rows.append(("total", "", *totals, ""))
        widths = [max(len(row[j]) for row in rows) for j in range(len(rows[0]))]
        lines = []
        for k, row in enumerate(rows):
            cells = [cell.ljust(w) if j in (0, 1, len(row) - 1) else cell.rjust(w) for j, (cell, w) in enumerate(zip(row, widths))]
            lines.append("  ".join(cells).rstrip())
            if k == 0 or k == len(rows) - 2:
                lines.append("  ".join("-" * w for w in widths))
        lines.append(f"target {self.target}: {self.cores} cores on {self.chips} chip(s) (chips set by {self.chip_bound})")
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict for the export sidecar."""
        return {
            "target": self.target,
            "layers": [{f: getattr(r, f) for f in ("name", "kind", *_COLUMNS, "bound")} for r in self.layers],
            "totals": {
                **{c: self.total(c) for c in _COLUMNS if c != "fan_in"},
                "max_fan_in": max((r.fan_in for r in self.layers), default=0),
                "chips": self.chips,
                "chip_bound": self.chip_bound,
            },
            "notes": list(self.notes),
        }


def _ceil_div(amount: int, limit: Sourced) -> int:
    """Cores (or chips) ``amount`` needs under ``limit``; 0 when the limit is not sourced."""
    return math.ceil(amount / limit.value) if is_sourced(limit) else 0


def estimate_resources(net: Network, target: Target) -> ResourceTable:
    """Estimate neurons, synapses, synaptic memory and cores per layer, and the chips.

    The model (also listed in :attr:`ResourceTable.notes`):

    - Each layer with neurons gets cores of its own; no two layers share a core.
      A neuron-less input layer (the host feeds the first synapse) and a flatten
      layer take no cores.
    - Synaptic memory, ``weight_bits`` per weight:
      *dense* layers take the cheaper of a dense format (every (pre, post) pair,
      zeros included) and a sparse one (each nonzero weight plus a
      ``ceil(log2 N_out)``-bit postsynaptic index); delays add 6 bits per entry.
      *Conv* kernels are shared over positions (Loihi population axons), so the
      kernel ``Cout*Cin/g*kH*kW`` is stored once and each core keeps the kernels
      of the output channels it holds.
    - Sigma-delta neurons keep more state than LIF ones; they count towards the
      neuron limits in LIF equivalents (:func:`neuron_slots`, an assumption).
    - Cores of a layer = max(ceil(neurons / neurons per core),
      ceil(synaptic memory / memory per core), ceil(input axons / input axons per core)).
      The axon term assumes the inputs can be partitioned over the cores (true
      for conv tiles up to halos; optimistic for dense layers, where every core
      sees every input); a single neuron over the limit is a rule violation instead.
    - A merge of k sources is k synapse processes (one per source, same weights, same neurons): its
      synapses, connections, memory, fan-in and input axons count k times.
    - Output axons: one per neuron and reading synapse process (:func:`output_axons`); which cores
      they reach, fan-out limits per core and routing are not modelled.
    - Chips = max(1, ceil(cores / cores per chip), ceil(neurons / neurons per chip),
      ceil(synapses / synapses per chip)).

    Limits the target does not source are skipped.
    """
    limits, bits = target.limits, target.formats.weight_bits
    rows = []
    slots = []
    for i, (layer, shape, c) in enumerate(zip(net.layers, in_shapes(net), network_counts(net, bits))):
        neurons, memory = c.neurons, c.memory_bytes
        slots.append(neuron_slots(layer) if neurons else 0)
        axons = LAYER_INPUT_AXONS[layer.kind](layer, shape) * merge_sources(net, i)
        terms = {
            "neurons": _ceil_div(slots[-1], limits.neurons_per_core),
            "synaptic memory": _ceil_div(memory, limits.synaptic_memory_bytes_per_core),
            "input axons": _ceil_div(axons, limits.fan_in_axons_per_core),
        }
        cores = max(terms.values()) if neurons else 0
        if neurons and cores == 0:
            cores = 1  # no sourced per-core limit: at least the one core the layer lives on
        bound = max(terms, key=lambda k: terms[k]) if cores else "-"
        rows.append(LayerResources(layer.name, layer.kind, neurons, c.synapses, c.connections, memory,
                                   c.fan_in, axons, output_axons(net, i), cores, bound))
    cores = sum(r.cores for r in rows)
    chip_terms = {
        "cores": _ceil_div(cores, limits.cores_per_chip),
        "neurons": _ceil_div(sum(slots), limits.neurons_per_chip),
        "synapses": _ceil_div(sum(r.synapses for r in rows), limits.synapses_per_chip),
    }
    chips = max(1, *chip_terms.values())
    chip_bound = max(chip_terms, key=lambda k: chip_terms[k]) if max(chip_terms.values()) else "minimum of one chip"
    notes: tuple[str, ...] = (
        "each layer with neurons gets cores of its own; flatten and a neuron-less input take none",
        f"dense synaptic memory: the cheaper of a dense format ({bits} bits per pair, zeros included) and a "
        f"sparse one ({bits}-bit weight + ceil(log2 N_out)-bit index per nonzero weight)",
        "conv kernels are shared over positions (population axons) and stored once: Cout*Cin/g*kH*kW weights",
        "cores per layer = max over neurons, synaptic memory and input axons per core; "
        "fan-out axons and routing are not modelled",
        "chips = max(1, cores / cores per chip, neurons / neurons per chip, synapses / synapses per chip), rounded up",
        "ASSUMPTION: out axons = neurons x the synapse processes reading the layer (through flattens); the "
        "host reading the last layer and the destination cores per axon are not counted",
    )
    if net.is_graph:
        notes += (
            "a merge of k sources is k synapse processes into the same neurons: its synapses, connections, "
            "synaptic memory, fan-in and input axons count k times (the same weights stored once per source)",
        )
    if net.family == "SDNN":
        notes += (
            "ASSUMPTION: the neurons per core (and per chip) are sourced for CUBA-LIF neurons, 2 state words "
            "(u, v); a sigma-delta neuron fills that memory word for word: SigmaDelta 3 words (sigma, act, "
            "residue), Delta 2 (act, residue), Sigma 1 (sigma), so a SigmaDelta layer counts 1.5 LIF neurons "
            "per neuron towards the neuron limits; synapses and axons are counted as for CUBA layers",
        )
    return ResourceTable(target.name, tuple(rows), cores, chips, chip_bound, notes)
