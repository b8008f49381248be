"""Residual graphs in a netx-style HDF5 file: neuromoco's graph layout, and its reader.

A netx file is a chain: lava-dl 0.6's ``netx.hdf5.Network`` reads ``layer/0 .. n-1``
and connects each to the next. A residual network is not, so it is written without
a top-level ``layer`` group, and lava-dl refuses it loudly (``KeyError: ... object
'layer' doesn't exist``) rather than loading a wrong chain. The layout::

    network.net                       (HDF5)
    ├── graph/
    │   ├── format   = b"neuromoco-graph"
    │   ├── version  = 1              (int64)
    │   └── layer/
    │       ├── "0"/  a netx layer group (type, shape, weight, neuron/, ...) + name [+ sources]
    │       └── "n-1"/
    └── simulation/                   (optional, as in netx files)

Each ``graph/layer/k`` holds exactly what netx writes for that layer kind, plus

- ``name``: the IR layer's name (variable-length UTF-8 string);
- ``sources``: int64 indices of the layers it reads, 1-D, written only where the layer
  reads anything but layer ``k - 1``. A synapse reading several layers is one synapse
  per source with the same weights into the same neurons (a SEW ``ADD``).

As in netx files, a network that does not start with an input layer gets a shape-only
``input`` layer ``0`` that declares the input shape; it has no ``name`` and no layer
may name it as a source. A file whose graph has no edge besides the chain's is refused:
a chain is written as plain netx, which lava-dl loads.
"""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np

from export.ir import Conv, Dense, Flatten, InputLayer, Layer, Network, Scalar, check_layer
from export.netx_h5 import Ctx, child, has, load, safe_name, scalar_extra
from export.netx_read import Chain, layer_groups, open_layer, read_simulation
from hw_targets.errors import ExportError, IRError

#: ``graph/format``: what marks a file as neuromoco's graph layout.
GRAPH_FORMAT = "neuromoco-graph"
#: ``graph/version``: the layout version this reader reads and the writer writes.
GRAPH_VERSION = 1
#: Longest layer name the reader accepts (names appear in every message).
MAX_NAME_CHARS = 200


def _check_header(graph: h5py.Group, ctx: Ctx) -> None:
    """``graph/format`` and ``graph/version`` must say this layout, this version."""
    if not has(graph, "format", ctx, "graph/format"):
        raise ctx.err("graph/format", "is missing; not a neuromoco graph file")
    fmt = scalar_extra(load(child(graph, "format", ctx, "graph/format"), ctx, "graph/format"), ctx, "graph/format")
    if fmt != GRAPH_FORMAT:
        shown = safe_name(str(fmt))
        raise ctx.err("graph/format", f"unknown format {shown!r}; expected {GRAPH_FORMAT!r}")
    if not has(graph, "version", ctx, "graph/version"):
        raise ctx.err("graph/version", "is missing")
    version = np.asarray(load(child(graph, "version", ctx, "graph/version"), ctx, "graph/version"))
    if not np.issubdtype(version.dtype, np.integer) or version.size != 1:
        raise ctx.err("graph/version", f"must be one integer, got dtype {version.dtype} shape {version.shape}")
    if int(version.reshape(-1)[0]) != GRAPH_VERSION:
        raise ctx.err("graph/version", f"is {int(version.reshape(-1)[0])}; this reader reads version {GRAPH_VERSION} "
                                       "(written by a different neuromoco?)")


def _read_name(g: h5py.Group, ctx: Ctx) -> str:
    if not has(g, "name", ctx, "name"):
        raise ctx.err("name", "is missing; every layer of a graph file names itself")
    value = scalar_extra(load(child(g, "name", ctx, "name"), ctx, "name"), ctx, "name")
    if not isinstance(value, str) or not value or not value.isprintable() or len(value) > MAX_NAME_CHARS:
        raise ctx.err("name", f"must be a non-empty printable string of at most {MAX_NAME_CHARS} characters, "
                              f"got {safe_name(repr(value))}")
    return value


def _read_sources(g: h5py.Group, ctx: Ctx, k: int) -> list[int] | None:
    """File indices layer ``k`` reads (None: the layer before); checked for range, order and duplicates."""
    if not has(g, "sources", ctx, "sources"):
        return None
    arr = np.asarray(load(child(g, "sources", ctx, "sources"), ctx, "sources"))
    if not np.issubdtype(arr.dtype, np.integer):  # (bool is not an integer dtype to numpy)
        raise ctx.err("sources", f"has dtype {arr.dtype}; expected integer layer indices")
    if arr.ndim != 1 or arr.size == 0:
        raise ctx.err("sources", f"must be a non-empty 1-D list of layer indices, got shape {arr.shape}")
    out: list[int] = []
    for value in (int(v) for v in arr):
        if value == k:
            raise ctx.err("sources", f"names the layer itself ({k}); an edge to itself is a cycle")
        if value > k:
            raise ctx.err("sources", f"names layer {value}, which comes later; layers are stored in execution "
                                     "order, so a forward edge would make a cycle")
        if value < 0:
            raise ctx.err("sources", f"index {value} is out of range 0..{k - 1}")
        if value in out:
            raise ctx.err("sources", f"names layer {value} twice (a duplicate edge)")
        out.append(value)
    return out


