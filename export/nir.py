"""Write the integer network as a NIR graph (github.com/neuromorphs/NIR, package ``nir``).

NIR describes continuous-time primitives; this module writes the quantized
network with parameters derived from its integers, so a NIR simulator that
steps the equations below with ``dt = 1`` reproduces the float limit of
Loihi's fixed-point CUBA-LIF dynamics.

Unit system: one time unit is one Loihi time step (``dt = NIR_DT = 1``) and one
value unit is one integer weight step, i.e. ``2**6`` LSBs of Loihi's ``u`` and
``v`` registers (inputs enter as ``a << 6``, biases as ``b << 6`` and the
threshold is compared as ``v_th_mant << 6``, so dividing every state by
``2**6`` leaves integer weights, biases and thresholds).

Per IR layer the graph holds, in layer order from ``input`` to ``output`` (a residual
graph's merge is one edge per source into the layer's synapse node: NIR sums a
node's inputs, and the synapse is linear, so this is the SEW ``ADD``):

* ``Dense``: ``{name}.synapse`` (``nir.Linear``, the integer weights as float64)
  then ``{name}.neuron`` (``nir.CubaLIF``). There is no bias in the synapse:
  Loihi adds the bias to ``v``, not to the current, so it becomes the neuron's
  ``v_leak``.
* ``Conv``: ``{name}.synapse`` (``nir.Conv2d``, zero bias, ``input_shape``
  set) then ``{name}.neuron``. Grouped convolutions are written as the
  equivalent dense-channel convolution (zeros outside the groups) because NIR
  1.0's type inference takes the input channel count from ``weight.shape[1]``;
  the original ``groups`` is kept in the node's metadata.
* ``Flatten``: ``{name}`` (``nir.Flatten``, ``start_dim=0``: NIR shapes carry no
  batch or time axis).
* ``InputLayer`` with a neuron: ``{name}.neuron`` right after ``input`` (input
  values enter its current directly, as in Lava).

CubaLIF parameters from the integers (``d/4096`` is the fraction lost per step):

====================  ============================================  ==============================
NIR field             value                                         why
====================  ============================================  ==============================
``tau_syn``           ``4096 / i_decay`` (``TAU_NO_DECAY`` if 0)    ``1 - dt/tau_syn = 1 - i_decay/4096``
``w_in``              ``tau_syn``                                   ``(dt/tau_syn) * w_in = 1``: ``I += a``
``tau_mem``           ``4096 / v_decay`` (``TAU_NO_DECAY`` if 0)    ``1 - dt/tau_mem = 1 - v_decay/4096``
``r``                 ``tau_mem``                                   ``(dt/tau_mem) * r = 1``: ``v += I``
``v_leak``            ``bias_mant * tau_mem``                       ``(dt/tau_mem) * v_leak = bias``
``v_threshold``       ``v_th_mant``                                 compared as ``v > v_threshold``
``v_reset``           ``0``                                         Loihi resets ``v`` to 0
====================  ============================================  ==============================

Scalar and per-channel integers are broadcast to one value per neuron, as
``nir.CubaLIF`` requires. A zero decay means no leak (infinite time
constant); it is written as ``TAU_NO_DECAY = 2**60`` steps, not ``inf``, so that
simulators dividing by ``tau`` stay finite (``inf * 0`` would be NaN). At that
size ``1 - dt/tau`` rounds to exactly 1 in float32 and float64, and ``dt/tau``
times ``w_in``, ``r`` and ``v_leak`` (powers of two apart) is exactly 1, 1 and
the bias, so a zero decay is reproduced exactly, not approximately.

Discretized with forward Euler at ``dt = 1`` and the current updated first, as
Loihi does, the CubaLIF equations become exactly Loihi's update without its
integer effects::

    I[t] = (1 - i_decay/4096) * I[t-1] + S[t]
    v[t] = (1 - v_decay/4096) * v[t-1] + I[t] + bias
    z[t] = v[t] > v_th_mant;   v[t] <- 0 where z[t]

What NIR cannot express is recorded in each node's ``metadata`` (NIR asks
backends not to rely on metadata) and listed here:

* one step of synaptic delay per synapse layer (``synaptic_delay_steps``; 0
  for an input neuron), and the bias-only first step it implies;
* the decays truncate toward zero at ``2**-6`` units every step
  (``decay_rounding``);
* ``u`` wraps and ``v`` saturates at 24 bits (``state_bits``,
  ``current_overflow``, ``voltage_overflow``); conv sums wrap at 24 bits
  (``accumulator_bits`` on ``Conv2d`` nodes);
* the integer parameters themselves (``i_decay``, ``v_decay``, ``v_th_mant``,
  ``bias_mant``), so the exact network can be recovered without rounding.

Dense weights are written as the IR holds them; Lava's netx loader quirks for
weights outside its 8-bit range or with no positive entry (reference section
6.1) are not reproduced. Per-synapse delays and non-square conv kernels (whose
output width NIR 1.0 derives from the kernel height) are refused.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import numpy.typing as npt

from export.ir import (
    IR_FORMAT_VERSION,
    Conv,
    CubaNeuron,
    Neuron,
    Dense,
    InputLayer,
    IntArray,
    Layer,
    Network,
    default_dense_neuron,
)
from hw_targets import constants as C
from hw_targets.errors import ExportError, MissingDependencyError

if TYPE_CHECKING:
    import nir

#: One NIR time unit is one Loihi time step.
NIR_DT = 1.0
#: Time constant written for a zero decay (no leak): ``1 - 1/2**60`` is exactly 1.0 in float32 and float64.
TAU_NO_DECAY = float(2**60)
#: Names of the graph's entry and exit nodes.
INPUT_NODE = "input"
OUTPUT_NODE = "output"

FloatArray = npt.NDArray[np.float64]


def _import_nir() -> Any:
    try:
        import nir
    except ImportError:
        raise MissingDependencyError(
            "NIR export needs the package 'nir'; install it with: pip install 'neuromoco[export]'"
        ) from None
    return nir


def _per_neuron(value: Any, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """A scalar, per-channel (C,) or per-neuron (C, H, W) integer parameter as one value per neuron."""
    arr = np.asarray(value, dtype=np.int64)
    if arr.ndim == 1 and len(shape) == 3:
        arr = arr.reshape(-1, 1, 1)  # per channel, broadcast over H and W
    return np.broadcast_to(arr, shape).copy()


def _tau(decay: npt.NDArray[np.int64]) -> FloatArray:
    """Time constant in steps of a Loihi decay (``decay/4096`` lost per step)."""
    safe = np.maximum(decay, 1).astype(np.float64)
    return np.where(decay == 0, TAU_NO_DECAY, C.DECAY_UNITY / safe)


def _int_metadata(value: Any) -> npt.NDArray[np.int64]:
    # nir.write gzips every array; HDF5 cannot filter scalar datasets, so store 1-D.
    return np.atleast_1d(np.asarray(value, dtype=np.int64))


def _cuba_node(
    nir: Any, layer_name: str, neuron: Neuron, bias: Any, shape: tuple[int, ...], delay_steps: int
) -> Any:
    """The ``nir.CubaLIF`` of one neuron layer (mapping in the module docstring).

    Raises:
        ExportError: for a sigma-delta neuron (NIR 1.0 has no graded-spike primitive).
    """
    if not isinstance(neuron, CubaNeuron):
        raise ExportError(f"layer '{layer_name}': NIR 1.0 has no sigma-delta (graded-spike) neuron; "
                          "export sigma-delta networks to netx only")
    i_decay = _per_neuron(neuron.i_decay, shape)
    v_decay = _per_neuron(neuron.v_decay, shape)
    bias_mant = _per_neuron(0 if bias is None else bias, shape)
    tau_syn = _tau(i_decay)
    tau_mem = _tau(v_decay)
    metadata: dict[str, Any] = {
        "layer": layer_name,
        "neuron_kind": neuron.kind,
        "i_decay": _int_metadata(neuron.i_decay),
        "v_decay": _int_metadata(neuron.v_decay),
        "v_th_mant": _int_metadata(neuron.v_th_mant),
        "bias_mant": _int_metadata(0 if bias is None else bias),
        "synaptic_delay_steps": delay_steps,
        "state_bits": C.STATE_BITS,
        "current_overflow": "wrap",
        "voltage_overflow": "saturate",
        "decay_rounding": f"truncate toward zero at 2**-{C.ACT_SHIFT} units after every decay",
    }
    return nir.CubaLIF(
        tau_syn=tau_syn,
        tau_mem=tau_mem,
        r=tau_mem.copy(),
        v_leak=bias_mant.astype(np.float64) * tau_mem,
        v_threshold=_per_neuron(neuron.v_th_mant, shape).astype(np.float64),
        v_reset=np.zeros(shape, dtype=np.float64),
        w_in=tau_syn.copy(),
        metadata=metadata,
    )


def _ungrouped_weight(weight: IntArray, groups: int) -> FloatArray:
    """(C_out, C_in/groups, kH, kW) grouped weights as the equivalent (C_out, C_in, kH, kW) ones."""
    c_out, c_in_group, kh, kw = weight.shape
    full = np.zeros((c_out, c_in_group * groups, kh, kw), dtype=np.float64)
    out_per_group = c_out // groups
    for o in range(c_out):
        g = o // out_per_group
        full[o, g * c_in_group : (g + 1) * c_in_group] = weight[o]
    return full


def _conv_node(nir: Any, layer: Conv, in_shape: tuple[int, ...], where: str) -> Any:
    kh, kw = layer.weight.shape[2:]
    if kh != kw:
        raise ExportError(
            f"{where}: kernel {kh}x{kw} is not square; NIR 1.0 derives a Conv2d's output width from the "
            "kernel height, so the graph would not type-check; use square kernels for NIR export"
        )
    weight = (
        layer.weight.astype(np.float64) if layer.groups == 1 else _ungrouped_weight(layer.weight, layer.groups)
    )
    node = nir.Conv2d(
        input_shape=tuple(in_shape[1:]),
        weight=weight,
        stride=tuple(layer.stride),
        padding=tuple(layer.padding),
        dilation=tuple(layer.dilation),
        groups=1,
        bias=np.zeros(layer.shape[0], dtype=np.float64),
        metadata={"layer": layer.name, "groups": layer.groups, "accumulator_bits": C.CONV_ACC_BITS,
                  "accumulator_overflow": "wrap"},
    )
    derived = tuple(int(s) for s in node.output_type["output"])
    assert derived == layer.shape, f"{where}: NIR derives output {derived}, the IR says {layer.shape}"
    return node


NodeList = list[tuple[str, Any]]


def _input_nodes(nir: Any, layer: Layer, shape: tuple[int, ...], where: str, input_meta: dict[str, Any]) -> NodeList:
    assert isinstance(layer, InputLayer)
    input_meta["layer"] = layer.name
    # slayer's scalar input transform: netx stores it and never applies it.
    for key, value in (("slayer_weight", layer.weight), ("slayer_bias", layer.bias)):
        if value is not None:
            input_meta[key] = value
    if layer.neuron is None:
        return []
    return [(f"{layer.name}.neuron", _cuba_node(nir, layer.name, layer.neuron, None, layer.shape, 0))]


def _flatten_nodes(nir: Any, layer: Layer, shape: tuple[int, ...], where: str, input_meta: dict[str, Any]) -> NodeList:
    return [(layer.name, nir.Flatten(input_type={"input": np.asarray(shape, dtype=np.int64)}, start_dim=0,
                                     end_dim=-1, metadata={"layer": layer.name}))]


def _dense_nodes(nir: Any, layer: Layer, shape: tuple[int, ...], where: str, input_meta: dict[str, Any]) -> NodeList:
    assert isinstance(layer, Dense)
    if layer.delay is not None and np.any(layer.delay):
        raise ExportError(
            f"{where}: per-synapse delays cannot be written to NIR (nir.Linear has none); "
            "export this network to netx only"
        )
    neuron = layer.neuron if layer.neuron is not None else default_dense_neuron()
    return [(f"{layer.name}.synapse", nir.Linear(weight=layer.weight.astype(np.float64), metadata={"layer": layer.name})),
            (f"{layer.name}.neuron", _cuba_node(nir, layer.name, neuron, layer.bias, layer.shape, 1))]


def _conv_nodes(nir: Any, layer: Layer, shape: tuple[int, ...], where: str, input_meta: dict[str, Any]) -> NodeList:
    assert isinstance(layer, Conv) and layer.neuron is not None  # the IR requires a neuron on conv layers
    return [(f"{layer.name}.synapse", _conv_node(nir, layer, shape, where)),
            (f"{layer.name}.neuron", _cuba_node(nir, layer.name, layer.neuron, layer.bias, layer.shape, 1))]


#: One entry per IR layer kind: ``nodes(nir, layer, in_shape, where, input_metadata)`` gives the
#: layer's NIR nodes in chain order (an input layer annotates the graph's input node instead).
NIR_NODES: dict[str, Callable[[Any, Layer, tuple[int, ...], str, dict[str, Any]], NodeList]] = {
    "input": _input_nodes,
    "flatten": _flatten_nodes,
    "dense": _dense_nodes,
    "conv": _conv_nodes,
}


def to_nir(net: Network) -> nir.NIRGraph:
    """Describe ``net`` as a NIR graph (mapping and Loihi caveats in the module docstring).

    Args:
        net: the integer network.

    Returns:
        A type-checked ``nir.NIRGraph``: ``input``, the layers' nodes in layer
        order, ``output``. Edges link a layer's nodes in order; its first node has
        one edge from each layer it reads (``input`` for the first layer), so a
        merge is several edges into one synapse node, which NIR sums.

    Raises:
        ExportError: a layer NIR cannot express (per-synapse delays, a
            non-square conv kernel), naming the layer.
        MissingDependencyError: the ``nir`` package is not installed.
    """
    nir = _import_nir()
    nodes: dict[str, Any] = {}

    def add(name: str, node: Any, where: str) -> None:
        if name in nodes:
            raise ExportError(f"{where}: NIR node name {name!r} is taken; rename the layer")
        nodes[name] = node

    add(INPUT_NODE, nir.Input(input_type={"input": np.asarray(net.input_shape, dtype=np.int64)}), "input")
    edges: list[tuple[str, str]] = []
    last: list[str] = []  # per layer, the node its output leaves from
    for i, layer in enumerate(net.layers):
        where = net.describe(i)
        sources = net.sources(i)
        shape = tuple(net.layers[sources[0]].out_shape) if sources else tuple(net.input_shape)
        # NIR sums the edges into a node: a merge's synapse gets one edge per source (a SEW ADD).
        tails = [last[j] for j in sources] if sources else [INPUT_NODE]
        for name, node in NIR_NODES[layer.kind](nir, layer, shape, where, nodes[INPUT_NODE].metadata):
            add(name, node, where)
            edges += [(tail, name) for tail in tails]
            tails = [name]
        last.append(tails[0])
    add(OUTPUT_NODE, nir.Output(output_type={"output": np.asarray(net.out_shape, dtype=np.int64)}), "output")
    edges.append((last[-1], OUTPUT_NODE))
    metadata: dict[str, Any] = {
        "producer": "neuromoco export.nir",
        "ir_format_version": IR_FORMAT_VERSION,
        "dt": NIR_DT,
        "time_unit": "one Loihi time step",
        "value_unit": f"one integer weight step (2**{C.ACT_SHIFT} LSBs of Loihi's u and v)",
        "tau_no_decay": TAU_NO_DECAY,
        "discretization": "forward Euler, dt=1, current first: I=(1-dt/tau_syn)I+(dt/tau_syn)w_in*S; "
                          "v=(1-dt/tau_mem)v+(dt/tau_mem)(v_leak+r*I); spike if v>v_threshold, then v=v_reset",
    }
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)
    except (ValueError, AssertionError) as exc:
        raise ExportError(f"NIR rejected the graph: {exc}") from None


def write_nir(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` as a NIR HDF5 file (``nir.write``), atomically.

    The file is written to a temporary name in the target folder and renamed.

    Args:
        net: the integer network.
        path: the ``.nir`` file to write.

    Returns:
        The path written.

    Raises:
        ExportError: a layer NIR cannot express, or the file cannot be written.
        MissingDependencyError: the ``nir`` package is not installed.
    """
    out = Path(path)
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    graph = to_nir(net)
    nir = _import_nir()
    fd, tmp = tempfile.mkstemp(prefix=".nir-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        os.replace(tmp, out)
    except (OSError, TypeError, ValueError) as exc:
        raise ExportError(f"{out}: cannot write NIR file ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def read_nir(path: str | os.PathLike[str]) -> nir.NIRGraph:
    """Read a NIR file with ``nir.read`` (type-checked).

    Args:
        path: a ``.nir`` HDF5 file.

    Returns:
        The ``nir.NIRGraph``.

    Raises:
        ExportError: the file is missing or is not a valid NIR graph.
        MissingDependencyError: the ``nir`` package is not installed.
    """
    nir = _import_nir()
    src = Path(path)
    if not src.is_file():
        raise ExportError(f"{src}: no such NIR file")
    try:
        return nir.read(src)
    except (OSError, KeyError, ValueError, TypeError, AssertionError) as exc:
        raise ExportError(f"{src}: not a readable NIR graph ({type(exc).__name__}: {exc})") from None


def cuba_integer_params(node: Any, where: str = "CubaLIF node") -> dict[str, IntArray]:
    """Recover the integer neuron parameters from a ``nir.CubaLIF`` this module wrote.

    Inverts the mapping of the module docstring from the NIR fields alone
    (not the metadata).

    Args:
        node: a ``nir.CubaLIF``.
        where: what to name in errors (e.g. the node name).

    Returns:
        ``i_decay``, ``v_decay``, ``v_th_mant`` and ``bias_mant``, int32, one
        value per neuron (the node's shape).

    Raises:
        ExportError: the node does not follow this module's integer mapping
            (``w_in != tau_syn``, ``r != tau_mem``, a non-zero ``v_reset`` or
            non-integral results).
    """
    tau_syn = np.asarray(node.tau_syn, dtype=np.float64)
    tau_mem = np.asarray(node.tau_mem, dtype=np.float64)
    for name, got, want in (("w_in", node.w_in, tau_syn), ("r", node.r, tau_mem)):
        if not np.allclose(np.asarray(got, dtype=np.float64), want, rtol=1e-9, atol=0.0):
            raise ExportError(f"{where}: {name} differs from its time constant; not an integer-derived CubaLIF")
    if np.any(np.asarray(node.v_reset) != 0):
        raise ExportError(f"{where}: v_reset is not 0; Loihi resets v to 0")

    def integral(name: str, values: FloatArray) -> IntArray:
        rounded = np.rint(values)
        if not np.all(np.isfinite(values)) or np.any(np.abs(values - rounded) > 1e-6 * np.maximum(1.0, np.abs(values))):
            raise ExportError(f"{where}: {name} is not an integer in Loihi units")
        return rounded.astype(np.int32)

    def decay(name: str, tau: FloatArray) -> IntArray:
        return integral(name, np.where(tau >= TAU_NO_DECAY, 0.0, C.DECAY_UNITY / tau))

    return {
        "i_decay": decay("i_decay", tau_syn),
        "v_decay": decay("v_decay", tau_mem),
        "v_th_mant": integral("v_th_mant", np.asarray(node.v_threshold, dtype=np.float64)),
        "bias_mant": integral("bias_mant", np.asarray(node.v_leak, dtype=np.float64) / tau_mem),
    }
