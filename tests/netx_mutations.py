"""Mutations of netx files for fuzzing ``export.netx.read_netx``, and the property every case must meet.

Two families, both driven by a ``random.Random`` (seeded per case in
``benchmarks/fuzz_netx.py``, drawn with hypothesis' ``st.randoms()`` in the test
suite), so the tests and the benchmark share them:

- structure-aware: open a copy with h5py and delete, retype, reshape, rename,
  relink or duplicate datasets and groups; write NaN, inf, huge values, strings
  (wrong type names, non-ASCII bytes, Python code), compound and reference
  dtypes, datasets stored in external raw files or declaring terabytes;
- byte-level: bit flips, byte overwrites, truncation, deletions and splices
  of the file's bytes (splices take bytes from the other seed files).

:func:`check_case` is the property: ``read_netx`` returns a ``Network`` or raises
``ExportError`` and nothing else, within a time limit; a returned network
survives ``write_netx`` -> ``read_netx`` unchanged (or ``write_netx`` refuses
with ``ExportError``) and simulates 2 steps of zero input natively (or
``simulate`` refuses with ``SimulationError``; graphs only while
:data:`SIMULATE_GRAPHS`).

Seeds include residual graphs in neuromoco's graph layout (:func:`graph_seed_networks`),
which get graph-specific edits (:func:`_op_graph`: edges, names, header, the layer
group moved) a third of the time.
"""

from __future__ import annotations

import os
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import h5py
import numpy as np

from export.ir import Network, networks_equal
from export.netx import read_netx, write_netx
from hw_targets.errors import ExportError, SimulationError

REPO = Path(__file__).resolve().parents[1]
LAVA_NETX = REPO.parent / "shared" / "data" / "lava_netx"
#: Intel's files (absent in users' clones: callers skip or leave them out).
INTEL_FILES = ("tinynet/tiny.net", "mnist/trained_mnist_network.net", "oxford/network.net", "pilotnet_lif/network.net")
#: Whether check_case simulates networks read from graph files (sims/graph.py, the native graph runner);
#: ``NMOCO_FUZZ_SIMULATE_GRAPHS=0`` reads and round-trips them only.
SIMULATE_GRAPHS = os.environ.get("NMOCO_FUZZ_SIMULATE_GRAPHS", "1") != "0"
#: A case may take this long (read, round trip and a 2-step simulation) before it counts as a hang.
#: Generous on purpose: this guards against hangs, not speed, and CI machines are shared
#: (the first case also loads the compiled simulator kernels).
CASE_SECONDS = 120.0


class Chooser(Protocol):
    def randrange(self, n: int) -> int: ...

    def random(self) -> float: ...


def pick(rng: Chooser, seq: Sequence[Any]) -> Any:
    return seq[rng.randrange(len(seq))]


# ----------------------------------------------------------------------------- seed files


def write_seed_files(folder: Path, intel: bool = True) -> list[Path]:
    """Seed files: our writer's output for several small networks, and copies of Intel's files."""
    from export.examples import small_conv_network
    from netgen import KINDS, random_case

    folder.mkdir(parents=True, exist_ok=True)
    paths = [write_netx(small_conv_network(0, input_shape=(2, 10, 10), classes=4), folder / "small_conv.net")]
    for i, kind in enumerate(KINDS):
        paths.append(write_netx(random_case(100 + i, kind).net, folder / f"gen_{kind}.net"))
    for name, net in graph_seed_networks().items():
        paths.append(write_netx(net, folder / f"graph_{name}.net"))
    if intel:
        for name in INTEL_FILES:
            src = LAVA_NETX / name
            if src.is_file():
                dst = folder / ("intel_" + name.replace("/", "_"))
                shutil.copyfile(src, dst)  # a copy: the shared originals are never opened for writing
                dst.chmod(0o644)
                paths.append(dst)
    return paths


