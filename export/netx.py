"""Read and write Lava/lava-dl netx HDF5 network files.

The reader accepts what lava-dl 0.6's ``netx.hdf5.Network`` loads (including the
legacy slayerPytorch ``LOIHI`` neuron type, 5-D conv weights, ``input`` layers
with a neuron, per-channel bias and a ``simulation`` group) and refuses, with a
message naming the file, the layer index and the field, anything it would
crash on or silently misread. The writer writes only files netx loads as
intended (see ``../shared/reference/loihi_netx.md`` sections 2-4 and 10).

Loihi register spellings (``vThMant``, ``iDecay``) appear only in this module.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, IntArray, Layer, Network, Scalar, check_layer
from hw_targets import constants as C
from hw_targets.errors import ExportError, IRError

#: Layer types netx knows but cannot build (NotImplementedError/AttributeError in lava-dl 0.6).
_REFUSED_TYPES = {
    "pool": "netx raises NotImplementedError; write sum pooling as a depthwise conv",
    "average": "netx raises NotImplementedError; fold the average into a depthwise conv",
    "concat": "netx raises NotImplementedError; netx networks are sequential chains",
    "convT": "netx raises NotImplementedError",
    "unpool": "netx raises NotImplementedError",
    "dense_comp": "netx 0.6 raises AttributeError (create_complex_dense does not exist)",
    "dense_rec": "recurrent dense layers are not supported by neuromoco yet",
}
#: Neuron keys netx reads for CUBA layers; every other key is carried along as an extra.
_NEURON_KEYS = ("type", "iDecay", "vDecay", "vThMant")
#: Descriptive keys slayer writes and netx never reads; regenerated on write.
_DESCRIPTIVE_KEYS = {"inFeatures", "outFeatures", "inChannels", "outChannels", "kernelSize"}
#: Largest dataset the reader loads (elements): a declared shape is checked before any data is read,
#: so a file claiming terabytes (a chunked dataset of fill values, a corrupt dataspace) is refused at once.
MAX_DATASET_ELEMENTS = 1 << 26
#: Largest layer (neurons) the reader accepts: 16 Loihi 2 chips' worth, far beyond what a netx file of a
#: single network describes; a corrupt shape would otherwise make the simulators allocate it.
MAX_LAYER_NEURONS = 1 << 24
#: Largest stride, padding or dilation the reader accepts. Real networks stay far below it; beyond it
#: torch's convolutions (the simulators, the fan-out counts) can crash the process (found by fuzzing).
MAX_CONV_GEOMETRY = 1 << 12
#: What h5py raises on corrupt files, broken links and names that are not UTF-8.
_H5_ERRORS = (KeyError, OSError, RuntimeError, ValueError, TypeError)


class _Ctx:
    """Where we are in a file, for messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.index: int | None = None
        self.type = ""

    def where(self) -> str:
        return self.path if self.index is None else f"{self.path}: layer {self.index} ({_safe(self.type) or '?'})"

    def err(self, field: str, what: str) -> ExportError:
        return ExportError(f"{self.where()}: '{_safe(field)}': {what}")


def _safe(name: str) -> str:
    """A name read from a file, fit for a one-line message: printable, short, control characters escaped."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- the h5py boundary
#
# Every access to the file goes through these helpers: a corrupt file, a broken or external
# link, a name that is not UTF-8 or a dataset too big to load becomes one ExportError naming
# the field, and nothing from the file is evaluated (only numbers and strings are read).


@contextmanager
def _h5_guard(ctx: _Ctx, field: str, what: str) -> Iterator[None]:
    """h5py's errors on a damaged file become one ExportError: ``field`` ``what`` (and the cause)."""
    try:
        yield
    except ExportError:
        raise
    except _H5_ERRORS as exc:
        raise ctx.err(field, f"{what} ({type(exc).__name__}: {exc})") from None


def _keys(group: h5py.Group, ctx: _Ctx, field: str) -> list[str]:
    """The member names of ``group``; every one must be a (UTF-8) string."""
    with _h5_guard(ctx, field, "cannot list its members; corrupt file?"):
        keys = list(group.keys())
    for key in keys:
        if not isinstance(key, str):
            raise ctx.err(field, f"has a member whose name is not valid UTF-8 ({key!r:.40})")
    return keys


def _has(group: h5py.Group, key: str, ctx: _Ctx, field: str) -> bool:
    with _h5_guard(ctx, field, "cannot be looked up; corrupt file?"):
        return key in group


