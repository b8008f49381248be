"""Does an integer network fit a hardware target?

The limit rules, reading only the IR and the target's data:

- **Limit rules.** :data:`RULES` is a tuple of small named functions
  ``rule(net, target) -> list[Violation]``. :func:`check_network` runs them all
  and raises :class:`~hw_targets.errors.TargetLimitError` whose message starts
  with the rule's name and the layer, gives the value and the limit, and says
  what to do. A rule whose limit the target does not source is skipped.
- The **resource estimate** lives in :mod:`export.resources`; the rules that
  need fan-in or synaptic memory use its per-kind counts.

Not checked, on purpose: the 24-bit ``u``/``v`` states of CUBA-LIF neurons. They
wrap (``u``) and saturate (``v``) legitimately, exactly as the simulator
reproduces, so no static bound is imposed and no warning is given.

Sigma-delta (graded-spike) networks get their own rules: the target must send
graded spikes at all (Loihi 1 does not), netx's message width must fit the
target's payload, ``spike_exp``/``state_exp`` must fit its exponent field, and
the threshold ``v_th_mant << E`` and the bias ``bias << E``
(``E = spike_exp + state_exp``) must fit the signed state. The CUBA rules of
decays, threshold mantissa and bias mantissa (Lava LIF registers) do not apply
to them. Their states are a different matter from the LIF's: Lava's fixed-point
sigma-delta model keeps int32 states and never wraps them to Loihi 2's 24 bits,
so a run whose ``sigma``/``act`` leave 24 bits would not match the chip:
:func:`find_state_violations` checks a simulation's states and messages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import numpy.typing as npt

from export import netx_dense
from export.netx_dense import dense_weight_fault, dense_weight_range
from export.resources import is_sourced, merge_sources, network_counts
from export.ir import Conv, CubaNeuron, Dense, Layer, Network, SigmaDeltaNeuron, sdnn_role
from hw_targets import constants as C
from hw_targets.base import Target
from hw_targets.errors import TargetLimitError


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
    """The layer's CUBA-LIF neuron; None without one (or with a sigma-delta one: its own rules)."""
    neuron = getattr(layer, "neuron", None)  # layers without neurons have no field
    return neuron if isinstance(neuron, CubaNeuron) else None


def _sdnn_of(layer: Layer) -> SigmaDeltaNeuron | None:
    """The layer's sigma-delta neuron, or None."""
    neuron = getattr(layer, "neuron", None)
    return neuron if isinstance(neuron, SigmaDeltaNeuron) else None


def _signed_range(bits: int) -> tuple[int, int]:
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


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


def _dense_weight_mantissa(layer: Layer, target: Target) -> str | None:
    assert isinstance(layer, Dense)
    bits = target.formats.weight_bits
    lo, hi, mode = dense_weight_range(layer.weight, bits)
    bad = _worst(layer.weight, lo, hi)
    if bad is None:
        return None
    return (f"weight {bad} does not fit the {bits}-bit mantissa of target {target.name} "
            f"(netx keeps {mode} dense weights in [{lo}, {hi}]); re-run QAT with weight_bits={bits}")


def _conv_weight_mantissa(layer: Layer, target: Target) -> str | None:
    assert isinstance(layer, Conv)
    fmt = target.formats
    bits, fix = fmt.weight_bits, f"re-run QAT with weight_bits={fmt.weight_bits}"
    if conv_weight_exponent(layer.weight, bits, fmt.weight_exp_min, fmt.weight_exp_max) is not None:
        return None
    w = layer.weight.astype(np.int64)
    biggest = int(w.flat[np.argmax(np.abs(w))])
    half = 1 << (bits - 1)
    # smallest exponent at which the largest magnitude fits the signed mantissa
    need = max(0, fmt.weight_exp_min)
    while not (-half <= biggest >> need <= half - 1):
        need += 1
    if need > fmt.weight_exp_max:
        return (f"weight {biggest} does not fit the {bits}-bit signed mantissa x 2^e "
                f"(e <= {fmt.weight_exp_max}) of target {target.name}; {fix}")
    odd = int(w[(w % (1 << need)) != 0].flat[0])
    return (f"weight {biggest} needs a per-layer exponent >= {need} for the {bits}-bit signed mantissa "
            f"of target {target.name}, but weight {odd} is not a multiple of 2^{need}; {fix}")


