"""Read Lava/lava-dl netx HDF5 network files into the IR.

The reader accepts what lava-dl 0.6's ``netx.hdf5.Network`` loads (including the
legacy slayerPytorch ``LOIHI`` neuron type, 5-D conv weights, ``input`` layers
with a neuron, per-channel bias, a ``simulation`` group, and files that start
with a conv layer, given the input shape) and refuses, with a message naming the
file, the layer index and the field, anything it would crash on or silently
misread (see ``../shared/reference/loihi_netx.md`` sections 2-4 and 10).

Each netx layer type has one entry in :data:`LAYER_READERS` (or a reason in
:data:`REFUSED_TYPES`). Every access to the file goes through
:mod:`export.netx_h5`. Loihi register spellings (``vThMant``, ``iDecay``) appear
only in the netx modules.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

from export.ir import (
    Conv,
    CubaNeuron,
    Dense,
    Flatten,
    InputLayer,
    Layer,
    Network,
    Neuron,
    Scalar,
    SigmaDeltaNeuron,
    check_layer,
)
from export.netx_h5 import (
    Ctx,
    child,
    decode_type,
    has,
    load,
    member_names,
    read_array,
    read_shape,
    scalar_extra,
    to_int,
)
from hw_targets import constants as C
from hw_targets.errors import ExportError, InputShapeError, IRError

#: Layer types netx knows but cannot build (NotImplementedError/AttributeError in lava-dl 0.6).
REFUSED_TYPES = {
    "pool": "netx raises NotImplementedError; write sum pooling as a depthwise conv",
    "average": "netx raises NotImplementedError; fold the average into a depthwise conv",
    "concat": "netx raises NotImplementedError; netx networks are sequential chains",
    "convT": "netx raises NotImplementedError",
    "unpool": "netx raises NotImplementedError",
    "dense_comp": "netx 0.6 raises AttributeError (create_complex_dense does not exist)",
    "dense_rec": "recurrent dense layers are not supported by neuromoco yet",
}
#: Neuron keys netx reads for CUBA layers; every other key is carried along as an extra.
NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant")
#: Neuron keys of SDNN layers the IR holds as fields: netx reads ``type``, ``vThMant`` and the presence
#: of ``sigma_output``; it ignores ``activation`` (Lava's SigmaDelta applies ReLU) and ``spikeExp``
#: (neuromoco's record of the ``Network(spike_exp=)`` the file is meant for). Others are extras.
SDNN_KEYS = ("type", "vThMant", "sigma_output", "activation", "spikeExp")
#: Largest stride, padding or dilation the reader accepts. Real networks stay far below it; beyond it
#: the simulators' and counts' tables grow without bound (found by fuzzing).
MAX_CONV_GEOMETRY = 1 << 12


def _read_neuron(group: h5py.Group, ctx: Ctx) -> Neuron:
    if not isinstance(group, h5py.Group):
        raise ctx.err("neuron", "must be a group")
    if not has(group, "type", ctx, "neuron/type"):
        raise ctx.err("neuron/type", "is missing")
    kind = decode_type(child(group, "type", ctx, "neuron/type"), ctx, "neuron/type")
    if kind not in ("CUBA", "LOIHI", "SDNN"):
        raise ctx.err("neuron/type", f"{kind!r:.60} is not supported; neuromoco deploys CUBA-LIF neurons (CUBA or "
                                     "LOIHI) and sigma-delta neurons (SDNN)")
    if has(group, "messageBits", ctx, "neuron/messageBits"):
        raise ctx.err("neuron/messageBits", "netx reads it as a group wrapper and the Lava run fails; remove the key")
    try:
        if kind == "SDNN":
            return _read_sdnn_neuron(group, ctx)
        values = {}
        for key in ("iDecay", "vDecay", "vThMant"):
            arr = read_array(group, key, ctx)
            assert arr is not None
            if arr.ndim > 1:
                raise ctx.err(f"neuron/{key}", f"must be a scalar or 1-D, got shape {arr.shape}")
            values[key] = to_int(arr, ctx, f"neuron/{key}")
        return CubaNeuron(values["iDecay"], values["vDecay"], values["vThMant"], kind=kind,
                          extras=_neuron_extras(group, ctx, NEURON_KEYS))
    except IRError as exc:
        raise ctx.err("neuron", str(exc).replace("neuron: ", "")) from None


def _neuron_extras(group: h5py.Group, ctx: Ctx, known: tuple[str, ...]) -> tuple[tuple[str, Scalar], ...]:
    """The scalar keys of ``neuron/`` besides ``known``, kept for a lossless round trip."""
    extras: list[tuple[str, Scalar]] = []
    for key in sorted(member_names(group, ctx, "neuron")):
        if key in known:
            continue
        item = child(group, key, ctx, f"neuron/{key}")
        if not isinstance(item, h5py.Dataset):
            raise ctx.err(f"neuron/{key}", "unexpected group inside neuron/")
        extras.append((key, scalar_extra(load(item, ctx, f"neuron/{key}"), ctx, f"neuron/{key}")))
    return tuple(extras)


def _read_sdnn_neuron(group: h5py.Group, ctx: Ctx) -> SigmaDeltaNeuron:
    """An SDNN neuron as netx builds it: ``sigma_output`` counts by its presence, whatever its value."""
    sigma_output = has(group, "sigma_output", ctx, "neuron/sigma_output")
    vth = read_array(group, "vThMant", ctx, required=not sigma_output)  # Sigma has no threshold
    vth_int = np.int32(0) if vth is None else to_int(vth, ctx, "neuron/vThMant")
    if np.ndim(vth_int) != 0:
        raise ctx.err("neuron/vThMant", f"must be a scalar for SDNN neurons (Lava holds one threshold per "
                                        f"layer), got shape {np.shape(vth_int)}")
    activation = "relu"
    if has(group, "activation", ctx, "neuron/activation"):
        activation = decode_type(child(group, "activation", ctx, "neuron/activation"), ctx, "neuron/activation")
        if activation != "relu":
            warnings.warn(f"{ctx.where()}: 'neuron/activation' is {activation!r:.40}; netx ignores it and "
                          "Lava's SigmaDelta applies ReLU, as the simulation does", stacklevel=4)
    spike_exp = C.SDNN_SPIKE_EXP
    exp = read_array(group, "spikeExp", ctx, required=False)
    if exp is not None:
        exp_int = to_int(exp.reshape(-1), ctx, "neuron/spikeExp")
        if exp_int.size != 1:
            raise ctx.err("neuron/spikeExp", "must be a scalar")
        spike_exp = int(exp_int[0])
    return SigmaDeltaNeuron(vth_int, spike_exp=spike_exp, sigma_output=sigma_output, activation=activation,
                            extras=_neuron_extras(group, ctx, SDNN_KEYS))


def _read_dense(g: h5py.Group, ctx: Ctx, name: str, in_shape: tuple[int, ...]) -> Dense:
    shape = read_shape(g, ctx)
    n_out = int(np.prod(shape))
    w = read_array(g, "weight", ctx)
    assert w is not None
    w = to_int(w, ctx, "weight", truncate=True)
    if w.ndim == 1:
        if w.size % n_out:
            raise ctx.err("weight", f"{w.size} values cannot be reshaped to ({n_out}, -1)")
        w = w.reshape(n_out, -1)
    if w.ndim != 2 or w.shape[0] != n_out:
        raise ctx.err("weight", f"has shape {w.shape}; expected ({n_out}, inputs)")
    n_in = int(np.prod(in_shape))
    if w.shape[1] != n_in:
        raise ctx.err("weight", f"has {w.shape[1]} inputs but the previous layer gives {n_in}")
    bias = read_array(g, "bias", ctx, required=False)
    if bias is not None:
        bias = to_int(bias, ctx, "bias", truncate=True)
        if bias.shape not in ((), (n_out,)):
            raise ctx.err("bias", f"has shape {bias.shape}; expected a scalar or ({n_out},)")
    delay = read_array(g, "delay", ctx, required=False)
    if delay is not None:
        delay = to_int(delay, ctx, "delay", truncate=True)
        if delay.size and delay.min() < 0:
            raise ctx.err("delay", "negative delays are not allowed")
        if delay.size and delay.max() > C.NETX_MAX_DELAY:
            warnings.warn(f"{ctx.path}: layer {ctx.index} 'delay' max {delay.max()} > {C.NETX_MAX_DELAY}; "
                          "netx clamps it, and so does the simulation", stacklevel=2)
            delay = np.minimum(delay, C.NETX_MAX_DELAY)
        if delay.ndim == 0:
            delay = np.full(w.shape, int(delay), dtype=np.int32)
        elif delay.ndim == 1 and delay.size == w.shape[0]:
            delay = np.repeat(delay.reshape(-1, 1), w.shape[1], axis=1)
        elif delay.ndim == 1 and delay.size == w.shape[1]:
            delay = np.repeat(delay.reshape(1, -1), w.shape[0], axis=0)
        elif delay.shape != w.shape:
            raise ctx.err("delay", f"has shape {delay.shape}; expected a scalar, ({w.shape[0]},), ({w.shape[1]},) or {w.shape}")
    neuron = _read_neuron(child(g, "neuron", ctx, "neuron"), ctx) if has(g, "neuron", ctx, "neuron") else None
    return Dense(name, (n_out,), w, bias, neuron, delay)


def _read_conv(g: h5py.Group, ctx: Ctx, name: str, in_shape: tuple[int, ...]) -> Conv:
    shape = read_shape(g, ctx)
    if len(shape) != 3:
        raise ctx.err("shape", f"conv output must be (C, H, W), got {shape}")
    if len(in_shape) != 3:
        raise ctx.err("weight", f"conv input must be (C, H, W), got {in_shape}; add an input layer with the shape")
    w = read_array(g, "weight", ctx)
    assert w is not None
    w = to_int(w, ctx, "weight", truncate=True)
    if w.ndim == 5:
        if w.shape[4] != 1:
            raise ctx.err("weight", f"5-D weight must end in a singleton axis, got {w.shape}")
        w = w.reshape(w.shape[:4])
    if w.ndim != 4 or 0 in w.shape:
        raise ctx.err("weight", f"must be 4-D (Cout, Cin/groups, kH, kW) with no empty axis, got shape {w.shape}")
    geometry = {}
    for key in ("stride", "padding", "dilation"):
        arr = read_array(g, key, ctx)
        assert arr is not None
        arr = to_int(arr.reshape(-1), ctx, key)
        if arr.size == 1:
            arr = np.repeat(arr, 2)
        if arr.size != 2:
            raise ctx.err(key, f"must be a scalar or an (H, W) pair, got {arr.tolist()}")
        if arr.max() > MAX_CONV_GEOMETRY:
            raise ctx.err(key, f"{arr.tolist()} exceeds the reader's limit of {MAX_CONV_GEOMETRY}; the file is corrupt")
        geometry[key] = (int(arr[0]), int(arr[1]))
    groups_arr = read_array(g, "groups", ctx)
    assert groups_arr is not None
    groups_arr = to_int(groups_arr.reshape(-1), ctx, "groups")
    if groups_arr.size != 1:
        raise ctx.err("groups", f"must be a scalar, got {groups_arr.tolist()}")
    bias = read_array(g, "bias", ctx, required=False)
    if bias is not None:
        bias = to_int(bias, ctx, "bias", truncate=True)
        whc = (shape[2], shape[1], shape[0])
        if bias.shape == whc:  # netx checks the per-neuron (W, H, C) layout first
            bias = np.ascontiguousarray(bias.transpose(2, 1, 0))
        elif bias.shape != (shape[0],):
            raise ctx.err("bias", f"has shape {bias.shape}; netx accepts ({shape[0]},) per channel or {whc} per neuron (W, H, C)")
    if not has(g, "neuron", ctx, "neuron"):
        raise ctx.err("neuron", "is missing; netx needs a neuron on every conv layer")
    neuron = _read_neuron(child(g, "neuron", ctx, "neuron"), ctx)
    return Conv(name, shape, w, geometry["stride"], geometry["padding"], geometry["dilation"],
                int(groups_arr[0]), bias, neuron)


@dataclass
class Chain:
    """What the reader knows after the layers read so far.

    Attributes:
        shape: the output shape of the last layer (None before the first layer that gives one).
        input_shape: the network's input shape (from an input layer, a first dense layer's weight,
            or the caller).
        given_shape: the input shape the caller passed, if any.
        pending_flatten: the last layer was a flatten.
        layers: the IR layers read so far.
    """

    shape: tuple[int, ...] | None
    input_shape: tuple[int, ...]
    given_shape: tuple[int, ...] | None
    pending_flatten: bool = False
    layers: list[Layer] = field(default_factory=list)


def _read_input_layer(g: h5py.Group, ctx: Ctx, name: str, chain: Chain) -> Layer | None:
    if chain.layers or chain.shape is not None:
        raise ctx.err("type", "an input layer may only come first")
    in_shape = read_shape(g, ctx)
    if chain.given_shape is not None and chain.given_shape != in_shape:
        raise ctx.err("shape", f"the file's input shape {in_shape} differs from the given input shape "
                               f"{chain.given_shape}")
    layer: Layer | None = None
    if has(g, "neuron", ctx, "neuron"):
        transform: dict[str, int | None] = {}
        for key in ("weight", "bias"):
            val = read_array(g, key, ctx, required=False)
            if val is not None and val.size != 1:
                raise ctx.err(key, "input-layer transform must be a scalar")
            transform[key] = None if val is None else int(to_int(val.reshape(-1), ctx, key, truncate=True)[0])
        layer = InputLayer(name, in_shape, _read_neuron(child(g, "neuron", ctx, "neuron"), ctx),
                           transform["weight"], transform["bias"])
    chain.input_shape = chain.shape = in_shape
    return layer


def _read_flatten_layer(g: h5py.Group, ctx: Ctx, name: str, chain: Chain) -> Layer | None:
    if chain.shape is None:
        raise ctx.err("type", "flatten cannot be the first layer")
    n = int(np.prod(chain.shape))
    if has(g, "shape", ctx, "shape"):
        declared = read_array(g, "shape", ctx)
        assert declared is not None
        if int(np.prod(declared.astype(object))) != n:
            raise ctx.err("shape", f"{declared.tolist()} does not flatten the previous output {chain.shape}")
    chain.shape = (n,)
    chain.pending_flatten = True
    return Flatten(name, (n,))


def _first_shape(ctx: Ctx, chain: Chain, found: tuple[int, ...] | None, kind: str) -> tuple[int, ...]:
    """The input shape of a file whose first layer is a synapse: the given one, else what the layer says."""
    given = chain.given_shape
    if given is not None:
        if found is not None and int(np.prod(given)) != found[0]:
            raise ctx.err("weight", f"the first {kind} layer takes {found[0]} inputs but the given input shape is "
                                    f"{given}")
        shape = given
    elif found is not None:
        shape = found
    else:
        raise InputShapeError(f"{ctx.where()}: 'type': {kind} as the first layer needs the input shape: the file "
                              "has no input layer; pass the input shape (nmoco simulate: --input-shape C H W, or "
                              "input data of shape (T, C, H, W))")
    chain.input_shape = shape
    return shape


def _read_dense_layer(g: h5py.Group, ctx: Ctx, name: str, chain: Chain) -> Layer | None:
    if chain.shape is None:
        n_in = read_array(g, "weight", ctx)
        assert n_in is not None
        found = (int(n_in.shape[-1]) if n_in.ndim == 2 else -1,)
        if found[0] <= 0 and chain.given_shape is None:
            raise ctx.err("weight", "the first dense layer needs a 2-D weight (or an input layer)")
        chain.shape = _first_shape(ctx, chain, found if found[0] > 0 else None, "dense")
    if len(chain.shape) != 1 and not chain.pending_flatten:
        raise ctx.err("type", f"dense after a {chain.shape} output needs a flatten layer first")
    layer = _read_dense(g, ctx, name, chain.shape)
    chain.shape = layer.shape
    chain.pending_flatten = False
    return layer


def _read_conv_layer(g: h5py.Group, ctx: Ctx, name: str, chain: Chain) -> Layer | None:
    if chain.shape is None:
        chain.shape = _first_shape(ctx, chain, None, "conv")
    layer = _read_conv(g, ctx, name, chain.shape)
    chain.shape = layer.shape
    return layer


#: One reader per netx layer type: ``reader(group, ctx, name, chain)`` returns the IR layer (None for
#: a shape-only input layer) and advances ``chain``.
LayerReader = Callable[[h5py.Group, Ctx, str, Chain], "Layer | None"]
LAYER_READERS: dict[str, LayerReader] = {
    "input": _read_input_layer,
    "flatten": _read_flatten_layer,
    "dense": _read_dense_layer,
    "conv": _read_conv_layer,
}


def read_netx(path: str | os.PathLike[str], input_shape: tuple[int, ...] | None = None) -> Network:
    """Read a netx HDF5 file into the IR.

    Args:
        path: the ``.net`` file.
        input_shape: (C, H, W) or (N,), needed when the file starts with a conv layer
            (lava-dl's exporter writes no input layer then, and Lava takes the shape as
            ``netx.hdf5.Network(input_shape=(W, H, C))``); checked against the file otherwise.

    Returns:
        The network. Layer names are ``{type}{index}`` (``conv1``, ``dense5``).

    Raises:
        ExportError: the file is missing, not HDF5, or a layer is malformed or of
            a type netx cannot build; the message names the file, layer and field.
        InputShapeError: the file starts with a conv layer and ``input_shape`` is None.
    """
    ctx = Ctx(str(path))
    try:
        exists = Path(path).is_file()
    except (OSError, ValueError):  # e.g. a NUL byte in the name
        exists = False
    if not exists:
        raise ExportError(f"{path}: no such file")
    given = None if input_shape is None else tuple(int(s) for s in input_shape)
    if given is not None and (len(given) not in (1, 3) or min(given) <= 0):
        raise ExportError(f"{path}: input shape {given} must be (N,) or (C, H, W) with positive sizes")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with f:
            return _read_file(f, ctx, given)
    except (KeyError, OSError, RuntimeError) as exc:  # h5py surfaces corrupt files this way
        raise ctx.err("?", f"corrupt or truncated file ({exc})") from None
    except IRError as exc:
        raise ctx.err("layer", str(exc)) from None


def layer_groups(parent: h5py.Group, ctx: Ctx, field: str = "layer") -> h5py.Group:
    """The layer group ``field`` of ``parent`` (``layer``, or ``graph/layer``), whose members must be
    named 0..n-1."""
    group = child(parent, "layer", ctx, field) if has(parent, "layer", ctx, field) else None
    if not isinstance(group, h5py.Group):
        raise ctx.err(field, "group is missing; this is not a netx network file")
    keys = member_names(group, ctx, field)
    count = len(keys)
    if count == 0:
        raise ctx.err(field, "group is empty")
    expected = {str(i) for i in range(count)}
    if set(keys) != expected:
        shown = sorted(keys, key=lambda k: (len(k), k))
        listed = ", ".join(repr(k)[:24] for k in shown[:12]) + (", ..." if count > 12 else "")
        raise ctx.err(field, f"layer groups must be named 0..{count - 1}, found {listed}")
    return group


def open_layer(group: h5py.Group, i: int, ctx: Ctx, field: str = "layer") -> tuple[h5py.Group, str, LayerReader]:
    """Layer ``i``'s group, its netx type and the reader for that type; sets ``ctx`` to the layer.

    Raises:
        ExportError: the member is not a group, has no readable ``type``, or its type is one netx
            cannot build or does not know.
    """
    ctx.index, ctx.type = i, ""
    g = child(group, str(i), ctx, field)
    if not isinstance(g, h5py.Group):
        raise ctx.err(field, "must be a group")
    if not has(g, "type", ctx, "type"):
        raise ctx.err("type", "is missing")
    kind = decode_type(child(g, "type", ctx, "type"), ctx, "type")
    ctx.type = kind
    if kind in REFUSED_TYPES:
        raise ctx.err("type", f"{kind!r} cannot be deployed: {REFUSED_TYPES[kind]}")
    reader = LAYER_READERS.get(kind)
    if reader is None:
        raise ctx.err("type", f"unknown layer type {kind!r:.60}; netx would silently skip it")
    return g, kind, reader


def _read_file(f: h5py.File, ctx: Ctx, given_shape: tuple[int, ...] | None) -> Network:
    if has(f, "graph", ctx, "graph"):
        # A residual graph (neuromoco's own layout; see export.netx_graph). Imported here: that
        # module builds on this one's per-kind readers.
        from export.netx_graph import read_graph

        return read_graph(f, ctx, given_shape)
    group = layer_groups(f, ctx)
    chain = Chain(shape=None, input_shape=(), given_shape=given_shape)
    prev_shape: tuple[int, ...] | None = None
    for i in range(len(group)):
        g, kind, reader = open_layer(group, i, ctx)
        first = chain.shape is None
        layer = reader(g, ctx, f"{kind}{len(chain.layers)}", chain)
        if first and kind != "input":
            prev_shape = chain.input_shape
        if layer is not None:
            chain.layers.append(layer)
            try:
                check_layer(layer, len(chain.layers) - 1,
                            None if len(chain.layers) == 1 and kind == "input" else prev_shape)
            except IRError as exc:
                raise ExportError(f"{ctx.where()}: {exc}") from None
        prev_shape = chain.shape
    ctx.index = None
    if not any(isinstance(l, (Dense, Conv, InputLayer)) for l in chain.layers):
        raise ctx.err("layer", "the file has no neuron layers")
    return Network(tuple(chain.layers), chain.input_shape, read_simulation(f, ctx))


def read_simulation(f: h5py.File, ctx: Ctx) -> tuple[tuple[str, Scalar], ...]:
    """The legacy slayerPytorch ``simulation`` group, kept verbatim."""
    simulation: list[tuple[str, Scalar]] = []
    sim = child(f, "simulation", ctx, "simulation") if has(f, "simulation", ctx, "simulation") else None
    if isinstance(sim, h5py.Group):
        for key in sorted(member_names(sim, ctx, "simulation")):
            item = child(sim, key, ctx, f"simulation/{key}")
            if isinstance(item, h5py.Dataset):
                simulation.append((key, scalar_extra(load(item, ctx, f"simulation/{key}"), ctx, f"simulation/{key}")))
    return tuple(simulation)