def _child(group: h5py.Group, key: str, ctx: _Ctx, field: str) -> Any:
    """``group[key]`` (a Dataset or Group); external links (which open other files) are refused."""
    with _h5_guard(ctx, field, "cannot be opened; corrupt file or broken link?"):
        link = group.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ctx.err(field, f"is an external link to {link.filename!r:.80}; netx files must be self-contained")
        return group[key]


def _load(ds: Any, ctx: _Ctx, field: str) -> Any:
    """The value of a dataset, after checking where its data lives and how big it says it is."""
    if not isinstance(ds, h5py.Dataset):
        raise ctx.err(field, "must be a dataset, found a group")
    with _h5_guard(ctx, field, "cannot be read; corrupt file?"):
        if ds.external or ds.is_virtual:
            raise ctx.err(field, "keeps its data in other files (external storage or a virtual dataset); "
                                 "netx files must be self-contained")
        shape = ds.shape
        size = 1 if shape is None else int(np.prod([int(s) for s in shape], dtype=object))
        if size > MAX_DATASET_ELEMENTS:
            raise ctx.err(field, f"declares {size} values (shape {shape}), more than the reader's limit of "
                                 f"{MAX_DATASET_ELEMENTS}; the file is corrupt or not a netx network")
        return ds[()]


# ----------------------------------------------------------------------------- reading


def _decode_type(ds: Any, ctx: _Ctx, field: str) -> str:
    if not isinstance(ds, h5py.Dataset):
        raise ctx.err(field, "must be a string dataset")
    value = _load(ds, ctx, field)
    if isinstance(value, np.ndarray):
        if value.size < 1:
            raise ctx.err(field, "is empty")
        value = value.reshape(-1)[0]
    try:
        if isinstance(value, bytes):
            return value.decode("ascii")
        if isinstance(value, str):
            return value
    except (UnicodeDecodeError, OSError, ValueError, TypeError) as exc:
        raise ctx.err(field, f"cannot be decoded as an ASCII string ({exc})") from None
    raise ctx.err(field, f"must be an ASCII string, got {type(value).__name__}")


def _read_array(group: h5py.Group, key: str, ctx: _Ctx, required: bool = True) -> npt.NDArray[Any] | None:
    if not _has(group, key, ctx, key):
        if required:
            raise ctx.err(key, "is missing")
        return None
    arr = np.asarray(_load(_child(group, key, ctx, key), ctx, key))
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ctx.err(key, f"has dtype {arr.dtype}; expected numbers")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ctx.err(key, "contains NaN or inf")
    return arr


def _to_int(arr: npt.NDArray[Any], ctx: _Ctx, key: str, truncate: bool = False) -> IntArray:
    """Integer view of a numeric array; netx truncates floats toward zero for copy keys."""
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(arr == np.trunc(arr)):
            if not truncate:
                raise ctx.err(key, "holds non-integer values")
            warnings.warn(f"{ctx.path}: layer {ctx.index} '{key}' holds fractions; netx truncates them toward zero",
                          stacklevel=3)
        arr = np.trunc(arr)
    info = np.iinfo(np.int32)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise ctx.err(key, f"values in [{arr.min()}, {arr.max()}] do not fit int32")
    return arr.astype(np.int32)


def _shape(group: h5py.Group, ctx: _Ctx, key: str = "shape") -> tuple[int, ...]:
    arr = _read_array(group, key, ctx)
    assert arr is not None
    arr = _to_int(arr.reshape(-1), ctx, key)
    if arr.size not in (1, 3) or np.any(arr <= 0):
        raise ctx.err(key, f"must be (N,) or (C, H, W) with positive sizes, got {arr.tolist()}")
    shape = tuple(int(v) for v in arr)
    if int(np.prod(shape, dtype=object)) > MAX_LAYER_NEURONS:
        raise ctx.err(key, f"{list(shape)} is more than the reader's limit of {MAX_LAYER_NEURONS} neurons per layer")
    return shape


def _scalar_extra(value: Any, ctx: _Ctx, field: str) -> Scalar:
    """An extra key (netx ignores it): one bool, integer, finite float or UTF-8 string, kept verbatim."""
    if isinstance(value, np.ndarray):
        if value.size != 1:
            raise ctx.err(field, f"holds {value.size} values; neuromoco keeps extra keys only as single values")
        value = value.reshape(-1)[0]
    if isinstance(value, bytes):  # also np.bytes_
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise ctx.err(field, "is not a UTF-8 string") from None
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            raise ctx.err(field, "contains NaN or inf")
        return float(value)
    raise ctx.err(field, f"has type {type(value).__name__}; extra keys must be numbers or strings")