#: How each IR layer kind's weights are checked against the target's mantissa (None: no weights).
WEIGHT_MANTISSA: dict[str, Callable[[Layer, Target], "str | None"] | None] = {
    "input": None,  # slayer's scalar input transform: netx stores it and never applies it
    "dense": _dense_weight_mantissa,
    "conv": _conv_weight_mantissa,
    "flatten": None,
}


def weight_mantissa(net: Network, target: Target) -> list[Violation]:
    """Weights must be representable as the target's mantissa times 2**exponent.

    Dense: the range netx's loader keeps (see :func:`dense_weight_range`).
    Conv: a signed mantissa with one exponent per layer in the target's range.
    """
    out = []
    for i, layer in enumerate(net.layers):
        rule = WEIGHT_MANTISSA[layer.kind]
        message = None if rule is None else rule(layer, target)
        if message is not None:
            out.append(_violation("weight_mantissa", net, i, message))
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

    An input layer's scalar bias is not checked: netx stores it but never applies it. Sigma-delta
    layers are checked by :func:`sdnn_bias` instead (the mantissa is the LIF's register).
    """
    bits = target.formats.bias_mant_bits
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    out = []
    for i, layer in enumerate(net.layers):
        bias = getattr(layer, "bias", None) if layer.synaptic and _sdnn_of(layer) is None else None
        if bias is None:
            continue
        bad = _worst(np.asarray(bias), lo, hi)
        if bad is not None:
            out.append(_violation("bias_mantissa", net, i,
                                  f"bias {bad} does not fit the {bits}-bit signed bias mantissa of target "
                                  f"{target.name} ({lo}..{hi}); re-run QAT with the bias clamped to that range"))
    return out


def _merged(net: Network, index: int) -> str:
    """`` (a merge of k sources: k synapse processes)`` where the layer is one, else nothing."""
    k = merge_sources(net, index)
    return f" (a merge of {k} sources: {k} synapse processes into the same neurons)" if k > 1 else ""


def neuron_fan_in(net: Network, target: Target) -> list[Violation]:
    """One neuron's inputs must fit the input axons of one core (a neuron cannot be split).

    A merge's neurons receive every source's synapses: its fan-in is the sum over its sources.

    Skipped when the target does not source ``fan_in_axons_per_core``.
    """
    limit = target.limits.fan_in_axons_per_core
    if not is_sourced(limit):
        return []
    out = []
    for i, counts in enumerate(network_counts(net, target.formats.weight_bits)):
        fan_in = counts.fan_in
        if fan_in > limit.value:
            out.append(_violation("neuron_fan_in", net, i,
                                  f"a neuron has fan-in {fan_in}{_merged(net, i)}, above the {int(limit.value)} input axons per core "
                                  f"of target {target.name} ({limit.source}); one neuron cannot be split across "
                                  "cores: shrink the layer's input (pooling, stride, fewer channels) or prune weights"))
    return out


def neuron_synaptic_memory(net: Network, target: Target) -> list[Violation]:
    """One neuron's incoming synapses must fit the synaptic memory of one core.

    Counted at ``weight_bits`` per weight, without index overhead (a lower
    bound): a dense neuron's nonzero weights; for conv, the kernel of one output
    channel; a merge stores them once per source. Skipped when the target does not source the memory size.
    """
    limit = target.limits.synaptic_memory_bytes_per_core
    if not is_sourced(limit):
        return []
    bits = target.formats.weight_bits
    out = []
    for i, counts in enumerate(network_counts(net, bits)):
        weights = counts.kernel_weights
        if not weights:
            continue
        need = math.ceil(weights * bits / 8)
        if need > limit.value:
            out.append(_violation("neuron_synaptic_memory", net, i,
                                  f"one neuron's synapses need {need} bytes{_merged(net, i)}, above the {int(limit.value)} bytes of "
                                  f"synaptic memory per core of target {target.name} ({limit.source}); "
                                  "shrink the layer's fan-in or prune weights"))
    return out


# ----------------------------------------------------------------------------- sigma-delta rules


def _sdnn_layers(net: Network) -> list[tuple[int, Layer, SigmaDeltaNeuron]]:
    return [(i, layer, n) for i, layer in enumerate(net.layers) if (n := _sdnn_of(layer)) is not None]


def graded_spikes(net: Network, target: Target) -> list[Violation]:
    """A sigma-delta network needs a target with graded spikes; names the first sigma-delta layer."""
    layers = _sdnn_layers(net)
    if not layers or target.formats.max_message_bits > 0:
        return []
    i, layer, _ = layers[0]
    return [_violation("graded_spikes", net, i,
                       f"sigma-delta neurons send graded spikes, which target {target.name} does not have "
                       f"(binary spikes only); choose a target with graded spikes (loihi2) or train a "
                       "CUBA-LIF network")]


def message_bits(net: Network, target: Target) -> list[Violation]:
    """netx's graded-message width (``num_message_bits`` = 16) must fit the target's widest payload."""
    limit = target.formats.max_message_bits
    if limit <= 0 or C.SDNN_MESSAGE_BITS <= limit:
        return []  # no graded spikes at all: graded_spikes refuses the network once
    return [_violation("message_bits", net, i,
                       f"netx sends this layer's graded messages with {C.SDNN_MESSAGE_BITS}-bit payloads, above the "
                       f"{limit}-bit payload of target {target.name}; choose a target with wider graded spikes")
            for i, _, _ in _sdnn_layers(net)]


def message_exponents(net: Network, target: Target) -> list[Violation]:
    """``spike_exp`` and ``state_exp`` must fit the target's exponent field and be one pair per network."""
    if target.formats.max_message_bits <= 0:
        return []
    hi = target.formats.message_exp_max
    out = []
    first: tuple[int, int] | None = None
    for i, _, neuron in _sdnn_layers(net):
        pair = (int(neuron.spike_exp), int(neuron.state_exp))
        bad = [f"{name} {value}" for name, value in zip(("spike_exp", "state_exp"), pair) if not 0 <= value <= hi]
        if bad:
            out.append(_violation("message_exponents", net, i,
                                  f"{' and '.join(bad)} outside 0..{hi}, the exponents target {target.name} "
                                  f"stores; build the network with spike_exp in 0..{hi}"))
        elif first is not None and pair != first:
            out.append(_violation("message_exponents", net, i,
                                  f"(spike_exp, state_exp) = {pair} differs from the first sigma-delta layer's "
                                  f"{first}; netx builds one spike_exp per network: use one value throughout"))
        first = pair if first is None else first
    return out


def sdnn_threshold(net: Network, target: Target) -> list[Violation]:
    """The delta threshold ``v_th_mant << (spike_exp + state_exp)`` must fit the signed state."""
    bits = target.formats.state_bits
    _, hi = _signed_range(bits)
    out = []
    for i, _, neuron in _sdnn_layers(net):
        shift = int(neuron.spike_exp) + int(neuron.state_exp)
        vth = int(neuron.v_th_mant) << shift
        if vth > hi:
            out.append(_violation("sdnn_threshold", net, i,
                                  f"v_th_mant {int(neuron.v_th_mant)} << (spike_exp + state_exp = {shift}) = {vth} "
                                  f"does not fit the {bits}-bit signed state of target {target.name} (max {hi}); "
                                  f"lower v_th_mant to at most {hi >> shift} or lower spike_exp"))
    return out


def sdnn_bias(net: Network, target: Target) -> list[Violation]:
    """A sigma-delta layer's bias ``bias << (spike_exp + state_exp)`` must fit the signed state."""
    bits = target.formats.state_bits
    lo, hi = _signed_range(bits)
    out = []
    for i, layer, neuron in _sdnn_layers(net):
        bias = getattr(layer, "bias", None) if layer.synaptic else None
        if bias is None:
            continue
        shift = int(neuron.spike_exp) + int(neuron.state_exp)
        bad = _worst(np.asarray(bias, np.int64), lo >> shift, hi >> shift)
        if bad is not None:
            out.append(_violation("sdnn_bias", net, i,
                                  f"bias {bad} << (spike_exp + state_exp = {shift}) = {bad << shift} does not fit "
                                  f"the {bits}-bit signed state of target {target.name} ({lo}..{hi}); keep the bias "
                                  f"in {lo >> shift}..{hi >> shift} or lower spike_exp"))
    return out


#: Every rule :func:`check_network` applies, in order.
RULES: tuple[Rule, ...] = (
    layer_type,
    graded_spikes,
    message_bits,
    message_exponents,
    sdnn_threshold,
    sdnn_bias,
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
    _refuse(net, find_violations(net, target))


def _refuse(net: Network, violations: list[Violation]) -> None:
    """Raise the one-line error of :func:`check_network` when there are violations."""
    if not violations:
        return
    message = str(violations[0])
    if len(violations) > 1:
        rest = ", ".join(f"{v.rule} at '{net.layers[v.layer_index].name}'" for v in violations[1:6])
        more = "" if len(violations) <= 6 else ", ..."
        message += f" (and {len(violations) - 1} more: {rest}{more})"
    raise TargetLimitError(message)




# ----------------------------------------------------------------------------- sigma-delta run-time ranges


def _first_outside(values: npt.NDArray[Any], lo: int, hi: int) -> tuple[int, tuple[int, ...]] | None:
    """The value farthest outside [lo, hi] and its index (sample, step, *neuron), or None."""
    if not values.size:
        return None
    worst = _worst(values, lo, hi)
    if worst is None:
        return None
    index = tuple(int(k) for k in np.argwhere(values == worst)[0])
    return worst, index


def _feeds_synapse(net: Network, index: int) -> bool:
    """Whether layer ``index``'s output reaches a synapse (through reshapes) rather than the host."""
    for later in net.layers[index + 1:]:
        if later.synaptic:
            return True
        if later.kind != "flatten":
            return False
    return False


def find_state_violations(
    net: Network,
    target: Target,
    sigma: Sequence[npt.NDArray[Any] | None],
    act: Sequence[npt.NDArray[Any] | None],
    messages: Sequence[npt.NDArray[Any]],
) -> list[Violation]:
    """What a sigma-delta simulation held that the target's registers and payloads would not.

    Lava's fixed-point sigma-delta model computes in int32 and never wraps its states to the
    chip's width, so a run is only what the chip does while every state fits. Two rules, one
    violation per layer and quantity, naming the worst value and where (sample, step, neuron):

    - ``sdnn_state_range``: ``sigma`` and ``act`` must fit the target's signed ``state_bits``
      (24 on Loihi 2).
    - ``message_range``: a message delivered to a synapse must fit netx's signed
      ``SDNN_MESSAGE_BITS``-bit (16) payload (two's complement: -32768..32767). A layer whose
      messages feed no synapse (the readout) sends them to the host, and is not checked.

    CUBA networks return no violation (their states wrap and saturate as the chip's do).

    Args:
        net: the simulated network.
        target: the target whose widths apply.
        sigma, act: per layer (B, steps, *shape) int32 or None (``SimResult.u`` and ``.v`` of a run
            with ``record_state``).
        messages: per layer (B, steps, *shape) int32 messages (``SimResult.spikes``).
    """
    if net.family != "SDNN":
        return []
    lo, hi = _signed_range(target.formats.state_bits)
    msg_lo, msg_hi = _signed_range(C.SDNN_MESSAGE_BITS)
    out = []
    for i, layer in enumerate(net.layers):
        if _sdnn_of(layer) is None:
            continue
        role = sdnn_role(layer)
        for name, states in (("sigma", sigma), ("act", act)):
            arr = states[i] if i < len(states) else None
            found = None if arr is None else _first_outside(np.asarray(arr), lo, hi)
            if found is not None:
                out.append(_violation("sdnn_state_range", net, i,
                                      f"{name} reached {found[0]} at (sample, step, neuron) {found[1]} of the run, "
                                      f"outside the {target.formats.state_bits}-bit signed state of target "
                                      f"{target.name} ({lo}..{hi}); the chip would wrap where the simulation did not: "
                                      "scale the layer's input, weights or bias down"))
        found = _first_outside(np.asarray(messages[i]), msg_lo, msg_hi) if _feeds_synapse(net, i) else None
        if found is not None:
            out.append(_violation("message_range", net, i,
                                  f"{role} message {found[0]} at (sample, step, neuron) {found[1]} does not fit "
                                  f"netx's {C.SDNN_MESSAGE_BITS}-bit signed payload ({msg_lo}..{msg_hi}); "
                                  "raise the delta threshold or lower spike_exp"))
    return out


def check_states(
    net: Network,
    target: Target,
    sigma: Sequence[npt.NDArray[Any] | None],
    act: Sequence[npt.NDArray[Any] | None],
    messages: Sequence[npt.NDArray[Any]],
) -> None:
    """Refuse a sigma-delta run whose states or messages leave the target's widths
    (:func:`find_state_violations`).

    Raises:
        TargetLimitError: as :func:`check_network`'s: the first violation, the others named after it.
    """
    _refuse(net, find_state_violations(net, target, sigma, act, messages))
