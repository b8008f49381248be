"""Write the IR as Lava/lava-dl netx HDF5 network files.

The writer writes only files lava-dl 0.6's ``netx.hdf5.Network`` loads as
intended (see ``../shared/reference/loihi_netx.md`` sections 2-4 and 10): it
refuses, naming the layer, what netx would load wrongly (:func:`check_writable`),
writes to a temporary name and renames. Each IR layer kind has one entry in
:data:`LAYER_WRITERS`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from export import netx_dense
from export.files import atomic_output
from export.ir import Conv, CubaNeuron, Dense, InputLayer, Layer, Network, Neuron, SigmaDeltaNeuron
from export.netx_dense import dense_weight_fault
from export.netx_graph import GRAPH_FORMAT, GRAPH_VERSION
from hw_targets import constants as C
from hw_targets.errors import ExportError


def check_writable(net: Network) -> None:
    """Refuse what netx would load wrongly, before anything is written.

    Raises:
        ExportError: naming the layer: dense weights all zero (the loader crashes),
            all <= 0 (netx's weight-bit handling corrupts them), or outside the
            8-bit range netx keeps; biases that do not fit Lava's int16 ``bias_mant``.
    """
    for i, layer in enumerate(net.layers):
        where = net.describe(i)
        neuron = getattr(layer, "neuron", None)
        if isinstance(neuron, SigmaDeltaNeuron) and neuron.state_exp != C.SDNN_STATE_EXP:
            raise ExportError(f"{where}: field 'state_exp' is {neuron.state_exp}; netx builds every sigma-delta "
                              f"layer with state_exp = {C.SDNN_STATE_EXP}")
        if isinstance(layer, Dense):
            _check_dense_writable(layer, where)
        bias = getattr(layer, "bias", None)
        if isinstance(bias, np.ndarray) and bias.size:
            if int(bias.min()) < C.BIAS_STORE_MIN or int(bias.max()) > C.BIAS_STORE_MAX:
                raise ExportError(f"{where}: bias outside int16 would wrap in Lava's bias_mant")


def _check_dense_writable(layer: Dense, where: str) -> None:
    w = layer.weight
    wmax, wmin = int(w.max()), int(w.min())
    fault = dense_weight_fault(w)
    if fault == netx_dense.ZERO:
        raise ExportError(f"{where}: all weights are zero; netx's loader crashes on it (OverflowError). Remove the layer or retrain")
    if fault == netx_dense.NON_POSITIVE:
        raise ExportError(
            f"{where}: every weight is <= 0; netx's weight-bit optimisation corrupts such a layer "
            "(reference loihi_netx.md section 6.1). Add one positive weight or retrain"
        )
    if fault == netx_dense.MIXED_RANGE:
        raise ExportError(
            f"{where}: mixed-sign weights in [{wmin}, {wmax}] exceed netx's "
            f"[{C.NETX_MIXED_WEIGHT_MIN}, {C.NETX_MIXED_WEIGHT_MAX}] and would be clipped; "
            "re-quantize with an 8-bit mantissa"
        )
    if fault == netx_dense.EXCITATORY_RANGE:
        raise ExportError(f"{where}: excitatory weights up to {wmax} exceed 255; netx corrupts them. Re-quantize")


def _put_type(g: h5py.Group, key: str, value: str) -> None:
    g.create_dataset(key, data=np.array([value.encode("ascii")], dtype="S10"))


def _put_neuron(g: h5py.Group, n: Neuron) -> None:
    if isinstance(n, SigmaDeltaNeuron):
        _put_sdnn_neuron(g, n)
        return
    ng = g.create_group("neuron")
    _put_type(ng, "type", n.kind)
    ng.create_dataset("iDecay", data=np.asarray(n.i_decay, dtype=np.int32))
    ng.create_dataset("vDecay", data=np.asarray(n.v_decay, dtype=np.int32))
    ng.create_dataset("vThMant", data=np.asarray(n.v_th_mant, dtype=np.int32))
    for key, value in n.extras:
        if key == "messageBits":  # never written for CUBA: netx's run fails on it
            continue
        ng.create_dataset(key, data=value)


def _put_sdnn_neuron(g: h5py.Group, n: SigmaDeltaNeuron) -> None:
    """As lava-dl's slayer writes it (``type``, ``activation``, ``vThMant``, ``sigma_output``), plus
    ``spikeExp`` where it is not netx's default (netx ignores the key; Lava needs the value as
    ``Network(spike_exp=)``) and the extras read from a file."""
    ng = g.create_group("neuron")
    _put_type(ng, "type", n.kind)
    ng.create_dataset("activation", data=n.activation)
    ng.create_dataset("vThMant", data=np.asarray(n.v_th_mant, dtype=np.int64))
    if n.sigma_output:
        ng.create_dataset("sigma_output", data=True)
    if n.spike_exp != C.SDNN_SPIKE_EXP:
        ng.create_dataset("spikeExp", data=np.int64(n.spike_exp))
    for key, value in n.extras:
        if key == "messageBits":  # netx's run fails on it
            continue
        ng.create_dataset(key, data=value)


def _write_input(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    assert isinstance(layer, InputLayer)
    if layer.weight is not None:
        g.create_dataset("weight", data=np.int64(layer.weight))
    if layer.bias is not None:
        g.create_dataset("bias", data=np.int64(layer.bias))
    if layer.neuron is not None:
        _put_neuron(g, layer.neuron)


def _write_dense(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    assert isinstance(layer, Dense)
    g.create_dataset("inFeatures", data=np.int64(layer.weight.shape[1]))
    g.create_dataset("outFeatures", data=np.int64(layer.weight.shape[0]))
    g.create_dataset("weight", data=layer.weight)
    if layer.bias is not None:
        g.create_dataset("bias", data=layer.bias)
    if layer.delay is not None:
        g.create_dataset("delay", data=layer.delay)
    if layer.neuron is not None:
        _put_neuron(g, layer.neuron)


def _write_conv(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    assert isinstance(layer, Conv)
    g.create_dataset("inChannels", data=np.int64(in_shape[0]))
    g.create_dataset("outChannels", data=np.int64(layer.shape[0]))
    g.create_dataset("kernelSize", data=np.asarray(layer.weight.shape[2:], dtype=np.int64))
    g.create_dataset("weight", data=layer.weight)  # torch layout; netx flips it itself
    g.create_dataset("stride", data=np.asarray(layer.stride, dtype=np.int64))
    g.create_dataset("padding", data=np.asarray(layer.padding, dtype=np.int64))
    g.create_dataset("dilation", data=np.asarray(layer.dilation, dtype=np.int64))
    g.create_dataset("groups", data=np.int64(layer.groups))
    if layer.bias is not None:
        bias = layer.bias if layer.bias.ndim == 1 else layer.bias.transpose(2, 1, 0)  # netx: (W, H, C)
        g.create_dataset("bias", data=np.ascontiguousarray(bias))
    assert layer.neuron is not None
    _put_neuron(g, layer.neuron)


def _write_flatten(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    """A flatten layer is its type and shape only."""


#: One writer per IR layer kind: ``writer(group, layer, in_shape)`` fills the layer's group after its
#: ``type`` and ``shape``.
LAYER_WRITERS: dict[str, Callable[[h5py.Group, Layer, tuple[int, ...]], None]] = {
    "input": _write_input,
    "dense": _write_dense,
    "conv": _write_conv,
    "flatten": _write_flatten,
}


def _write_layer(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    _put_type(g, "type", layer.kind)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    LAYER_WRITERS[layer.kind](g, layer, in_shape)


def _write_input_declaration(lg: h5py.Group, net: Network) -> int:
    """A shape-only ``input`` layer ``0`` unless the network starts with an input layer; returns the
    offset of the IR's layers in the file (1 or 0)."""
    if isinstance(net.layers[0], InputLayer):
        return 0
    g = lg.create_group("0")
    _put_type(g, "type", "input")
    g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
    return 1