def _read_neuron(group: h5py.Group, ctx: _Ctx) -> CubaNeuron:
    if not isinstance(group, h5py.Group):
        raise ctx.err("neuron", "must be a group")
    if not _has(group, "type", ctx, "neuron/type"):
        raise ctx.err("neuron/type", "is missing")
    kind = _decode_type(_child(group, "type", ctx, "neuron/type"), ctx, "neuron/type")
    if kind not in ("CUBA", "LOIHI"):
        raise ctx.err("neuron/type", f"{kind!r:.60} is not supported; neuromoco deploys CUBA-LIF neurons (CUBA or LOIHI)")
    if _has(group, "messageBits", ctx, "neuron/messageBits"):
        raise ctx.err("neuron/messageBits", "netx reads it as a group wrapper and the Lava run fails; remove the key")
    values = {}
    for key in ("iDecay", "vDecay", "vThMant"):
        arr = _read_array(group, key, ctx)
        assert arr is not None
        if arr.ndim > 1:
            raise ctx.err(f"neuron/{key}", f"must be a scalar or 1-D, got shape {arr.shape}")
        values[key] = _to_int(arr, ctx, f"neuron/{key}")
    extras: list[tuple[str, Scalar]] = []
    for key in sorted(_keys(group, ctx, "neuron")):
        if key in _NEURON_KEYS:
            continue
        item = _child(group, key, ctx, f"neuron/{key}")
        if not isinstance(item, h5py.Dataset):
            raise ctx.err(f"neuron/{key}", "unexpected group inside neuron/")
        extras.append((key, _scalar_extra(_load(item, ctx, f"neuron/{key}"), ctx, f"neuron/{key}")))
    try:
        return CubaNeuron(values["iDecay"], values["vDecay"], values["vThMant"], kind=kind, extras=tuple(extras))
    except IRError as exc:
        raise ctx.err("neuron", str(exc).replace("neuron: ", "")) from None


def _read_dense(g: h5py.Group, ctx: _Ctx, name: str, in_shape: tuple[int, ...]) -> Dense:
    shape = _shape(g, ctx)
    n_out = int(np.prod(shape))
    w = _read_array(g, "weight", ctx)
    assert w is not None
    w = _to_int(w, ctx, "weight", truncate=True)
    if w.ndim == 1:
        if w.size % n_out:
            raise ctx.err("weight", f"{w.size} values cannot be reshaped to ({n_out}, -1)")
        w = w.reshape(n_out, -1)
    if w.ndim != 2 or w.shape[0] != n_out:
        raise ctx.err("weight", f"has shape {w.shape}; expected ({n_out}, inputs)")
    n_in = int(np.prod(in_shape))
    if w.shape[1] != n_in:
        raise ctx.err("weight", f"has {w.shape[1]} inputs but the previous layer gives {n_in}")
    bias = _read_array(g, "bias", ctx, required=False)
    if bias is not None:
        bias = _to_int(bias, ctx, "bias", truncate=True)
        if bias.shape not in ((), (n_out,)):
            raise ctx.err("bias", f"has shape {bias.shape}; expected a scalar or ({n_out},)")
    delay = _read_array(g, "delay", ctx, required=False)
    if delay is not None:
        delay = _to_int(delay, ctx, "delay", truncate=True)
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
    neuron = _read_neuron(_child(g, "neuron", ctx, "neuron"), ctx) if _has(g, "neuron", ctx, "neuron") else None
    return Dense(name, (n_out,), w, bias, neuron, delay)