def graph_seed_networks() -> dict[str, Network]:
    """Small residual graphs for the graph layout: conv and dense merges, merges of three sources, an
    input layer with a neuron that a merge reads directly."""
    from export.examples import small_residual_network
    from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer

    neuron = CubaNeuron(np.int32(0), np.int32(410), np.int32(20))
    w = np.random.default_rng(5).integers(-20, 40, size=(2, 2, 3, 3)).astype(np.int32)
    from_input = Network((
        InputLayer("in", (2, 5, 5), neuron),
        Conv("c0", (2, 5, 5), w, padding=(1, 1), neuron=neuron),
        Conv("c1", (2, 5, 5), w, padding=(1, 1), neuron=neuron, sources=("c0", "in")),
        Conv("c2", (2, 5, 5), w, padding=(1, 1), neuron=neuron, sources=("c1", "c0", "in")),
        Flatten("flat", (50,)),
        Dense("fc", (3,), np.random.default_rng(6).integers(-20, 40, size=(3, 50)).astype(np.int32), neuron=neuron),
    ))
    return {"residual": small_residual_network(0, (2, 10, 10), 4, (3, 4), dense_merge=True),
            "residual_conv_only": small_residual_network(1, (1, 8, 8), 3, (2, 2), dense_merge=False),
            "from_input": from_input}


# ----------------------------------------------------------------------------- values


_TYPE_STRINGS = [
    b"dense", b"conv", b"input", b"flatten", b"pool", b"concat", b"average", b"CUBA", b"LOIHI", b"",
    b"dense\x00", b"\xff\xfe", b"Dense", b"conv " * 40, b"__import__('os').system('touch PWNED')",
    b"eval('1+1')", b"${jndi:x}", "d\u00e9nse".encode(),
]
_HUGE = [np.nan, np.inf, -np.inf, 1e30, -1e30, 2.0**31, 2.0**63, -(2.0**63), 1e300, 0.5, -0.5, 4097, 2**17 + 1, -1]


def random_value(rng: Chooser, like: np.ndarray | None) -> Any:
    """A value to write in place of a dataset: any dtype, shape and content, often close to ``like``."""
    kind = rng.randrange(12)
    if kind == 0:  # a string or strings
        s = pick(rng, _TYPE_STRINGS)
        form = rng.randrange(4)
        if form == 0:
            return np.array([s], dtype="S10" if len(s) <= 10 else f"S{max(len(s), 1)}")
        if form == 1:
            try:
                return s.decode("utf-8")  # variable-length UTF-8 string
            except UnicodeDecodeError:
                return np.void(s) if s else np.void(b"\x00")  # opaque bytes
        if form == 2:
            return np.array([s, s], dtype=object if rng.randrange(2) else "S40")
        return np.bytes_(s)
    if kind == 1:  # compound dtype
        return np.array([(1, 2.0)], dtype=[("a", "i4"), ("b", "f8")])
    if kind == 2:  # an empty array of some shape
        return np.zeros(pick(rng, [(0,), (0, 3), (3, 0), (2, 0, 3, 3)]), dtype=pick(rng, ["i4", "f4"]))
    dtype = pick(rng, ["i1", "i2", "i4", "i8", "u1", "u8", "f2", "f4", "f8", "?", "c8"])
    if like is not None and like.dtype.kind in "iufb" and rng.random() < 0.6:
        base = like.astype(np.float64)
        shape: tuple[int, ...] = base.shape
        op = rng.randrange(6)
        if op == 1 and base.ndim:  # one axis bigger or smaller
            axis = rng.randrange(base.ndim)
            shape = tuple(max(0, s + pick(rng, [-1, 1, 5])) if i == axis else s for i, s in enumerate(base.shape))
            base = np.resize(base, shape)
        elif op == 2:  # extra or fewer dimensions
            base = base.reshape(-1) if base.ndim != 1 else base.reshape(1, -1, 1)
        elif op == 3 and base.ndim >= 2:
            base = base.T
        out = base.copy()
        if out.size and rng.random() < 0.7:
            flat = out.reshape(-1)
            for _ in range(1 + rng.randrange(3)):
                flat[rng.randrange(flat.size)] = pick(rng, _HUGE)
        if dtype[0] in "iu?":
            with np.errstate(invalid="ignore", over="ignore"):
                out = np.nan_to_num(out, nan=0, posinf=2**62, neginf=-(2**62))
                out = np.clip(out, -(2.0**62), 2.0**62).astype(dtype) if dtype != "?" else out != 0
            return out
        with np.errstate(over="ignore", invalid="ignore"):
            return out.astype(dtype)
    shape = pick(rng, [(), (1,), (3,), (2,), (4, 4), (3, 3, 3, 3), (1, 1, 1, 1, 1), (5, 1)])
    if dtype == "?":
        return np.ones(shape, dtype=bool)
    value = pick(rng, [0, 1, -1, 7, 4096, 2**20, 2**31 - 1, np.nan, np.inf, 1e30])
    if dtype[0] in "iu":
        value = 0 if not np.isfinite(value) else int(min(max(value, -(2**31)), 2**31 - 1))
        if dtype[0] == "u":
            value = abs(value)
        info = np.iinfo(dtype)
        value = min(max(value, info.min), info.max)
    with np.errstate(over="ignore"):
        return np.full(shape, value, dtype=dtype)