def read_graph(f: h5py.File, ctx: Ctx, given_shape: tuple[int, ...] | None) -> Network:
    """Read a file in the graph layout (see the module docstring) into the IR.

    Each layer is read by the netx reader's entry for its type (:data:`export.netx_read.LAYER_READERS`)
    against the output shape of its (first) source.

    Raises:
        ExportError: one line naming the file, the layer index and the field: both ``layer`` and
            ``graph`` groups, an unknown format or version, layer groups not named 0..n-1, a missing or
            bad ``name`` or ``sources`` (out of range, to itself or a later layer, duplicated, wrong
            dtype or shape), a merge into a layer without a synapse or of different shapes, a layer
            whose output reaches nothing, a graph without edges, or anything the netx reader refuses.
    """
    if has(f, "layer", ctx, "layer"):
        raise ctx.err("layer", "a file holds either a netx chain ('layer') or a neuromoco graph ('graph'), "
                               "not both")
    graph = child(f, "graph", ctx, "graph")
    if not isinstance(graph, h5py.Group):
        raise ctx.err("graph", "must be a group")
    _check_header(graph, ctx)
    group = layer_groups(graph, ctx, "graph/layer")
    chain = Chain(shape=None, input_shape=(), given_shape=given_shape)
    layers: list[Layer] = []
    #: per file index: the IR index (None for the shape-only input declaration) and its output shape
    ir_index: list[int | None] = []
    shapes: list[tuple[int, ...]] = []
    seen: dict[str, int] = {}
    for k in range(len(group)):
        g, kind, reader = open_layer(group, k, ctx, "graph/layer")
        declaration = k == 0 and kind == "input" and not has(g, "name", ctx, "name")
        name = "" if declaration else _read_name(g, ctx)
        if name in seen:
            raise ctx.err("name", f"{safe_name(name)!r} is already the name of layer {seen[name]}; names are unique")
        seen[name] = k
        sources = _read_sources(g, ctx, k)
        if sources is not None and k == 0:
            raise ctx.err("sources", "the first layer reads the network's input")
        if sources == [k - 1]:
            sources = None  # the layer before, said explicitly: a chain edge
        srcs = sources if sources is not None else ([k - 1] if k else [])
        for j in sources or []:
            if ir_index[j] is None:
                raise ctx.err("sources", f"names layer {j}, the input-shape declaration; a layer reading the "
                                         "network's input must come right after it")
        if len(srcs) > 1 and kind not in ("dense", "conv"):
            raise ctx.err("sources", f"{len(srcs)} sources into a {kind} layer; only a dense or conv layer may "
                                     "read several layers (a merge is one synapse per source into the same neurons)")
        if srcs:
            merged = {shapes[j] for j in srcs}
            if len(merged) > 1:
                raise ctx.err("sources", f"the merged layers {srcs} have different shapes "
                                         f"{[list(shapes[j]) for j in srcs]}; a merge adds spike tensors of one shape")
            chain.shape = shapes[srcs[0]]
            chain.pending_flatten = any(_is_flatten(layers, ir_index[j]) for j in srcs)
        first_synapse = chain.shape is None
        layer = reader(g, ctx, name, chain)
        if layer is None and not declaration:  # a named shape-only input layer is an IR layer
            layer = InputLayer(name, chain.input_shape)
        if layer is None:
            ir_index.append(None)
            shapes.append(tuple(chain.input_shape))
            continue
        if sources is not None and isinstance(layer, (Dense, Conv, Flatten)):  # (an input layer comes first)
            names = tuple(_name(layers, ir_index[j]) for j in sources)
            layer = dataclasses.replace(layer, sources=names)
        in_shape = None if isinstance(layer, InputLayer) else (chain.input_shape if first_synapse else
                                                                 shapes[srcs[0]])
        try:
            check_layer(layer, len(layers), in_shape)
        except IRError as exc:
            raise ExportError(f"{ctx.where()}: {exc}") from None
        ir_index.append(len(layers))
        shapes.append(tuple(layer.out_shape))
        layers.append(layer)
    ctx.index = None
    if not layers or not any(isinstance(layer, (Dense, Conv)) or layer.has_neurons for layer in layers):
        raise ctx.err("graph/layer", "the file has no neuron layers")
    net = _network(layers, chain.input_shape, read_simulation(f, ctx), ctx)
    if not net.is_graph:
        raise ctx.err("graph/layer", "no layer reads anything but the layer before it: this is a chain, which "
                                     "is written as plain netx ('layer' group, loaded by lava-dl); re-export it")
    return net


def _is_flatten(layers: list[Layer], index: int | None) -> bool:
    return index is not None and isinstance(layers[index], Flatten)


def _name(layers: list[Layer], index: int | None) -> str:
    assert index is not None  # sources naming the input declaration were refused
    return layers[index].name


def _network(layers: list[Layer], input_shape: tuple[int, ...], simulation: tuple[tuple[str, Scalar], ...],
             ctx: Ctx) -> Network:
    """The IR network; its whole-graph checks (names, dead ends) as one ExportError naming the file."""
    try:
        return Network(tuple(layers), input_shape, simulation)
    except IRError as exc:
        raise ExportError(f"{ctx.path}: 'graph/layer': {exc}") from None
