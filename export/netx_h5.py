"""The h5py boundary of the netx reader: every access to a file goes through here.

A corrupt file, a broken or external link, a name that is not UTF-8 or a dataset
too big to load becomes one :class:`~hw_targets.errors.ExportError` naming the
file, the layer and the field, and nothing from the file is evaluated (only
numbers and strings are read). Used by :mod:`export.netx_read`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from export.ir import IntArray, Scalar
from hw_targets.errors import ExportError

#: Largest dataset the reader loads (elements): a declared shape is checked before any data is read,
#: so a file claiming terabytes (a chunked dataset of fill values, a corrupt dataspace) is refused at once.
MAX_DATASET_ELEMENTS = 1 << 26
#: Largest layer (neurons) the reader accepts: 16 Loihi 2 chips' worth, far beyond what a netx file of a
#: single network describes; a corrupt shape would otherwise make the simulators allocate it.
MAX_LAYER_NEURONS = 1 << 24
#: What h5py raises on corrupt files, broken links and names that are not UTF-8.
_H5_ERRORS = (KeyError, OSError, RuntimeError, ValueError, TypeError)


class Ctx:
    """Where we are in a file, for messages."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.index: int | None = None
        self.type = ""

    def where(self) -> str:
        return self.path if self.index is None else f"{self.path}: layer {self.index} ({safe_name(self.type) or '?'})"

    def err(self, field: str, what: str) -> ExportError:
        return ExportError(f"{self.where()}: '{safe_name(field)}': {what}")


def safe_name(name: str) -> str:
    """A name read from a file, fit for a one-line message: printable, short, control characters escaped."""
    text = name if name.isprintable() else repr(name)[1:-1]
    return text if len(text) <= 60 else text[:57] + "..."


# ----------------------------------------------------------------------------- guarded access


@contextmanager
def h5_guard(ctx: Ctx, field: str, what: str) -> Iterator[None]:
    """h5py's errors on a damaged file become one ExportError: ``field`` ``what`` (and the cause)."""
    try:
        yield
    except ExportError:
        raise
    except _H5_ERRORS as exc:
        raise ctx.err(field, f"{what} ({type(exc).__name__}: {exc})") from None


def member_names(group: h5py.Group, ctx: Ctx, field: str) -> list[str]:
    """The member names of ``group``; every one must be a (UTF-8) string."""
    with h5_guard(ctx, field, "cannot list its members; corrupt file?"):
        keys = list(group.keys())
    for key in keys:
        if not isinstance(key, str):
            raise ctx.err(field, f"has a member whose name is not valid UTF-8 ({key!r:.40})")
    return keys


def has(group: h5py.Group, key: str, ctx: Ctx, field: str) -> bool:
    with h5_guard(ctx, field, "cannot be looked up; corrupt file?"):
        return key in group


def child(group: h5py.Group, key: str, ctx: Ctx, field: str) -> Any:
    """``group[key]`` (a Dataset or Group); external links (which open other files) are refused."""
    with h5_guard(ctx, field, "cannot be opened; corrupt file or broken link?"):
        link = group.get(key, getlink=True)
        if isinstance(link, h5py.ExternalLink):
            raise ctx.err(field, f"is an external link to {link.filename!r:.80}; netx files must be self-contained")
        return group[key]


def load(ds: Any, ctx: Ctx, field: str) -> Any:
    """The value of a dataset, after checking where its data lives and how big it says it is."""
    if not isinstance(ds, h5py.Dataset):
        raise ctx.err(field, "must be a dataset, found a group")
    with h5_guard(ctx, field, "cannot be read; corrupt file?"):
        if ds.external or ds.is_virtual:
            raise ctx.err(field, "keeps its data in other files (external storage or a virtual dataset); "
                                 "netx files must be self-contained")
        shape = ds.shape
        size = 1 if shape is None else int(np.prod([int(s) for s in shape], dtype=object))
        if size > MAX_DATASET_ELEMENTS:
            raise ctx.err(field, f"declares {size} values (shape {shape}), more than the reader's limit of "
                                 f"{MAX_DATASET_ELEMENTS}; the file is corrupt or not a netx network")
        return ds[()]



def decode_type(ds: Any, ctx: Ctx, field: str) -> str:
    if not isinstance(ds, h5py.Dataset):
        raise ctx.err(field, "must be a string dataset")
    value = load(ds, ctx, field)
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


def read_array(group: h5py.Group, key: str, ctx: Ctx, required: bool = True) -> npt.NDArray[Any] | None:
    if not has(group, key, ctx, key):
        if required:
            raise ctx.err(key, "is missing")
        return None
    arr = np.asarray(load(child(group, key, ctx, key), ctx, key))
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise ctx.err(key, f"has dtype {arr.dtype}; expected numbers")
    if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
        raise ctx.err(key, "contains NaN or inf")
    return arr


def to_int(arr: npt.NDArray[Any], ctx: Ctx, key: str, truncate: bool = False) -> IntArray:
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


def read_shape(group: h5py.Group, ctx: Ctx, key: str = "shape") -> tuple[int, ...]:
    arr = read_array(group, key, ctx)
    assert arr is not None
    arr = to_int(arr.reshape(-1), ctx, key)
    if arr.size not in (1, 3) or np.any(arr <= 0):
        raise ctx.err(key, f"must be (N,) or (C, H, W) with positive sizes, got {arr.tolist()}")
    shape = tuple(int(v) for v in arr)
    if int(np.prod(shape, dtype=object)) > MAX_LAYER_NEURONS:
        raise ctx.err(key, f"{list(shape)} is more than the reader's limit of {MAX_LAYER_NEURONS} neurons per layer")
    return shape


def scalar_extra(value: Any, ctx: Ctx, field: str) -> Scalar:
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
