"""Does an integer network fit a hardware target, and how much of the chip does it take?

Two things live here, both reading only the IR and the target's data:

- **Limit rules.** :data:`RULES` is a tuple of small named functions
  ``rule(net, target) -> list[Violation]``. :func:`check_network` runs them all
  and raises :class:`~hw_targets.errors.TargetLimitError` whose message starts
  with the rule's name and the layer, gives the value and the limit, and says
  what to do. A rule whose limit the target does not source is skipped.
- **Resource estimate.** :func:`estimate_resources` gives per layer the
  neurons, synapses, synaptic memory, fan-in and cores, and the chip count
  (model and assumptions in its docstring and in :attr:`ResourceTable.notes`).

Not checked, on purpose: the 24-bit ``u``/``v`` states. They wrap (``u``) and
saturate (``v``) legitimately, exactly as the simulator reproduces, so no
static bound is imposed and no warning is given.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.geometry import ConvGeometry
from export import netx_dense
from export.netx_dense import dense_weight_fault, dense_weight_range
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network
from hw_targets import constants as C
from hw_targets.base import Sourced, Target
from hw_targets.errors import TargetLimitError

Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Violation:
    """One broken rule at one layer.

    Attributes:
        rule: the rule function's name (``weight_mantissa``).
        layer_index: position of the layer in ``net.layers``.
        layer: ``net.describe(layer_index)``, e.g. ``layer 'conv3' (#4, conv)``.
        message: the value, the limit and what to do.
    """

    rule: str
    layer_index: int
    layer: str
    message: str

    def __str__(self) -> str:
        return f"rule {self.rule}: {self.layer}: {self.message}"


Rule = Callable[[Network, Target], "list[Violation]"]


def _violation(rule: str, net: Network, index: int, message: str) -> Violation:
    return Violation(rule, index, net.describe(index), message)


def is_sourced(limit: Sourced) -> bool:
    """A limit the target actually states: a positive value with a named source."""
    return limit.value > 0 and bool(limit.source.strip())


def _worst(values: npt.NDArray[Any], lo: int, hi: int) -> int | None:
    """The value farthest outside [lo, hi], or None when all fit."""
    if not values.size:
        return None
    vmax, vmin = int(values.max()), int(values.min())
    if vmax - hi >= lo - vmin and vmax > hi:
        return vmax
    if vmin < lo:
        return vmin
    return None


def _neuron_of(layer: Layer) -> CubaNeuron | None:
    if isinstance(layer, (InputLayer, Dense, Conv)):
        return layer.neuron
    return None


# ----------------------------------------------------------------------------- connectivity


def in_shapes(net: Network) -> list[tuple[int, ...]]:
    """The shape flowing into each layer (an input layer's own shape for itself)."""
    shapes: list[tuple[int, ...]] = []
    shape = tuple(net.input_shape)
    for layer in net.layers:
        shapes.append(shape)
        shape = tuple(layer.out_shape)
    return shapes


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


# ----------------------------------------------------------------------------- rules


def layer_type(net: Network, target: Target) -> list[Violation]:
    """Every layer kind must be one the target runs."""
    return [
        _violation("layer_type", net, i,
                   f"layer kind '{layer.kind}' is not supported by target {target.name} "
                   f"(supported: {', '.join(target.layer_types)}); replace the layer or choose another target")
        for i, layer in enumerate(net.layers)
        if layer.kind not in target.layer_types
    ]


def dense_weight_sign(net: Network, target: Target) -> list[Violation]:
    """Dense weights need one positive entry: netx crashes on all-zero and corrupts all-nonpositive layers."""
    out = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, Dense):
            continue
        fault = dense_weight_fault(layer.weight)
        if fault == netx_dense.ZERO:
            out.append(_violation("dense_weight_sign", net, i,
                                  f"all weights are 0; the netx loader of target {target.name} crashes on it; "
                                  "remove the layer or retrain"))
        elif fault == netx_dense.NON_POSITIVE:
            out.append(_violation("dense_weight_sign", net, i,
                                  f"largest weight is {int(layer.weight.max())} <= 0; netx's weight-bit optimisation "
                                  f"corrupts such a layer on target {target.name} (reference loihi_netx.md 6.1); "
                                  "add one positive weight or retrain"))
    return out


def conv_weight_exponent(weight: npt.NDArray[Any], bits: int, exp_min: int, exp_max: int) -> int | None:
    """The smallest per-layer exponent e with every weight = m * 2**e, m a signed ``bits``-bit integer.

    Integer weights never need a negative exponent, so e runs over
    [max(0, exp_min), exp_max]. Returns None when no exponent fits.
    """
    w = np.asarray(weight, dtype=np.int64)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    for e in range(max(0, exp_min), exp_max + 1):
        if np.any(w % (1 << e)):
            return None  # divisibility only gets harder with larger e
        m = w >> e
        if not w.size or (int(m.min()) >= lo and int(m.max()) <= hi):
            return e
    return None


def weight_mantissa(net: Network, target: Target) -> list[Violation]:
    """Weights must be representable as the target's mantissa times 2**exponent.

    Dense: the range netx's loader keeps (see :func:`dense_weight_range`).
    Conv: a signed mantissa with one exponent per layer in the target's range.
    """
    fmt = target.formats
    bits, fix = fmt.weight_bits, f"re-run QAT with weight_bits={fmt.weight_bits}"
    out = []
    for i, layer in enumerate(net.layers):
        if isinstance(layer, Dense):
            lo, hi, mode = dense_weight_range(layer.weight, bits)
            bad = _worst(layer.weight, lo, hi)
            if bad is not None:
                out.append(_violation("weight_mantissa", net, i,
                                      f"weight {bad} does not fit the {bits}-bit mantissa of target {target.name} "
                                      f"(netx keeps {mode} dense weights in [{lo}, {hi}]); {fix}"))
        elif isinstance(layer, Conv):
            if conv_weight_exponent(layer.weight, bits, fmt.weight_exp_min, fmt.weight_exp_max) is not None:
                continue
            w = layer.weight.astype(np.int64)
            biggest = int(w.flat[np.argmax(np.abs(w))])
            half = 1 << (bits - 1)
            # smallest exponent at which the largest magnitude fits the signed mantissa
            need = max(0, fmt.weight_exp_min)
            while not (-half <= biggest >> need <= half - 1):
                need += 1
            if need > fmt.weight_exp_max:
                msg = (f"weight {biggest} does not fit the {bits}-bit signed mantissa x 2^e "
                       f"(e <= {fmt.weight_exp_max}) of target {target.name}; {fix}")
            else:
                odd = int(w[(w % (1 << need)) != 0].flat[0])
                msg = (f"weight {biggest} needs a per-layer exponent >= {need} for the {bits}-bit signed mantissa "
                       f"of target {target.name}, but weight {odd} is not a multiple of 2^{need}; {fix}")
            out.append(_violation("weight_mantissa", net, i, msg))
    return out


def decay_range(net: Network, target: Target) -> list[Violation]:
    """``i_decay`` and ``v_decay`` must fit the target's decay field (0 .. 2**decay_bits)."""
    bits = target.formats.decay_bits
    hi = 1 << bits
    out = []
    for i, layer in enumerate(net.layers):
        neuron = _neuron_of(layer)
        if neuron is None:
            continue
        for name in ("i_decay", "v_decay"):
            bad = _worst(np.asarray(getattr(neuron, name)), 0, hi)
            if bad is not None:
                out.append(_violation("decay_range", net, i,
                                      f"{name} {bad} does not fit the {bits}-bit decay of target {target.name} "
                                      f"(0..{hi}); re-run QAT with decays clamped to 0..{hi}"))
    return out


def threshold_mantissa(net: Network, target: Target) -> list[Violation]:
    """``v_th_mant`` must fit the target's unsigned threshold mantissa."""
    bits = target.formats.vth_mant_bits
    hi = (1 << bits) - 1
    out = []
    for i, layer in enumerate(net.layers):
        neuron = _neuron_of(layer)
        if neuron is None:
            continue
        bad = _worst(np.asarray(neuron.v_th_mant), 0, hi)
        if bad is not None:
            out.append(_violation("threshold_mantissa", net, i,
                                  f"v_th_mant {bad} does not fit the {bits}-bit threshold mantissa of target "
                                  f"{target.name} (0..{hi}); lower the threshold scale in QAT, or give a readout "
                                  "that must never spike no neuron (netx's default integrator)"))
    return out


def bias_mantissa(net: Network, target: Target) -> list[Violation]:
    """Dense and conv biases must fit the target's signed bias mantissa (-4096..4095 for 13 bits).

    An input layer's scalar bias is not checked: netx stores it but never applies it.
    """
    bits = target.formats.bias_mant_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = []
    for i, layer in enumerate(net.layers):
        if not isinstance(layer, (Dense, Conv)) or layer.bias is None:
            continue
        bad = _worst(np.asarray(layer.bias), lo, hi)
        if bad is not None:
            out.append(_violation("bias_mantissa", net, i,
                                  f"bias {bad} does not fit the {bits}-bit signed bias mantissa of target "
                                  f"{target.name} ({lo}..{hi}); re-run QAT with the bias clamped to that range"))
    return out


def neuron_fan_in(net: Network, target: Target) -> list[Violation]:
    """One neuron's inputs must fit the input axons of one core (a neuron cannot be split).

    Skipped when the target does not source ``fan_in_axons_per_core``.
    """
    limit = target.limits.fan_in_axons_per_core
    if not is_sourced(limit):
        return []
    out = []
    for i, (layer, shape) in enumerate(zip(net.layers, in_shapes(net))):
        fan_in = _layer_fan_in(layer, shape)
        if fan_in > limit.value:
            out.append(_violation("neuron_fan_in", net, i,
                                  f"a neuron has fan-in {fan_in}, above the {int(limit.value)} input axons per core "
                                  f"of target {target.name} ({limit.source}); one neuron cannot be split across "
                                  "cores: shrink the layer's input (pooling, stride, fewer channels) or prune weights"))
    return out


def neuron_synaptic_memory(net: Network, target: Target) -> list[Violation]:
    """One neuron's incoming synapses must fit the synaptic memory of one core.

    Counted at ``weight_bits`` per weight, without index overhead (a lower
    bound): a dense neuron's nonzero weights; for conv, the kernel of one output
    channel. Skipped when the target does not source the memory size.
    """
    limit = target.limits.synaptic_memory_bytes_per_core
    if not is_sourced(limit):
        return []
    bits = target.formats.weight_bits
    out = []
    for i, (layer, shape) in enumerate(zip(net.layers, in_shapes(net))):
        if isinstance(layer, Dense):
            weights = _layer_fan_in(layer, shape)  # its nonzero weights
        elif isinstance(layer, Conv):
            weights = int(np.prod(layer.weight.shape[1:]))  # one output channel's kernel, zeros included
        else:
            continue
        need = math.ceil(weights * bits / 8)
        if need > limit.value:
            out.append(_violation("neuron_synaptic_memory", net, i,
                                  f"one neuron's synapses need {need} bytes, above the {int(limit.value)} bytes of "
                                  f"synaptic memory per core of target {target.name} ({limit.source}); "
                                  "shrink the layer's fan-in or prune weights"))
    return out


#: Every rule :func:`check_network` applies, in order.
RULES: tuple[Rule, ...] = (
    layer_type,
    dense_weight_sign,
    weight_mantissa,
    decay_range,
    threshold_mantissa,
    bias_mantissa,
    neuron_fan_in,
    neuron_synaptic_memory,
)


def find_violations(net: Network, target: Target, rules: tuple[Rule, ...] = RULES) -> list[Violation]:
    """All violations of ``rules`` (default: :data:`RULES`), in rule order."""
    return [v for rule in rules for v in rule(net, target)]


def check_network(net: Network, target: Target) -> None:
    """Refuse a network that does not fit ``target``.

    Raises:
        TargetLimitError: one line naming the first broken rule, the layer, the
            value, the limit and what to do; further violations are counted and
            named by rule and layer at the end.
    """
    violations = find_violations(net, target)
    if not violations:
        return
    message = str(violations[0])
    if len(violations) > 1:
        rest = ", ".join(f"{v.rule} at '{net.layers[v.layer_index].name}'" for v in violations[1:6])
        more = "" if len(violations) <= 6 else ", ..."
        message += f" (and {len(violations) - 1} more: {rest}{more})"
    raise TargetLimitError(message)


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


def _layer_fan_in(layer: Layer, in_shape: tuple[int, ...]) -> int:
    if isinstance(layer, Dense):
        return int(np.count_nonzero(layer.weight, axis=1).max())
    if isinstance(layer, Conv):
        return int(conv_fan_in(layer, in_shape).max())
    if isinstance(layer, InputLayer) and layer.neuron is not None:
        return 1  # each input neuron receives the one external input line
    return 0


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
        input_axons: distinct presynaptic neurons that reach the layer.
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
    cores: int
    bound: str


_COLUMNS = ("neurons", "synapses", "connections", "synaptic_memory_bytes", "fan_in", "input_axons", "cores")
_HEADERS = ("neurons", "synapses", "connections", "syn. memory B", "fan-in", "in axons", "cores")


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
    - Cores of a layer = max(ceil(neurons / neurons per core),
      ceil(synaptic memory / memory per core), ceil(input axons / input axons per core)).
      The axon term assumes the inputs can be partitioned over the cores (true
      for conv tiles up to halos; optimistic for dense layers, where every core
      sees every input); a single neuron over the limit is a rule violation instead.
    - Fan-out axons per core and routing are not modelled.
    - Chips = max(1, ceil(cores / cores per chip), ceil(neurons / neurons per chip),
      ceil(synapses / synapses per chip)).

    Limits the target does not source are skipped.
    """
    limits, bits = target.limits, target.formats.weight_bits
    rows = []
    for layer, shape in zip(net.layers, in_shapes(net)):
        neurons = synapses = connections = memory = axons = 0
        fan_in = _layer_fan_in(layer, shape)
        if isinstance(layer, Dense):
            neurons = int(np.prod(layer.shape))
            synapses = connections = int(np.count_nonzero(layer.weight))
            memory = _dense_memory_bytes(layer.weight, bits, layer.delay is not None)
            axons = int(np.count_nonzero(np.any(layer.weight != 0, axis=0)))
        elif isinstance(layer, Conv):
            neurons = int(np.prod(layer.shape))
            synapses = int(layer.weight.size)
            connections = int(conv_fan_in(layer, shape).sum())
            memory = math.ceil(synapses * bits / 8)
            axons = conv_input_axons(layer, shape)
        elif isinstance(layer, InputLayer) and layer.neuron is not None:
            neurons = axons = int(np.prod(layer.shape))
        terms = {
            "neurons": _ceil_div(neurons, limits.neurons_per_core),
            "synaptic memory": _ceil_div(memory, limits.synaptic_memory_bytes_per_core),
            "input axons": _ceil_div(axons, limits.fan_in_axons_per_core),
        }
        cores = max(terms.values()) if neurons else 0
        if neurons and cores == 0:
            cores = 1  # no sourced per-core limit: at least the one core the layer lives on
        bound = max(terms, key=lambda k: terms[k]) if cores else "-"
        rows.append(LayerResources(layer.name, layer.kind, neurons, synapses, connections, memory,
                                   fan_in, axons, cores, bound))
    cores = sum(r.cores for r in rows)
    chip_terms = {
        "cores": _ceil_div(cores, limits.cores_per_chip),
        "neurons": _ceil_div(sum(r.neurons for r in rows), limits.neurons_per_chip),
        "synapses": _ceil_div(sum(r.synapses for r in rows), limits.synapses_per_chip),
    }
    chips = max(1, *chip_terms.values())
    chip_bound = max(chip_terms, key=lambda k: chip_terms[k]) if max(chip_terms.values()) else "minimum of one chip"
    notes = (
        "each layer with neurons gets cores of its own; flatten and a neuron-less input take none",
        f"dense synaptic memory: the cheaper of a dense format ({bits} bits per pair, zeros included) and a "
        f"sparse one ({bits}-bit weight + ceil(log2 N_out)-bit index per nonzero weight)",
        "conv kernels are shared over positions (population axons) and stored once: Cout*Cin/g*kH*kW weights",
        "cores per layer = max over neurons, synaptic memory and input axons per core; "
        "fan-out axons and routing are not modelled",
        "chips = max(1, cores / cores per chip, neurons / neurons per chip, synapses / synapses per chip), rounded up",
    )
    return ResourceTable(target.name, tuple(rows), cores, chips, chip_bound, notes)