def _read_conv(g: h5py.Group, ctx: _Ctx, name: str, in_shape: tuple[int, ...]) -> Conv:
    shape = _shape(g, ctx)
    if len(shape) != 3:
        raise ctx.err("shape", f"conv output must be (C, H, W), got {shape}")
    if len(in_shape) != 3:
        raise ctx.err("weight", f"conv input must be (C, H, W), got {in_shape}; add an input layer with the shape")
    w = _read_array(g, "weight", ctx)
    assert w is not None
    w = _to_int(w, ctx, "weight", truncate=True)
    if w.ndim == 5:
        if w.shape[4] != 1:
            raise ctx.err("weight", f"5-D weight must end in a singleton axis, got {w.shape}")
        w = w.reshape(w.shape[:4])
    if w.ndim != 4 or 0 in w.shape:
        raise ctx.err("weight", f"must be 4-D (Cout, Cin/groups, kH, kW) with no empty axis, got shape {w.shape}")
    geometry = {}
    for key in ("stride", "padding", "dilation"):
        arr = _read_array(g, key, ctx)
        assert arr is not None
        arr = _to_int(arr.reshape(-1), ctx, key)
        if arr.size == 1:
            arr = np.repeat(arr, 2)
        if arr.size != 2:
            raise ctx.err(key, f"must be a scalar or an (H, W) pair, got {arr.tolist()}")
        if arr.max() > MAX_CONV_GEOMETRY:
            raise ctx.err(key, f"{arr.tolist()} exceeds the reader's limit of {MAX_CONV_GEOMETRY}; the file is corrupt")
        geometry[key] = (int(arr[0]), int(arr[1]))
    groups_arr = _read_array(g, "groups", ctx)
    assert groups_arr is not None
    groups_arr = _to_int(groups_arr.reshape(-1), ctx, "groups")
    if groups_arr.size != 1:
        raise ctx.err("groups", f"must be a scalar, got {groups_arr.tolist()}")
    bias = _read_array(g, "bias", ctx, required=False)
    if bias is not None:
        bias = _to_int(bias, ctx, "bias", truncate=True)
        whc = (shape[2], shape[1], shape[0])
        if bias.shape == whc:  # netx checks the per-neuron (W, H, C) layout first
            bias = np.ascontiguousarray(bias.transpose(2, 1, 0))
        elif bias.shape != (shape[0],):
            raise ctx.err("bias", f"has shape {bias.shape}; netx accepts ({shape[0]},) per channel or {whc} per neuron (W, H, C)")
    if not _has(g, "neuron", ctx, "neuron"):
        raise ctx.err("neuron", "is missing; netx needs a neuron on every conv layer")
    neuron = _read_neuron(_child(g, "neuron", ctx, "neuron"), ctx)
    return Conv(name, shape, w, geometry["stride"], geometry["padding"], geometry["dilation"],
                int(groups_arr[0]), bias, neuron)


def read_netx(path: str | os.PathLike[str]) -> Network:
    """Read a netx HDF5 file into the IR.

    Args:
        path: the ``.net`` file.

    Returns:
        The network. Layer names are ``{type}{index}`` (``conv1``, ``dense5``).

    Raises:
        ExportError: the file is missing, not HDF5, or a layer is malformed or of
            a type netx cannot build; the message names the file, layer and field.
    """
    ctx = _Ctx(str(path))
    try:
        exists = Path(path).is_file()
    except (OSError, ValueError):  # e.g. a NUL byte in the name
        exists = False
    if not exists:
        raise ExportError(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError, RuntimeError) as exc:
        raise ExportError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        with f:
            return _read_file(f, ctx)
    except (KeyError, OSError, RuntimeError) as exc:  # h5py surfaces corrupt files this way
        raise ctx.err("?", f"corrupt or truncated file ({exc})") from None
    except IRError as exc:
        raise ctx.err("layer", str(exc)) from None