def _write_graph(f: h5py.File, net: Network) -> None:
    """A residual graph in neuromoco's layout (see :mod:`export.netx_graph`): no top-level ``layer``
    group, so lava-dl's ``netx.hdf5.Network`` refuses the file (KeyError) instead of loading a chain."""
    gg = f.create_group("graph")
    gg.create_dataset("format", data=np.bytes_(GRAPH_FORMAT))
    gg.create_dataset("version", data=np.int64(GRAPH_VERSION))
    lg = gg.create_group("layer")
    offset = _write_input_declaration(lg, net)
    for i, layer in enumerate(net.layers):
        sources = net.sources(i)
        g = lg.create_group(str(i + offset))
        _write_layer(g, layer, net.layers[sources[0]].out_shape if sources else net.input_shape)
        g.create_dataset("name", data=layer.name)  # variable-length UTF-8
        if getattr(layer, "sources", ()):  # () when the layer reads the layer before it
            g.create_dataset("sources", data=np.asarray([j + offset for j in sources], dtype=np.int64))


def write_netx(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` as a netx HDF5 file that lava-dl's ``netx.hdf5.Network`` loads.

    The file is written to a temporary name and renamed, so an existing file is
    never left half-written. A network whose first layer is not an input layer
    with a neuron gets a shape-only ``input`` layer, so conv-first networks need
    no ``input_shape`` argument in netx.

    A chain is written as plain netx. A residual graph (``net.is_graph``) is written in
    neuromoco's graph layout (:mod:`export.netx_graph`), which lava-dl refuses to load.

    Raises:
        ExportError: if a layer cannot be expressed (see :func:`check_writable`)
            or the file cannot be written.
    """
    check_writable(net)
    out = Path(path)
    with atomic_output(out, ExportError) as tmp, h5py.File(tmp, "w") as f:
        if net.is_graph:
            _write_graph(f, net)
        else:
            lg = f.create_group("layer")
            offset = _write_input_declaration(lg, net)
            shape = net.input_shape
            for i, layer in enumerate(net.layers):
                _write_layer(lg.create_group(str(i + offset)), layer, shape)
                shape = layer.out_shape
        if net.simulation:
            sg = f.create_group("simulation")
            for key, value in net.simulation:
                sg.create_dataset(key, data=value)
    return out
