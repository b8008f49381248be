"""Import a NIR graph (github.com/neuromorphs/NIR) as the integer IR, quantized for Loihi.

The inverse of :mod:`export.nir` for graphs it wrote (``dt = 1``: the same
integers come back), and a quantizer for graphs other frameworks wrote
(Sinabs, Norse, snnTorch).

Discretization (``dt`` in the graph's time unit, default :data:`NIR_DT`):
forward Euler with the current updated first, as ``export.nir`` documents::

    IF:       v += dt * r * I
    LIF:      v += dt/tau * (v_leak - v + r * I)
    CubaLIF:  I += dt/tau_syn * (w_in * S - I);   v += dt/tau_mem * (v_leak - v + r * I)
    spike when v > v_threshold, then v = v_reset

Loihi's CUBA-LIF (``export.ir.CubaNeuron``) is the same recurrence in
integers, so per layer::

    i_decay = round(4096 * dt/tau_syn)      (4096 for IF and LIF: u = a, no memory)
    v_decay = round(4096 * dt/tau_mem)      (dt/tau for LIF, 0 for IF)
    gain    = dt*r (IF), dt/tau*r (LIF), (dt/tau_syn*w_in) * (dt/tau_mem*r) (CubaLIF)
    weight  = round(S * gain * W)   as an 8-bit mantissa << exponent (S = the layer's scale)
    bias    = round(S * (dt/tau_mem * v_leak + gain * b_syn))   (Loihi adds bias to v)
    v_th_mant = round(S * v_threshold)

The scale ``S = m * 2**e`` puts the largest weight on the largest mantissa
(``m``, 127 for 8 bits) and the exponent ``e`` as high as thresholds, biases
and the 24-bit current allow (finer thresholds and decays). Weights that are
already integers and fit keep ``S = 1`` (a graph ``export.nir`` wrote comes
back exactly). A calibration may multiply ``m`` per layer (weights beyond the
mantissa are then clipped, and the report says how much).

Pooling: a ``SumPool2d``/``AvgPool2d`` followed by a neuron becomes a
depthwise conv (kernel of ones, or ``1/k²``; ``groups = C``). One followed by
a ``Conv2d`` or by ``Flatten`` + ``Affine``/``Linear`` is folded into that
synapse exactly (pooling and the next synapse are both linear), which needs no
neurons in between: binary spikes cannot carry a pooled sum of up to ``k²``.

What Loihi cannot do is refused naming the node: ``v_reset != 0``, negative
thresholds, parameters that vary within a channel (netx holds one value per
layer or channel), time constants below ``dt``, graphs that branch or merge,
``Conv1d`` (netx has no 1-D convolution), and ``LI``/``CubaLI``/``Integrator``
(no spikes, and netx's output port carries spikes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
    conv_output_hw,
    default_dense_neuron,
)
from export.netx_dense import dense_weight_range
from hw_targets import constants as C
from hw_targets.errors import ExportError, IRError

#: Default time step, in the graph's time unit (``export.nir`` writes one Loihi step per unit).
NIR_DT = 1.0
#: Loihi's u register wraps beyond this many weight units (2**23 LSBs, inputs enter << 6).
CURRENT_LIMIT = C.STATE_HALF >> C.ACT_SHIFT
#: Thresholds stay below this share of the v register, so that v saturates (Loihi has no other floor)
#: no nearer than HEADROOM thresholds below zero.
HEADROOM = 16
#: The largest bias mantissa the Lava LIF documents (s13).
BIAS_LIMIT = (1 << (C.BIAS_MANT_BITS - 1)) - 1
#: Relative tolerance when deciding that float parameters are integers.
INTEGER_TOL = 1e-6

FloatArray = npt.NDArray[np.float64]
LINEAR_TYPES = ("Affine", "Linear", "Conv2d", "Flatten", "SumPool2d", "AvgPool2d")
NEURON_TYPES = ("IF", "LIF", "CubaLIF")
SUPPORTED = ("Input", "Output", *LINEAR_TYPES, *NEURON_TYPES)
NO_SPIKES = ("LI", "CubaLI", "Integrator")


@dataclass(frozen=True)
class ImportOptions:
    """How a NIR graph becomes integers.

    Attributes:
        dt: the time step in the graph's time unit (the forward-Euler step).
        weight_bits: signed weight mantissa width (Loihi: 8).
        weight_exp_max: the largest per-layer weight exponent (Loihi 2: 7).
        scale_factors: per IR layer name, a factor on the mantissa scale (calibration; weights
            beyond the mantissa are clipped).
    """

    dt: float = NIR_DT
    weight_bits: int = C.WEIGHT_BITS
    weight_exp_max: int = 7
    scale_factors: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class LayerImport:
    """How one IR layer came out of the graph, and what quantization cost.

    Attributes:
        name: the IR layer name.
        kind: the IR layer kind.
        nodes: the NIR nodes it was made of, in chain order.
        neuron_node: the NIR neuron node whose spikes the layer's spikes stand for (None: flatten,
            or a flatten folded past a pooling).
        scale: weight units per NIR value unit (``S``; 1.0 when nothing was scaled).
        weight_exp: the per-layer weight exponent ``e``.
        weight_error: max |quantized - float| weight over max |float| weight.
        clipped: weights clipped to the mantissa (calibration only).
        threshold_error: max relative error of the thresholds.
        decay_error: max |round(d) - d| of both decays, in 1/4096.
        notes: what the mapping changed or approximated.
    """

    name: str
    kind: str
    nodes: tuple[str, ...]
    neuron_node: str | None = None
    scale: float = 1.0
    weight_exp: int = 0
    weight_error: float = 0.0
    clipped: int = 0
    threshold_error: float = 0.0
    decay_error: float = 0.0
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class NirImport:
    """The integer network of a NIR graph and the per-layer quantization report.

    Attributes:
        network: the IR network.
        layers: one entry per IR layer.
        dt: the time step used.
    """

    network: Network
    layers: tuple[LayerImport, ...]
    dt: float

    def format_table(self) -> str:
        """The per-layer report as a fixed-width table (one line per layer, then notes)."""
        head = (f"{'layer':<14}{'NIR nodes':<22}{'scale':>9}{'exp':>4}{'w err':>8}{'clip':>5}"
                f"{'vth err':>8}{'dec err':>8}")
        lines = [head]
        for li in self.layers:
            lines.append(f"{li.name:<14}{','.join(li.nodes)[:21]:<22}{li.scale:>9.3f}{li.weight_exp:>4}"
                         f"{li.weight_error:>8.2%}{li.clipped:>5}{li.threshold_error:>8.2%}{li.decay_error:>8.3f}")
        lines += [f"  {li.name}: {note}" for li in self.layers for note in li.notes]
        return "\n".join(lines)


# ----------------------------------------------------------------------------- the chain


def node_type(node: Any) -> str:
    """The NIR class name of a node (``Conv2d``, ``IF``, ...)."""
    return type(node).__name__


def _where(name: str, node: Any) -> str:
    return f"NIR node '{name}' ({node_type(node)})"


def graph_chain(graph: Any) -> list[tuple[str, Any]]:
    """The graph's nodes from its one Input to its one Output, following the edges.

    Raises:
        ExportError: the graph is not a chain (names the node that branches or merges, or lies off
            the chain), or has not exactly one Input and one Output.
    """
    nodes: dict[str, Any] = dict(graph.nodes)
    outs: dict[str, list[str]] = {name: [] for name in nodes}
    ins: dict[str, list[str]] = {name: [] for name in nodes}
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in nodes:
                raise ExportError(f"NIR edge ({src!r}, {dst!r}) names node {end!r}, which the graph does not hold")
        outs[src].append(dst)
        ins[dst].append(src)
    for name, node in nodes.items():
        if len(outs[name]) > 1:
            raise ExportError(f"{_where(name, node)} feeds {len(outs[name])} nodes ({', '.join(outs[name])}); "
                              "only chains import today (a graph IR with branches comes later)")
        if len(ins[name]) > 1:
            raise ExportError(f"{_where(name, node)} merges {len(ins[name])} inputs ({', '.join(ins[name])}); "
                              "only chains import today (a graph IR with merges comes later)")
    inputs = [n for n, node in nodes.items() if node_type(node) == "Input"]
    if len(inputs) != 1:
        raise ExportError(f"the NIR graph has {len(inputs)} Input nodes ({inputs}); expected exactly one")
    chain = [inputs[0]]
    while outs[chain[-1]]:
        chain.append(outs[chain[-1]][0])
        if len(chain) > len(nodes):
            raise ExportError(f"the NIR graph loops back through node {chain[-1]!r}")
    last = chain[-1]
    if node_type(nodes[last]) != "Output":
        raise ExportError(f"{_where(last, nodes[last])} ends the chain from '{chain[0]}'; expected an Output node")
    off = [n for n in nodes if n not in set(chain)]
    if off:
        raise ExportError(f"{_where(off[0], nodes[off[0]])} is not on the chain from '{chain[0]}' to '{last}'")
    return [(name, nodes[name]) for name in chain]


# ----------------------------------------------------------------------------- linear ops


@dataclass
class _Linear:
    """The pending synapse of a layer in float: a conv or a dense matrix, before the neuron's gain.

    Attributes:
        weight: conv (C_out, C_in/groups, kH, kW) or dense (N_out, N_in).
        bias: per output channel / neuron, in NIR input units.
        in_shape, out_shape: the shapes around it.
        flatten_from: for dense: the (C, H, W) a folded flatten read (None: already 1-D).
    """

    weight: FloatArray
    bias: FloatArray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    flatten_from: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def is_conv(self) -> bool:
        return self.weight.ndim == 4


def _pair(value: Any, where: str, name: str) -> tuple[int, int]:
    arr = np.atleast_1d(np.asarray(value)).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, 2)
    if arr.size != 2 or not np.all(arr == np.round(arr)):
        raise ExportError(f"{where}: field '{name}' is {value!r}; expected an integer or an (H, W) pair")
    return int(arr[0]), int(arr[1])


def _float(value: Any, where: str, name: str) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ExportError(f"{where}: field '{name}' is not numeric") from None
    if not np.all(np.isfinite(arr)):
        raise ExportError(f"{where}: field '{name}' holds NaN or inf")
    return arr


def _bias(node: Any, n: int, where: str) -> FloatArray:
    raw = getattr(node, "bias", None)
    if raw is None or np.asarray(raw).size == 0:
        return np.zeros(n)
    bias = _float(raw, where, "bias").reshape(-1)
    if bias.size == 1:
        bias = np.repeat(bias, n)
    if bias.size != n:
        raise ExportError(f"{where}: field 'bias' has {bias.size} values; expected {n}")
    return bias


def _conv(name: str, node: Any, shape: tuple[int, ...]) -> _Linear:
    where = _where(name, node)
    weight = _float(node.weight, where, "weight")
    if len(shape) != 3 or weight.ndim != 4:
        raise ExportError(f"{where}: expects (C, H, W) input and a 4-D weight; got input {shape}, "
                          f"weight {weight.shape}")
    groups = int(np.asarray(node.groups).reshape(-1)[0]) if np.asarray(node.groups).size else 1
    if groups < 1 or weight.shape[1] * groups != shape[0] or weight.shape[0] % groups:
        raise ExportError(f"{where}: field 'weight' {weight.shape} with groups={groups} expects "
                          f"{weight.shape[1] * groups} input channels, but {shape[0]} arrive")
    stride, padding, dilation = (_pair(getattr(node, f), where, f) for f in ("stride", "padding", "dilation"))
    if isinstance(node.padding, str):
        raise ExportError(f"{where}: string padding {node.padding!r} is not supported; give explicit pixels")
    hw = conv_output_hw(shape[1:], weight.shape[2:], stride, padding, dilation)  # type: ignore[arg-type]
    if min(hw) < 1:
        raise ExportError(f"{where}: the kernel {weight.shape[2:]} does not fit the input {shape}")
    return _Linear(weight, _bias(node, weight.shape[0], where), shape, (weight.shape[0], *hw), stride, padding,
                   dilation, groups)


def _dense(name: str, node: Any, shape: tuple[int, ...]) -> _Linear:
    where = _where(name, node)
    weight = _float(node.weight, where, "weight")
    if weight.ndim != 2:
        raise ExportError(f"{where}: field 'weight' has shape {weight.shape}; expected (N_out, N_in)")
    if len(shape) != 1 or weight.shape[1] != shape[0]:
        raise ExportError(f"{where}: field 'weight' {weight.shape} expects {weight.shape[1]} inputs, but "
                          f"{shape} arrives; insert a Flatten")
    return _Linear(weight, _bias(node, weight.shape[0], where), shape, (weight.shape[0],))


def _pool_geometry(name: str, node: Any, shape: tuple[int, ...]) -> tuple[int, FloatArray]:
    """``(k, kernel)`` of a square, non-overlapping, unpadded pooling (kernel: ones, or 1/k² for average)."""
    where = _where(name, node)
    kernel, stride, padding = (_pair(getattr(node, f), where, f) for f in ("kernel_size", "stride", "padding"))
    if len(shape) != 3:
        raise ExportError(f"{where}: expects (C, H, W) input, got {shape}")
    if kernel[0] != kernel[1] or stride != kernel or padding != (0, 0):
        raise ExportError(f"{where}: only square pooling with stride = kernel and no padding maps to Loihi "
                          f"(got kernel {kernel}, stride {stride}, padding {padding})")
    k = kernel[0]
    value = 1.0 / (k * k) if node_type(node) == "AvgPool2d" else 1.0
    return k, np.full((k, k), value)


def _pool_as_conv(name: str, node: Any, shape: tuple[int, ...]) -> _Linear:
    """A pooling as a depthwise conv (groups = C, one k x k kernel per channel)."""
    k, kernel = _pool_geometry(name, node, shape)
    c = shape[0]
    weight = np.broadcast_to(kernel, (c, 1, k, k)).copy()
    hw = conv_output_hw(shape[1:], (k, k), (k, k), (0, 0), (1, 1))  # type: ignore[arg-type]
    return _Linear(weight, np.zeros(c), shape, (c, *hw), (k, k), (0, 0), (1, 1), c,
                   notes=[f"{node_type(node)} '{name}' as a depthwise conv (groups={c})"])


def _fold_pool_into_conv(pool: tuple[str, Any], conv: _Linear, conv_name: str) -> _Linear:
    """Pooling (k, stride k) then a conv: one conv on the unpooled input, kernel k*K, stride k*s, padding k*p."""
    name, node = pool
    in_shape = _pooled_input(name, node, conv.in_shape)
    k, kernel = _pool_geometry(name, node, in_shape)
    if conv.dilation != (1, 1) or in_shape[1] % k or in_shape[2] % k:
        raise ExportError(f"{_where(name, node)}: cannot fold into the dilated conv '{conv_name}' or pool an input "
                          f"{in_shape} not divisible by {k}; put a neuron between them")
    weight = np.kron(conv.weight, kernel)  # (C_out, C_in/g, k*kH, k*kW)
    stride = (conv.stride[0] * k, conv.stride[1] * k)
    padding = (conv.padding[0] * k, conv.padding[1] * k)
    return _Linear(weight, conv.bias, in_shape, conv.out_shape, stride, padding, (1, 1), conv.groups,
                   notes=[f"{node_type(node)} '{name}' folded into conv '{conv_name}' (exact)"])


def _pooled_input(name: str, node: Any, pooled: tuple[int, ...]) -> tuple[int, ...]:
    declared = getattr(node, "input_type", {}).get("input")
    if declared is None or np.asarray(declared).size != 3:
        raise ExportError(f"{_where(name, node)}: its input shape is unknown (no input_type)")
    return tuple(int(s) for s in np.asarray(declared))


def _fold_pool_into_dense(pool: tuple[str, Any], dense: _Linear, dense_name: str, in_shape: tuple[int, ...]) -> _Linear:
    """Pooling then flatten then a dense synapse: the dense weights spread over each pooling window."""
    name, node = pool
    k, kernel = _pool_geometry(name, node, in_shape)
    c, h, w = in_shape
    hp, wp = h // k, w // k
    pooled = dense.weight.reshape(-1, c, hp, wp)
    full = np.zeros((pooled.shape[0], c, h, w))
    full[:, :, : hp * k, : wp * k] = np.kron(pooled, kernel)  # rows/columns the pooling drops get no weight
    return _Linear(full.reshape(pooled.shape[0], -1), dense.bias, (c * h * w,), dense.out_shape,
                   flatten_from=in_shape,
                   notes=[f"{node_type(node)} '{name}' folded into dense '{dense_name}' (exact)"])


# ----------------------------------------------------------------------------- neurons


@dataclass
class _NeuronMap:
    """A NIR neuron in Loihi terms, in float, one value per neuron (the layer's shape)."""

    i_decay: FloatArray
    v_decay: FloatArray
    gain: FloatArray
    v_bias: FloatArray
    threshold: FloatArray
    notes: list[str] = field(default_factory=list)


def _per_neuron(node: Any, attr: str, shape: tuple[int, ...], where: str) -> FloatArray:
    value = _float(getattr(node, attr), where, attr)
    try:
        return np.broadcast_to(value, shape).astype(np.float64)
    except ValueError:
        raise ExportError(f"{where}: field '{attr}' has shape {value.shape}; the layer has shape {shape}") from None


def _decay(tau: FloatArray, dt: float, where: str, attr: str) -> FloatArray:
    frac = dt / tau
    if np.any(tau <= 0) or np.any(frac > 1.0 + INTEGER_TOL):
        raise ExportError(f"{where}: field '{attr}' has a time constant below dt={dt} (min {tau.min():g}); "
                          "forward Euler is unstable there; import with a smaller --dt")
    return np.asarray(np.minimum(frac, 1.0) * C.DECAY_UNITY, dtype=np.float64)


def map_neuron(name: str, node: Any, shape: tuple[int, ...], dt: float) -> _NeuronMap:
    """Loihi decays, input gain, voltage bias and threshold of a NIR IF / LIF / CubaLIF (module docstring).

    Raises:
        ExportError: ``v_reset != 0``, negative thresholds, time constants below ``dt``, bad shapes.
    """
    where = _where(name, node)
    kind = node_type(node)

    def get(attr: str) -> FloatArray:
        return _per_neuron(node, attr, shape, where)

    ones = np.ones(shape)
    if kind == "IF":
        m = _NeuronMap(ones * C.DECAY_UNITY, ones * 0.0, dt * get("r"), ones * 0.0, get("v_threshold"))
    elif kind == "LIF":
        tau = get("tau")
        m = _NeuronMap(ones * C.DECAY_UNITY, _decay(tau, dt, where, "tau"), dt / tau * get("r"),
                       dt / tau * get("v_leak"), get("v_threshold"))
    else:
        tau_syn, tau_mem = get("tau_syn"), get("tau_mem")
        m = _NeuronMap(_decay(tau_syn, dt, where, "tau_syn"), _decay(tau_mem, dt, where, "tau_mem"),
                       dt / tau_syn * get("w_in") * dt / tau_mem * get("r"), dt / tau_mem * get("v_leak"),
                       get("v_threshold"))
    reset = getattr(node, "v_reset", None)
    if reset is not None and np.any(_per_neuron(node, "v_reset", shape, where) != 0):
        raise ExportError(f"{where}: field 'v_reset' is not 0; Loihi resets v to 0 after a spike")
    if np.any(m.threshold < 0):
        raise ExportError(f"{where}: field 'v_threshold' is negative; Loihi's threshold mantissa is unsigned")
    if kind == "IF":
        m.notes.append(f"IF '{name}': reset to 0 as NIR states; v has no lower bound beyond 24-bit saturation")
    return m


def _channel_values(arr: FloatArray, where: str, attr: str, tol: float = INTEGER_TOL) -> FloatArray:
    """A per-neuron array as a scalar (0-d) or per-channel (C,) one, if it holds no more than that.

    Raises:
        ExportError: values differ within a channel (netx holds one per layer or per channel).
    """
    flat = arr.reshape(arr.shape[0], -1)  # (C, H*W) for conv; (N, 1) for dense: a neuron is a channel
    spread = np.abs(flat - flat[:, :1]).max() if flat.size else 0.0
    if spread > tol * max(1.0, float(np.abs(flat).max())):
        raise ExportError(f"{where}: field '{attr}' varies within a channel; netx holds one value per layer "
                          "or per channel")
    per = flat[:, 0]
    if np.all(np.abs(per - per[0]) <= tol * max(1.0, abs(float(per[0])))):
        return np.asarray(per[0])
    return per


# ----------------------------------------------------------------------------- quantization


def _is_integral(arr: FloatArray) -> bool:
    return bool(np.all(np.abs(arr - np.rint(arr)) <= INTEGER_TOL * np.maximum(1.0, np.abs(arr))))


@dataclass
class _Quantized:
    weight: npt.NDArray[np.int32]
    bias: npt.NDArray[np.int32] | None
    v_th_mant: npt.NDArray[np.int32]
    scale: float
    exp: int
    weight_error: float
    clipped: int
    threshold_error: float


def _fits_as_is(weight: FloatArray, is_conv: bool, opts: ImportOptions) -> bool:
    """Whether integer weights already fit: a signed mantissa << a per-layer exponent (conv), netx's
    mixed range (dense)."""
    w = np.rint(weight).astype(np.int64)
    if not is_conv:
        lo, hi, _ = dense_weight_range(w, opts.weight_bits)
        return bool(w.size == 0 or (w.min() >= lo and w.max() <= hi))
    half = 1 << (opts.weight_bits - 1)
    for e in range(opts.weight_exp_max + 1):
        if np.any(w % (1 << e)):
            return False
        if w.size == 0 or (int((w >> e).min()) >= -half and int((w >> e).max()) < half):
            return True
    return False


def _exponent(mant: npt.NDArray[np.int64], thr: FloatArray, bias: FloatArray, scale: float, is_conv: bool,
              opts: ImportOptions) -> int:
    """The largest weight exponent at which thresholds, biases, the current and netx's dense range fit."""
    fan = np.abs(mant).reshape(mant.shape[0], -1).sum(axis=1).max() if mant.size else 0
    best = 0
    thr_max, bias_max = float(np.max(thr, initial=0.0)), float(np.max(np.abs(bias), initial=0.0))
    for e in range(1, opts.weight_exp_max + 1):
        s = scale * (1 << e)
        if (thr_max * s * HEADROOM > C.VTH_MANT_MAX or bias_max * s > BIAS_LIMIT or int(fan) << e >= CURRENT_LIMIT
                or (not is_conv and int(np.abs(mant).max(initial=0)) << e > C.NETX_MIXED_WEIGHT_MAX)):
            break
        best = e
    return best


def quantize(weight: FloatArray, bias: FloatArray, threshold: FloatArray, is_conv: bool, opts: ImportOptions,
             factor: float = 1.0) -> _Quantized:
    """Integer weights (mantissa << exponent), bias and thresholds of one layer (module docstring).

    Args:
        weight: float weights with the neuron's gain folded in (rows: output channels / neurons).
        bias: float voltage bias per output channel / neuron.
        threshold: float thresholds, scalar or per channel.
        is_conv: conv (signed mantissa, any exponent) or dense (netx's mixed range).
        opts: the import options.
        factor: calibration factor on the mantissa scale.
    """
    wmax = float(np.abs(weight).max(initial=0.0))
    integral = _is_integral(weight) and _is_integral(threshold) and _is_integral(bias)
    if integral and factor == 1.0 and _fits_as_is(weight, is_conv, opts):
        scale, exp = 1.0, 0
        mant = np.rint(weight).astype(np.int64)
    else:
        mant_max = (1 << (opts.weight_bits - 1)) - 1
        scale = (mant_max / wmax if wmax > 0 else 1.0) * factor
        mant = np.clip(np.rint(weight * scale), -mant_max, mant_max).astype(np.int64)
        exp = _exponent(mant, threshold, bias, scale, is_conv, opts)
    total = scale * (1 << exp)
    q_weight = mant << exp
    q_thr = np.clip(np.rint(threshold * total), 0, C.VTH_MANT_IR_MAX)
    q_bias = np.clip(np.rint(bias * total), C.BIAS_STORE_MIN, C.BIAS_STORE_MAX)
    clipped = int(np.sum(np.abs(np.rint(weight * scale)) > np.abs(mant)))
    w_err = float(np.abs(q_weight / total - weight).max(initial=0.0)) / wmax if wmax > 0 else 0.0
    t_err = float(np.max(np.abs(q_thr / total - threshold) / np.maximum(np.abs(threshold), 1e-12), initial=0.0))
    return _Quantized(q_weight.astype(np.int32), q_bias.astype(np.int32) if np.any(q_bias) else None,
                      q_thr.astype(np.int32), total, exp, w_err, clipped, t_err)


# ----------------------------------------------------------------------------- layers


@dataclass
class _Walk:
    """The state of the walk along the chain."""

    graph_meta: dict[str, Any]
    opts: ImportOptions
    graph_nodes: dict[str, Any] = field(default_factory=dict)
    shape: tuple[int, ...] = ()
    pending: list[tuple[str, Any]] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    reports: list[LayerImport] = field(default_factory=list)
    input_name: str = "input"

    @property
    def ours(self) -> bool:
        """Whether ``export.nir`` wrote the graph (its node names carry the layer names)."""
        return str(self.graph_meta.get("producer", "")).startswith("neuromoco")


def _layer_name(walk: _Walk, node_name: str, kind: str) -> str:
    base = node_name
    for suffix in (".neuron", ".synapse"):
        if base.endswith(suffix):
            base = base[: -len(suffix)]
    return base if walk.ours else f"{kind}_{base}"


def _unique(walk: _Walk, name: str) -> str:
    taken = {layer.name for layer in walk.layers}
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    return out


def _pending_linear(walk: _Walk) -> tuple[_Linear | None, list[str]]:
    """The pending synapse nodes as one float synapse (pool folding, flatten), plus the node names.

    Adds an IR flatten layer when a flatten precedes a dense synapse.
    """
    pend = walk.pending
    names = [n for n, _ in pend]
    types = [node_type(node) for _, node in pend]
    shape = walk.shape
    if not pend:
        return None, names
    pools = ("SumPool2d", "AvgPool2d")
    if types == ["Conv2d"]:
        return _conv(*pend[0], shape), names
    if len(types) == 1 and types[0] in pools:
        return _pool_as_conv(*pend[0], shape), names
    if len(types) == 2 and types[0] in pools and types[1] == "Conv2d":
        pooled = _pool_as_conv(*pend[0], shape).out_shape
        return _fold_pool_into_conv(pend[0], _conv(*pend[1], pooled), pend[1][0]), names
    if types in (["Affine"], ["Linear"]):
        return _dense(*pend[0], shape), names
    if len(types) == 2 and types[0] == "Flatten" and types[1] in ("Affine", "Linear"):
        _flatten_layer(walk, pend[0], shape)
        return _dense(*pend[1], (int(np.prod(shape)),)), names[1:]
    if len(types) == 3 and types[0] in pools and types[1] == "Flatten" and types[2] in ("Affine", "Linear"):
        pooled = _pool_as_conv(*pend[0], shape).out_shape
        dense = _fold_pool_into_dense(pend[0], _dense(*pend[2], (int(np.prod(pooled)),)), pend[2][0], shape)
        _flatten_layer(walk, pend[1], shape)
        return dense, names
    where = _where(*pend[-1])
    raise ExportError(f"{where}: the synapse chain {' -> '.join(f'{n} ({t})' for n, t in zip(names, types))} "
                      "has no mapping to one Loihi synapse; put a neuron between them")


def _flatten_layer(walk: _Walk, node: tuple[str, Any], shape: tuple[int, ...]) -> None:
    name, nir_node = node
    if len(shape) != 3:
        return  # a flatten of a 1-D tensor changes nothing
    start = int(np.asarray(getattr(nir_node, "start_dim", 0)).reshape(-1)[0]) if np.asarray(
        getattr(nir_node, "start_dim", 0)).size else 0
    if start not in (0, -3):
        raise ExportError(f"{_where(name, nir_node)}: start_dim={start} keeps axes of the (C, H, W) input; "
                          "only a full flatten maps to Loihi")
    layer_name = _unique(walk, _layer_name(walk, name, "flatten"))
    walk.layers.append(Flatten(layer_name, (int(np.prod(shape)),)))
    walk.reports.append(LayerImport(layer_name, "flatten", (name,)))
    walk.shape = (int(np.prod(shape)),)


def _neuron_layer(walk: _Walk, name: str, node: Any) -> None:
    """Emit the IR layer of the pending synapse and this neuron."""
    lin, syn_names = _pending_linear(walk)
    walk.pending = []
    shape = lin.out_shape if lin is not None else walk.shape
    m = map_neuron(name, node, shape, walk.opts.dt)
    where = _where(name, node)
    meta = getattr(node, "metadata", {}) if walk.ours else {}
    i_decay = _as_written(_channel_values(m.i_decay, where, "tau_syn"), meta.get("i_decay"), shape[0])
    v_decay = _as_written(_channel_values(m.v_decay, where, "tau_mem" if node_type(node) == "CubaLIF" else "tau"),
                          meta.get("v_decay"), shape[0])
    threshold = _as_written(_channel_values(m.threshold, where, "v_threshold"), meta.get("v_th_mant"), shape[0])
    decay_err = max(float(np.abs(np.rint(d) - d).max(initial=0.0)) for d in (i_decay, v_decay))
    neuron = CubaNeuron(np.rint(i_decay).astype(np.int32), np.rint(v_decay).astype(np.int32), np.int32(0))
    notes = [*(lin.notes if lin is not None else []), *m.notes]
    if lin is None:
        _input_neuron_layer(walk, name, node, m, neuron, threshold, notes, decay_err)
        return
    gain = _channel_values(m.gain, where, "gain (r, w_in, tau)") if lin.is_conv else m.gain.reshape(-1)
    gain_rows = np.broadcast_to(gain, (lin.weight.shape[0],)).astype(np.float64)
    weight = lin.weight * gain_rows.reshape(-1, *([1] * (lin.weight.ndim - 1)))
    syn_bias = lin.bias * gain_rows
    if np.any(lin.bias) and np.any(np.asarray(i_decay) < C.DECAY_UNITY):
        notes.append("synapse bias enters v at its steady-state value (Loihi adds biases to v, not to the current)")
    bias = _layer_bias(syn_bias, m.v_bias, lin.is_conv)
    if meta and not lin.is_conv and np.size(meta.get("bias_mant", 0)) == 1 \
            and np.allclose(bias, bias.flat[0], rtol=INTEGER_TOL, atol=INTEGER_TOL):
        bias = np.asarray(bias.flat[0])  # export.nir wrote a scalar bias
    kind = "conv" if lin.is_conv else "dense"
    layer_name = _unique(walk, _layer_name(walk, name, kind))
    factor = dict(walk.opts.scale_factors).get(layer_name, 1.0)
    q = quantize(weight, bias, threshold, lin.is_conv, walk.opts, factor)
    neuron = CubaNeuron(neuron.i_decay, neuron.v_decay, q.v_th_mant)
    layer = _make_layer(walk, layer_name, lin, q, neuron, syn_names)
    walk.layers.append(layer)
    walk.reports.append(LayerImport(layer_name, kind, (*syn_names, name), name, q.scale, q.exp, q.weight_error,
                                    q.clipped, q.threshold_error, decay_err, tuple(notes)))
    walk.shape = layer.out_shape


def _as_written(values: FloatArray, written: Any, channels: int) -> FloatArray:
    """A scalar that ``export.nir`` wrote as one value per channel (its metadata says so) back per channel."""
    if written is not None and values.ndim == 0 and channels > 1 and np.size(written) == channels:
        return np.full(channels, float(values))
    return values


def _layer_bias(syn_bias: FloatArray, v_bias: FloatArray, is_conv: bool) -> FloatArray:
    """Synapse bias (per output channel) plus leak bias (per neuron): per channel if it can be, else per neuron."""
    if not is_conv:
        return syn_bias + v_bias.reshape(-1)
    total = syn_bias.reshape(-1, 1, 1) + v_bias  # (C, H, W)
    flat = total.reshape(total.shape[0], -1)
    return flat[:, 0].copy() if np.allclose(flat, flat[:, :1], rtol=INTEGER_TOL, atol=INTEGER_TOL) else total


def _grouped(weight: npt.NDArray[np.int32], groups: int) -> npt.NDArray[np.int32] | None:
    """Dense-channel conv weights as ``groups`` grouped ones, if every weight outside the groups is 0."""
    c_out, c_in = weight.shape[:2]
    if groups < 2 or c_out % groups or c_in % groups:
        return None
    out_g, in_g = c_out // groups, c_in // groups
    mask = np.zeros((c_out, c_in), dtype=bool)
    for g in range(groups):
        mask[g * out_g : (g + 1) * out_g, g * in_g : (g + 1) * in_g] = True
    if np.any(weight[~mask]):
        return None
    rows = [weight[o, (o // out_g) * in_g : (o // out_g + 1) * in_g] for o in range(c_out)]
    out: npt.NDArray[np.int32] = np.stack(rows).astype(np.int32)
    return out


def _make_layer(walk: _Walk, name: str, lin: _Linear, q: _Quantized, neuron: CubaNeuron, syn_names: list[str]) -> Layer:
    if not lin.is_conv:
        if neuron_is_default(neuron) and walk.ours:
            return Dense(name, lin.out_shape, q.weight, q.bias, None)
        return Dense(name, lin.out_shape, q.weight, q.bias, neuron)
    weight, groups = q.weight, lin.groups
    meta_groups = _meta_groups(walk, syn_names)
    if groups == 1 and meta_groups > 1:
        regrouped = _grouped(weight, meta_groups)
        if regrouped is not None:
            weight, groups = regrouped, meta_groups
    return Conv(name, lin.out_shape, weight, lin.stride, lin.padding, lin.dilation, groups, q.bias, neuron)


def _meta_groups(walk: _Walk, syn_names: list[str]) -> int:
    """``groups`` that ``export.nir`` kept in a conv node's metadata (it writes grouped convs ungrouped)."""
    if not walk.ours or not syn_names:
        return 1
    meta = walk.graph_nodes.get(syn_names[-1])
    value = getattr(meta, "metadata", {}).get("groups", 1) if meta is not None else 1
    return int(np.asarray(value).reshape(-1)[0])


def neuron_is_default(neuron: CubaNeuron) -> bool:
    """Whether ``neuron`` has the parameters netx gives a dense layer stored without ``neuron/``."""
    d = default_dense_neuron()
    return all(np.array_equal(getattr(neuron, f), getattr(d, f)) for f in ("i_decay", "v_decay", "v_th_mant"))


def _input_neuron_layer(walk: _Walk, name: str, node: Any, m: _NeuronMap, neuron: CubaNeuron,
                        threshold: FloatArray, notes: list[str], decay_err: float) -> None:
    """A neuron straight after the Input: an IR input layer with a neuron (input values enter its current)."""
    where = _where(name, node)
    if walk.layers:
        raise ExportError(f"{where}: two neurons in a row with no synapse between them")
    gain = _channel_values(m.gain, where, "gain (r, w_in, tau)")
    if np.any(np.abs(gain - 1.0) > INTEGER_TOL) or np.any(m.v_bias):
        raise ExportError(f"{where}: an input neuron must take its input with gain 1 and no leak bias "
                          "(Loihi feeds input values straight into its current)")
    if not _is_integral(threshold):
        raise ExportError(f"{where}: an input neuron's threshold must be an integer (its input is not scaled)")
    layer_name = _layer_name(walk, name, "input")
    neuron = CubaNeuron(neuron.i_decay, neuron.v_decay, np.rint(threshold).astype(np.int32),
                        kind=_meta_kind(node))
    walk.layers.append(InputLayer(layer_name, walk.shape, neuron))
    walk.reports.append(LayerImport(layer_name, "input", (name,), name, decay_error=decay_err, notes=tuple(notes)))


def _meta_kind(node: Any) -> str:
    kind = str(getattr(node, "metadata", {}).get("neuron_kind", "CUBA"))
    return kind if kind in ("CUBA", "LOIHI") else "CUBA"


# ----------------------------------------------------------------------------- the walk


def _input_shape(name: str, node: Any) -> tuple[int, ...]:
    raw = getattr(node, "input_type", {}).get("input")
    shape = tuple(int(s) for s in np.asarray(raw).reshape(-1)) if raw is not None else ()
    if len(shape) in (2, 4) and shape[0] == 1:
        shape = shape[1:]  # exporters that trace a batch of one (Norse, snnTorch) write it into the Input
    if len(shape) not in (1, 3) or min(shape, default=0) < 1:
        raise ExportError(f"{_where(name, node)}: input shape {shape} must be (N,) or (C, H, W); 1-D signals "
                          "(C, L) have no Loihi mapping here")
    return shape


def _step(walk: _Walk, name: str, node: Any) -> None:
    kind = node_type(node)
    if kind in LINEAR_TYPES:
        walk.pending.append((name, node))
    elif kind in NEURON_TYPES:
        _neuron_layer(walk, name, node)
    elif kind == "Conv1d":
        raise ExportError(f"{_where(name, node)}: netx has no 1-D convolution and the IR's shapes are (C, H, W) "
                          "or (N,); write it as a Conv2d over (C, 1, L) to deploy it")
    elif kind in NO_SPIKES:
        raise ExportError(f"{_where(name, node)}: has no spikes, and the netx output port carries spikes; "
                          "end the graph in an IF, LIF or CubaLIF readout")
    else:
        raise ExportError(f"{_where(name, node)}: node type {kind} is not supported "
                          f"(supported: {', '.join(SUPPORTED)})")


def _finish(walk: _Walk) -> None:
    """What follows the last neuron: nothing, or a flatten."""
    types = [node_type(node) for _, node in walk.pending]
    if types and all(t == "Flatten" for t in types):
        _flatten_layer(walk, walk.pending[0], walk.shape)
    elif types:
        name, node = walk.pending[-1]
        raise ExportError(f"{_where(name, node)}: a synapse with no neuron after it before the Output; Loihi "
                          "layers end in neurons, so append a spiking neuron (IF, LIF, CubaLIF)")


def import_graph(graph: Any, options: ImportOptions | None = None) -> NirImport:
    """Quantize a NIR graph into the integer IR (mapping in the module docstring).

    Args:
        graph: a ``nir.NIRGraph`` (e.g. from ``nir.read``).
        options: time step, weight format, calibration factors.

    Returns:
        The network and the per-layer quantization report.

    Raises:
        ExportError: a node or graph Loihi cannot run, naming the node and the field.
    """
    opts = options or ImportOptions()
    if not opts.dt > 0:
        raise ExportError(f"dt must be positive, got {opts.dt}")
    chain = graph_chain(graph)
    walk = _Walk(dict(getattr(graph, "metadata", {}) or {}), opts, dict(graph.nodes))
    walk.input_name, input_node = chain[0]
    walk.shape = _input_shape(*chain[0])
    for name, node in chain[1:-1]:
        _step(walk, name, node)
    _finish(walk)
    if not walk.layers:
        raise ExportError("the NIR graph holds no neurons between its Input and Output; nothing to deploy")
    out_type = getattr(chain[-1][1], "output_type", {}).get("output")
    if out_type is not None and np.asarray(out_type).size and int(np.prod(out_type)) != int(np.prod(walk.shape)):
        raise ExportError(f"{_where(*chain[-1])}: field 'output_type' is {tuple(np.asarray(out_type))}, but the "
                          f"chain delivers {walk.shape}")
    input_shape = _input_shape(*chain[0])
    try:
        net = Network(tuple(walk.layers), input_shape)
    except IRError as exc:
        raise ExportError(f"the imported network is inconsistent: {exc}") from None
    return NirImport(net, tuple(walk.reports), opts.dt)


#: The NIR node types the importer maps, to what (for documentation and tests).
NODE_MAPPING: dict[str, str] = {
    "Input": "the network's input shape",
    "Output": "the end of the chain",
    "Affine": "dense synapse (bias into v)",
    "Linear": "dense synapse",
    "Conv2d": "conv synapse",
    "Flatten": "flatten layer (or folded)",
    "SumPool2d": "depthwise conv (ones), or folded into the next synapse",
    "AvgPool2d": "depthwise conv (1/k^2), or folded into the next synapse",
    "IF": "CUBA-LIF with i_decay=4096, v_decay=0",
    "LIF": "CUBA-LIF with i_decay=4096",
    "CubaLIF": "CUBA-LIF",
}