def _read_file(f: h5py.File, ctx: _Ctx) -> Network:
    group = _child(f, "layer", ctx, "layer") if _has(f, "layer", ctx, "layer") else None
    if not isinstance(group, h5py.Group):
        raise ctx.err("layer", "group is missing; this is not a netx network file")
    keys = _keys(group, ctx, "layer")
    count = len(keys)
    if count == 0:
        raise ctx.err("layer", "group is empty")
    expected = {str(i) for i in range(count)}
    if set(keys) != expected:
        shown = sorted(keys, key=lambda k: (len(k), k))
        listed = ", ".join(repr(k)[:24] for k in shown[:12]) + (", ..." if count > 12 else "")
        raise ctx.err("layer", f"layer groups must be named 0..{count - 1}, found {listed}")
    layers: list[Layer] = []
    input_shape: tuple[int, ...] = ()
    shape: tuple[int, ...] | None = None
    prev_shape: tuple[int, ...] | None = None
    pending_flatten = False
    for i in range(count):
        ctx.index, ctx.type = i, ""
        g = _child(group, str(i), ctx, "layer")
        if not isinstance(g, h5py.Group):
            raise ctx.err("layer", "must be a group")
        if not _has(g, "type", ctx, "type"):
            raise ctx.err("type", "is missing")
        kind = _decode_type(_child(g, "type", ctx, "type"), ctx, "type")
        ctx.type = kind
        name = f"{kind}{len(layers)}"
        if kind in _REFUSED_TYPES:
            raise ctx.err("type", f"{kind!r} cannot be deployed: {_REFUSED_TYPES[kind]}")
        if kind == "input":
            if layers or shape is not None:
                raise ctx.err("type", "an input layer may only come first")
            in_shape = _shape(g, ctx)
            if _has(g, "neuron", ctx, "neuron"):
                transform: dict[str, int | None] = {}
                for key in ("weight", "bias"):
                    val = _read_array(g, key, ctx, required=False)
                    if val is not None and val.size != 1:
                        raise ctx.err(key, "input-layer transform must be a scalar")
                    transform[key] = None if val is None else int(_to_int(val.reshape(-1), ctx, key, truncate=True)[0])
                layers.append(InputLayer(name, in_shape, _read_neuron(_child(g, "neuron", ctx, "neuron"), ctx),
                                         transform["weight"], transform["bias"]))
            input_shape = in_shape
            shape = in_shape
        elif kind == "flatten":
            if shape is None:
                raise ctx.err("type", "flatten cannot be the first layer")
            n = int(np.prod(shape))
            if _has(g, "shape", ctx, "shape"):
                declared = _read_array(g, "shape", ctx)
                assert declared is not None
                if int(np.prod(declared.astype(object))) != n:
                    raise ctx.err("shape", f"{declared.tolist()} does not flatten the previous output {shape}")
            layers.append(Flatten(name, (n,)))
            shape = (n,)
            pending_flatten = True
        elif kind == "dense":
            if shape is None:
                n_in = _read_array(g, "weight", ctx)
                assert n_in is not None
                shape = (int(n_in.shape[-1]) if n_in.ndim == 2 else -1,)
                if shape[0] <= 0:
                    raise ctx.err("weight", "the first dense layer needs a 2-D weight (or an input layer)")
                input_shape = shape
                prev_shape = shape
            if len(shape) != 1 and not pending_flatten:
                raise ctx.err("type", f"dense after a {shape} output needs a flatten layer first")
            layer = _read_dense(g, ctx, name, shape)
            layers.append(layer)
            shape = layer.shape
            pending_flatten = False
        elif kind == "conv":
            if shape is None:
                raise ctx.err("type", "conv as the first layer needs an input layer giving the input shape")
            layer_c = _read_conv(g, ctx, name, shape)
            layers.append(layer_c)
            shape = layer_c.shape
        else:
            raise ctx.err("type", f"unknown layer type {kind!r:.60}; netx would silently skip it")
        if layers and layers[-1].name == name:
            try:
                check_layer(layers[-1], len(layers) - 1, None if len(layers) == 1 and kind == "input" else prev_shape)
            except IRError as exc:
                raise ExportError(f"{ctx.where()}: {exc}") from None
        prev_shape = shape
    ctx.index = None
    if not any(isinstance(l, (Dense, Conv, InputLayer)) for l in layers):
        raise ctx.err("layer", "the file has no neuron layers")
    simulation: list[tuple[str, Scalar]] = []
    sim = _child(f, "simulation", ctx, "simulation") if _has(f, "simulation", ctx, "simulation") else None
    if isinstance(sim, h5py.Group):
        for key in sorted(_keys(sim, ctx, "simulation")):
            item = _child(sim, key, ctx, f"simulation/{key}")
            if isinstance(item, h5py.Dataset):
                simulation.append((key, _scalar_extra(_load(item, ctx, f"simulation/{key}"), ctx, f"simulation/{key}")))
    return Network(tuple(layers), input_shape, tuple(simulation))


# ----------------------------------------------------------------------------- writing