# ----------------------------------------------------------------------------- structure-aware


def _objects(f: h5py.File) -> list[tuple[str, bool]]:
    """Every (path, is_group) reachable by hard links, the root excluded."""
    found: list[tuple[str, bool]] = []

    def walk(group: h5py.Group, prefix: str) -> None:
        for key in group.keys():
            if not isinstance(key, str):
                continue
            link = group.get(key, getlink=True)
            if not isinstance(link, h5py.HardLink):
                continue
            path = f"{prefix}/{key}" if prefix else key
            obj = group[key]
            is_group = isinstance(obj, h5py.Group)
            found.append((path, is_group))
            if is_group:
                walk(obj, path)

    walk(f, "")
    return found


def _read_like(f: h5py.File, path: str) -> np.ndarray | None:
    obj = f[path]
    if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "iufb" and obj.size <= 1 << 20:
        return np.asarray(obj[()])
    return None


def _replace(f: h5py.File, path: str, make: Callable[[h5py.Group, str], Any]) -> None:
    parent_path, _, name = path.rpartition("/")
    parent = f[parent_path] if parent_path else f
    if name in parent:
        del parent[name]
    make(parent, name)


def _op_delete(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    del f[path]
    return f"delete {path}"


def _op_retype(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    like = None if is_group else _read_like(f, path)
    value = random_value(rng, like)
    _replace(f, path, lambda g, n: g.create_dataset(n, data=value))
    return f"set {path} = {type(value).__name__} {getattr(value, 'dtype', '')} {getattr(value, 'shape', '')}"


def _op_to_group(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    def make(g: h5py.Group, n: str) -> None:
        sub = g.create_group(n)
        if rng.randrange(2):
            sub.create_dataset("type", data=np.array([b"dense"], "S10"))

    _replace(f, path, make)
    return f"group at {path}"


def _op_rename(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    parent_path, _, name = path.rpartition("/")
    parent = f[parent_path] if parent_path else f
    new = pick(rng, ["00", "-1", "x", "99", "1", "2", "Layer", "neuron", "weight", "type", "iDecay ", name.upper(),
                     name + "_", "\u00e9"])
    if new == name or new in parent:
        if new in parent and new != name:  # swap the two
            parent.move(name, "__tmp__")
            parent.move(new, name)
            parent.move("__tmp__", new)
            return f"swap {path} <-> {new}"
        return "noop"
    parent.move(name, new)
    return f"rename {path} -> {new}"


def _op_link(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    form = rng.randrange(4)
    if form == 0:
        target = pick(rng, ["/", "/layer", "/layer/0", "/nowhere", "/" + path])
        _replace(f, path, lambda g, n: g.__setitem__(n, h5py.SoftLink(target)))
        return f"softlink {path} -> {target}"
    if form == 1:
        other = scratch / "linked.h5"
        with h5py.File(other, "w") as o:
            o.create_dataset("data", data=np.arange(6, dtype=np.int32))
        name = pick(rng, [str(other), "/nonexistent/file.h5"])
        _replace(f, path, lambda g, n: g.__setitem__(n, h5py.ExternalLink(name, "/data")))
        return f"extlink {path} -> {name}"
    if form == 2:  # raw data stored in another file (could be any file on the machine)
        raw = scratch / "raw.bin"
        raw.write_bytes(np.arange(16, dtype=np.int32).tobytes())
        _replace(f, path, lambda g, n: g.create_dataset(n, shape=(4,), dtype="i4", external=[(str(raw), 0, 16)]))
        return f"external-storage {path}"
    # a chunked dataset declaring far more data than the file holds (all fill value)
    shape = pick(rng, [(1 << 40,), (1 << 20, 1 << 20), (1 << 31,)])
    _replace(f, path, lambda g, n: g.create_dataset(n, shape=shape, dtype="f4", chunks=(1,) * len(shape), fillvalue=1.0))
    return f"huge {path} {shape}"


def _op_scale(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    like = _read_like(f, path) if not is_group else None
    if like is None:
        return _op_retype(rng, f, path, is_group, scratch)
    factor = pick(rng, [0, -1, 2, 1000, 1e9, 0.5, np.nan])
    with np.errstate(all="ignore"):
        value = (like.astype(np.float64) * factor).astype(like.dtype if like.dtype.kind == "f" else np.float64)
    _replace(f, path, lambda g, n: g.create_dataset(n, data=value))
    return f"scale {path} x{factor}"


def _op_values(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    """Same shape and dtype, other numbers: the edit most likely to leave a loadable network."""
    like = _read_like(f, path) if not is_group else None
    if like is None or like.size == 0:
        return _op_retype(rng, f, path, is_group, scratch)
    value = like.copy()
    flat = value.reshape(-1)
    if like.dtype.kind == "b":
        flat[rng.randrange(flat.size)] ^= True
    else:
        choices = [0, 1, -1, 2, 3, 63, 64, 127, -128, 255, 256, 4095, 4096, 4097, 131071, 131072, 32767, -32768]
        if like.dtype.kind == "f":
            choices += [0.5, -0.5, 1e-3, np.nan, np.inf]
        info = np.iinfo(like.dtype) if like.dtype.kind in "iu" else None
        for _ in range(1 + rng.randrange(4)):
            v = pick(rng, choices)
            if info is not None:
                v = min(max(int(v), info.min), info.max)
            flat[rng.randrange(flat.size)] = v
    _replace(f, path, lambda g, n: g.create_dataset(n, data=value))
    return f"values {path}"


def _op_add(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    group = f[path] if is_group else f[path.rpartition("/")[0] or "/"]
    name = pick(rng, ["extra", "messageBits", "neuron", "bias", "delay", "type", "simulation", "0", "99",
                      b"\xff\xfe", "a" * 300, "Ts"])
    if name in list(group.keys()):  # (`in group` itself fails on a non-UTF-8 name)
        if isinstance(name, bytes):
            return "noop"
        return _op_retype(rng, f, f"{group.name.strip('/')}/{name}".strip("/"), False, scratch)
    value = random_value(rng, None)
    if rng.randrange(4) == 0:
        group.create_group(name)
    else:
        group.create_dataset(name, data=value)
    return f"add {group.name}/{name!r}"


def _op_layers(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    """Layer-list edits: drop the tail, duplicate a layer, swap two, move one to a gap."""
    key = "layer" if "layer" in f else "graph/layer"
    if key not in f or not isinstance(f[key], h5py.Group):
        return "noop"
    lg = f[key]
    keys = sorted((k for k in lg.keys() if isinstance(k, str) and k.isdigit()), key=int)
    if not keys:
        return "noop"
    form = rng.randrange(4)
    if form == 0:
        keep = rng.randrange(len(keys))
        for k in keys[keep:]:
            del lg[k]
        return f"keep first {keep} layers"
    if form == 1:
        src = pick(rng, keys)
        lg.copy(lg[src], str(len(keys)))
        return f"duplicate layer {src} at the end"
    if form == 2 and len(keys) > 1:
        a, b = pick(rng, keys), pick(rng, keys)
        if a != b:
            lg.move(a, "__tmp__")
            lg.move(b, a)
            lg.move("__tmp__", b)
        return f"swap layers {a} {b}"
    k = pick(rng, keys)
    lg.move(k, str(len(keys) + rng.randrange(3)))
    return f"move layer {k}"


def _graph_layers(f: h5py.File) -> tuple[h5py.Group, list[str]] | None:
    if "graph/layer" not in f or not isinstance(f["graph/layer"], h5py.Group):
        return None
    lg = f["graph/layer"]
    return lg, sorted((k for k in lg.keys() if isinstance(k, str) and k.isdigit()), key=int)


def _op_graph(rng: Chooser, f: h5py.File, path: str, is_group: bool, scratch: Path) -> str:
    """Edits of the graph layout: edges (sources) added, dropped, pointed anywhere, given odd dtypes;
    names dropped, repeated or odd; the header changed; the layer group moved to or beside ``layer``."""
    found = _graph_layers(f)
    if found is None or not found[1]:
        return _op_layers(rng, f, path, is_group, scratch)
    lg, keys = found
    k = pick(rng, keys)
    g = lg[k]
    if not isinstance(g, h5py.Group):
        return "noop"
    n = len(keys)
    form = rng.randrange(10)
    if form <= 2:  # an edge list: any indices, often plausible ones
        size = pick(rng, (1, 1, 2, 2, 3))
        values = [pick(rng, [int(k) - 1, int(k) - 2, int(k) - 3, 0, 1, int(k), int(k) + 1, n, -1, n + 5])
                  for _ in range(size)]
        dtype = pick(rng, ["i8", "i8", "i8", "i4", "u1", "f8", "?"])
        with np.errstate(all="ignore"):
            value: Any = np.asarray(values).astype(dtype)
        if rng.randrange(6) == 0:
            value = value.reshape(1, -1) if rng.randrange(2) else np.zeros(0, dtype)
        _replace(f, f"graph/layer/{k}/sources", lambda p, name: p.create_dataset(name, data=value))
        return f"sources of layer {k} = {values} {dtype}"
    if form == 3:  # drop an edge list (or all of them)
        targets = [x for x in keys if isinstance(lg[x], h5py.Group) and "sources" in lg[x]]
        if not targets:
            return "noop"
        chosen = targets if rng.randrange(3) == 0 else [pick(rng, targets)]
        for x in chosen:
            del lg[x]["sources"]
        return f"delete sources of layers {chosen}"
    if form == 4:  # names: drop, repeat another's, odd strings
        other = lg[pick(rng, keys)]
        names = ["", "a\nb", "x" * 300, "caf\u00e9", "stem", "0", 7]
        if isinstance(other, h5py.Group) and "name" in other:
            names.append(other["name"][()])
        if rng.randrange(4) == 0 and "name" in g:
            del g["name"]
            return f"delete name of layer {k}"
        value = pick(rng, names)
        _replace(f, f"graph/layer/{k}/name", lambda p, name: p.create_dataset(name, data=value))
        return f"name of layer {k} = {value!r:.40}"
    if form == 5:
        value = pick(rng, [np.bytes_(b"neuromoco-graph2"), np.bytes_(b""), "neuromoco-graph", np.int64(1),
                           np.array([b"neuromoco-graph"], "S20")])
        _replace(f, "graph/format", lambda p, name: p.create_dataset(name, data=value))
        return f"graph/format = {value!r:.40}"
    if form == 6:
        value = pick(rng, [np.int64(0), np.int64(2), 1.0, np.array([1, 1]), np.int8(1), b"1"])
        _replace(f, "graph/version", lambda p, name: p.create_dataset(name, data=value))
        return f"graph/version = {value!r:.40}"
    if form == 7:  # the layers as a netx chain (names and sources kept), or beside the graph
        if "layer" in f:
            return "noop"
        if rng.randrange(2):
            f.copy("graph/layer", "layer")
            return "copy graph/layer to layer"
        f.move("graph/layer", "layer")
        return "move graph/layer to layer"
    if form == 8 and "sources" in g:  # a merge source replaced by another layer of any shape
        old = np.asarray(g["sources"][()]).reshape(-1)
        if old.size:
            old = old.copy()
            old[rng.randrange(old.size)] = rng.randrange(max(int(k), 1))
            _replace(f, f"graph/layer/{k}/sources", lambda p, name: p.create_dataset(name, data=old))
            return f"sources of layer {k} -> {old.tolist()}"
    return _op_layers(rng, f, path, is_group, scratch)


_STRUCT_OPS = (_op_delete, _op_retype, _op_retype, _op_values, _op_values, _op_values, _op_to_group, _op_rename,
               _op_link, _op_scale, _op_add, _op_add, _op_layers)


def mutate_structure(rng: Chooser, src: Path, dst: Path, scratch: Path) -> list[str]:
    """Copy ``src`` to ``dst`` and apply 1-3 structural edits to the copy; returns what was done."""
    shutil.copyfile(src, dst)
    dst.chmod(0o644)
    done: list[str] = []
    with h5py.File(dst, "r+") as f:
        for _ in range(pick(rng, (1, 1, 1, 1, 1, 1, 2, 2, 2, 3))):
            objects = _objects(f)
            if not objects:
                break
            path, is_group = pick(rng, objects)
            # graph files get graph edits a third of the time, besides everything chains get
            op = _op_graph if "graph" in f and rng.randrange(3) == 0 else pick(rng, _STRUCT_OPS)
            try:
                done.append(op(rng, f, path, is_group, scratch))
            except (KeyError, ValueError, TypeError, RuntimeError, OSError) as exc:  # h5py refused the edit itself
                done.append(f"{op.__name__} {path} not applied ({type(exc).__name__})")
    return done


# ----------------------------------------------------------------------------- byte-level


def mutate_bytes(rng: Chooser, data: bytes, others: Sequence[bytes]) -> tuple[bytes, str]:
    """One byte-level mutation of a file's bytes: flips, overwrites, truncation, deletion or a splice."""
    b = bytearray(data)
    op = rng.randrange(6)
    n = 1 + rng.randrange(8)
    head = rng.random() < 0.5  # half the edits hit the first 4 KiB: superblock, object headers, B-trees
    span = min(len(b), 4096) if head else len(b)
    if op == 0:
        for _ in range(n):
            b[rng.randrange(span)] ^= 1 << rng.randrange(8)
        what = f"flip {n} bits"
    elif op == 1:
        for _ in range(n):
            b[rng.randrange(span)] = pick(rng, [0, 0xFF, 0x7F, 0x80, 0x01, rng.randrange(256)])
        what = f"overwrite {n} bytes"
    elif op == 2:
        cut = rng.randrange(len(b))
        b = b[:cut]
        what = f"truncate at {cut}"
    elif op == 3:
        i, length = rng.randrange(span), 1 + rng.randrange(64)
        del b[i : i + length]
        what = f"delete {length} at {i}"
    elif op == 4:
        other = pick(rng, others)
        i, j, length = rng.randrange(span), rng.randrange(len(other)), 1 + rng.randrange(512)
        b[i : i + length] = other[j : j + length]
        what = f"splice {length} at {i}"
    else:
        i = rng.randrange(span)
        length = 1 + rng.randrange(16)
        b[i:i] = bytes(rng.randrange(256) for _ in range(length))
        what = f"insert {length} at {i}"
    return bytes(b), what


# ----------------------------------------------------------------------------- the property


@dataclass
class Outcome:
    """What one case did: ``network`` (read, round-tripped, simulated) or ``refused`` (a clean ExportError)."""

    kind: str
    seconds: float
    message: str = ""


def check_case(path: Path, scratch: Path, limit: float = CASE_SECONDS) -> Outcome:
    """The fuzz property on one file; raises AssertionError (or the leaked exception) when it fails."""
    from sims.native import simulate

    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            net = read_netx(path)
        except ExportError as exc:
            message = str(exc)
            assert "\n" not in message, f"multi-line error: {message!r}"
            assert str(path) in message, f"error does not name the file: {message!r}"
            elapsed = time.perf_counter() - start
            assert elapsed < limit, f"read took {elapsed:.1f} s"
            return Outcome("refused", elapsed, message)
        assert isinstance(net, Network)
        again = scratch / "roundtrip.net"
        try:
            write_netx(net, again)
        except ExportError:
            pass
        else:
            back = read_netx(again)
            assert networks_equal(back, net), "write_netx -> read_netx changed the network"
        if SIMULATE_GRAPHS or not net.is_graph:
            try:
                simulate(net, np.zeros((2, *net.input_shape), dtype=np.int32), 2)
            except SimulationError:
                pass
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"case took {elapsed:.1f} s"
    return Outcome("network", elapsed)