def check_writable(net: Network) -> None:
    """Refuse what netx would load wrongly, before anything is written.

    Raises:
        ExportError: naming the layer: dense weights all zero (the loader crashes),
            all <= 0 (netx's weight-bit handling corrupts them), or outside the
            8-bit range netx keeps; biases that do not fit Lava's int16 ``bias_mant``.
    """
    for i, layer in enumerate(net.layers):
        where = net.describe(i)
        if isinstance(layer, Dense):
            w = layer.weight
            wmax, wmin = int(w.max()), int(w.min())
            if wmax == 0 and wmin == 0:
                raise ExportError(f"{where}: all weights are zero; netx's loader crashes on it (OverflowError). Remove the layer or retrain")
            if wmax <= 0:
                raise ExportError(
                    f"{where}: every weight is <= 0; netx's weight-bit optimisation corrupts such a layer "
                    "(reference loihi_netx.md section 6.1). Add one positive weight or retrain"
                )
            if wmin < 0 and (wmax > C.NETX_MIXED_WEIGHT_MAX or wmin < C.NETX_MIXED_WEIGHT_MIN):
                raise ExportError(
                    f"{where}: mixed-sign weights in [{wmin}, {wmax}] exceed netx's "
                    f"[{C.NETX_MIXED_WEIGHT_MIN}, {C.NETX_MIXED_WEIGHT_MAX}] and would be clipped; "
                    "re-quantize with an 8-bit mantissa"
                )
            if wmin >= 0 and wmax > (1 << C.WEIGHT_BITS) - 1:
                raise ExportError(f"{where}: excitatory weights up to {wmax} exceed 255; netx corrupts them. Re-quantize")
        bias = getattr(layer, "bias", None)
        if isinstance(bias, np.ndarray) and bias.size:
            if int(bias.min()) < C.BIAS_STORE_MIN or int(bias.max()) > C.BIAS_STORE_MAX:
                raise ExportError(f"{where}: bias outside int16 would wrap in Lava's bias_mant")


def _put_type(g: h5py.Group, key: str, value: str) -> None:
    g.create_dataset(key, data=np.array([value.encode("ascii")], dtype="S10"))


def _put_neuron(g: h5py.Group, n: CubaNeuron) -> None:
    ng = g.create_group("neuron")
    _put_type(ng, "type", n.kind)
    ng.create_dataset("iDecay", data=np.asarray(n.i_decay, dtype=np.int32))
    ng.create_dataset("vDecay", data=np.asarray(n.v_decay, dtype=np.int32))
    ng.create_dataset("vThMant", data=np.asarray(n.v_th_mant, dtype=np.int32))
    for key, value in n.extras:
        if key == "messageBits":  # never written for CUBA: netx's run fails on it
            continue
        ng.create_dataset(key, data=value)


def _write_layer(g: h5py.Group, layer: Layer, in_shape: tuple[int, ...]) -> None:
    _put_type(g, "type", layer.kind)
    g.create_dataset("shape", data=np.asarray(layer.shape, dtype=np.int64))
    if isinstance(layer, InputLayer):
        if layer.weight is not None:
            g.create_dataset("weight", data=np.int64(layer.weight))
        if layer.bias is not None:
            g.create_dataset("bias", data=np.int64(layer.bias))
        if layer.neuron is not None:
            _put_neuron(g, layer.neuron)
    elif isinstance(layer, Dense):
        g.create_dataset("inFeatures", data=np.int64(layer.weight.shape[1]))
        g.create_dataset("outFeatures", data=np.int64(layer.weight.shape[0]))
        g.create_dataset("weight", data=layer.weight)
        if layer.bias is not None:
            g.create_dataset("bias", data=layer.bias)
        if layer.delay is not None:
            g.create_dataset("delay", data=layer.delay)
        if layer.neuron is not None:
            _put_neuron(g, layer.neuron)
    elif isinstance(layer, Conv):
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


def _default_mode() -> int:
    """The permissions a new file gets under the current umask (mkstemp's are 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_netx(net: Network, path: str | os.PathLike[str]) -> Path:
    """Write ``net`` as a netx HDF5 file that lava-dl's ``netx.hdf5.Network`` loads.

    The file is written to a temporary name and renamed, so an existing file is
    never left half-written. A network whose first layer is not an input layer
    with a neuron gets a shape-only ``input`` layer, so conv-first networks need
    no ``input_shape`` argument in netx.

    Raises:
        ExportError: if a layer cannot be expressed (see :func:`check_writable`)
            or the file cannot be written.
    """
    check_writable(net)
    out = Path(path)
    if not out.parent.exists():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".netx-", suffix=".tmp", dir=out.parent)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write into {out.parent} ({exc.strerror})") from None
    os.close(fd)
    try:
        os.chmod(tmp, _default_mode())
        with h5py.File(tmp, "w") as f:
            lg = f.create_group("layer")
            offset = 0
            if not isinstance(net.layers[0], InputLayer):
                g = lg.create_group("0")
                _put_type(g, "type", "input")
                g.create_dataset("shape", data=np.asarray(net.input_shape, dtype=np.int64))
                offset = 1
            shape = net.input_shape
            for i, layer in enumerate(net.layers):
                _write_layer(lg.create_group(str(i + offset)), layer, shape)
                shape = layer.out_shape
            if net.simulation:
                sg = f.create_group("simulation")
                for key, value in net.simulation:
                    sg.create_dataset(key, data=value)
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
