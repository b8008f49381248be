"""Event-file readers: one convention for x, y and polarity, whatever the format.

**Convention.** Events are tonic's structured array (:data:`EVENT_DTYPE`:
``x``, ``y`` int16, ``t`` int64 microseconds, ``p`` bool), with image
coordinates: ``x`` is the column counted from the left, ``y`` the row counted
from the top (so ``frame[y, x]`` shows the scene upright, as ``imshow`` draws
it), and ``p`` is True for an ON event (brightness increase).

Formats and how each maps onto that convention:

- **ATIS ``.bin``** (N-MNIST, N-Caltech101; 40 bits per event): tonic's
  :func:`tonic.io.read_mnist_file`, unchanged: bit 23 set is ON, rows from the top.
- **AEDAT 2.0** (CIFAR10-DVS, recorded with a DVS128 through jAER): tonic's
  header and address readers, then jAER's DVS128 address map (``DVS128.java``:
  ``x = 127 - bits 1..7``, ``y = bits 8..14`` counted from the *bottom*, ON when
  bit 0 is 0; bit 15 marks external/stereo events, which are not pixels).
  tonic's ``read_dvs_128`` swaps x and y against that map and crashes on its
  own three-value header reader in tonic 1.7.0, so it is not used. The jAER
  ``y`` is turned into a row from the top: ``y = 127 - bits 8..14``.
- **AEDAT 3.1** (DVS128 Gesture, written by cAER/jAER): tonic's header reader,
  then a walk over the packets. tonic's ``get_aer_events_from_file`` reads every
  packet as polarity events and drops the timestamp overflow; here only
  polarity packets (type 1) are read, with their event size, validity bit and
  ``tsOverflow``: ``x = bits 17..31``, ``y = bits 2..16`` (origin top-left in
  AEDAT 3), ON when bit 1 is set.
- **tonic re-exports**: DVS128 Gesture ``.npy`` (columns x, y, p, t in ms) and
  CIFAR10-DVS ``.aedat4`` (needs the ``aedat`` package), taken as tonic gives them.

Every reader returns events sorted by time. Structural damage (wrong size,
bad header, a packet running past the end) raises :class:`DataError`; the
dataset index calls :func:`check_file` to skip such files with a warning.
"""

from __future__ import annotations

from typing import Any

import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
import tonic.io

from hw_targets.errors import DataError, MissingDependencyError

EVENT_DTYPE = tonic.io.events_struct  # x int16, y int16, t int64 (us), p bool

#: DVS128 pixel array, the sensor of CIFAR10-DVS and DVS128 Gesture.
DVS128_SIZE = 128
#: AEDAT 3.1 polarity event packet type.
_AEDAT3_POLARITY = 1
_AEDAT3_HEADER_BYTES = 28
_ATIS_EVENT_BYTES = 5
_AEDAT2_EVENT_BYTES = 8
_READ_ERRORS = (OSError, ValueError, IndexError, UnboundLocalError, AssertionError, NotImplementedError)


def make_events(x: NDArray[Any], y: NDArray[Any], t: NDArray[Any], p: NDArray[Any]) -> NDArray[Any]:
    """Build a structured event array (stable-sorted by ``t`` if it is not already).

    Args:
        x: Columns.
        y: Rows from the top.
        t: Microseconds.
        p: True/1 for ON.

    Returns:
        ``(N,)`` array of :data:`EVENT_DTYPE`.
    """
    events = np.empty(len(t), dtype=EVENT_DTYPE)
    events["x"], events["y"], events["t"], events["p"] = x, y, t, np.asarray(p).astype(bool)
    if len(events) > 1 and np.any(np.diff(events["t"]) < 0):
        events = events[np.argsort(events["t"], kind="stable")]
    return events


def file_format(path: Path) -> str:
    """``atis``, ``aedat2``, ``aedat31``, ``aedat4`` or ``npy`` from the name and, for ``.aedat``, the header.

    Raises:
        DataError: Unknown extension or an ``.aedat`` header without a version.
    """
    suffix = path.suffix.lower()
    if suffix == ".bin":
        return "atis"
    if suffix == ".aedat4":
        return "aedat4"
    if suffix == ".npy":
        return "npy"
    if suffix == ".aedat":
        version, _ = _aedat_header(path)
        if 2 <= version < 3:
            return "aedat2"
        if 3 <= version < 4:
            return "aedat31"
        raise DataError(f"{path}: AEDAT version {version} is not supported (expected 2.0 or 3.1)")
    raise DataError(f"{path}: unknown event file type {suffix!r} (expected .bin, .aedat, .aedat4 or .npy)")


def _aedat_header(path: Path) -> tuple[float, int]:
    """``(version, data_start)`` from tonic's header reader, with its failures made DataErrors."""
    try:
        version, data_start, _ = tonic.io.read_aedat_header_from_file(str(path))
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: unreadable AEDAT header ({type(exc).__name__}: {exc})") from None
    return float(version), int(data_start)


def check_file(path: Path) -> None:
    """Cheap structural check of one event file (sizes and headers, not every event).

    Raises:
        DataError: The file is empty, truncated or has a broken header (names the file and why).
    """
    fmt = file_format(path)
    size = path.stat().st_size
    if fmt == "atis":
        if size == 0 or size % _ATIS_EVENT_BYTES:
            raise DataError(f"{path}: {size} bytes is not a whole number of 5-byte ATIS events (truncated?)")
    elif fmt == "aedat2":
        _, start = _aedat_header(path)
        if size <= start or (size - start) % _AEDAT2_EVENT_BYTES:
            raise DataError(f"{path}: {size - start} data bytes is not a whole number of 8-byte AEDAT 2.0 events")
    elif fmt == "aedat31":
        _, start = _aedat_header(path)
        _aedat31_packets(path, start, size)
    elif fmt == "npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise DataError(f"{path}: unreadable .npy ({exc})") from None
        if array.ndim != 2 or array.shape[1] != 4:
            raise DataError(f"{path}: expected an (N, 4) array of x, y, p, t; got shape {array.shape}")
    elif size == 0:
        raise DataError(f"{path}: empty file")


def read_events(path: Path) -> NDArray[Any]:
    """Read any supported event file in the project's convention.

    Raises:
        DataError: The file cannot be parsed (names it).
        MissingDependencyError: ``.aedat4`` without the ``aedat`` package.
    """
    readers = {
        "atis": read_atis_bin,
        "aedat2": read_aedat2_dvs128,
        "aedat31": read_aedat31_polarity,
        "aedat4": read_aedat4,
        "npy": read_gesture_npy,
    }
    return readers[file_format(path)](path)


def read_atis_bin(path: Path) -> NDArray[Any]:
    """N-MNIST / N-Caltech101 40-bit ATIS events through tonic (overflow markers removed).

    Raises:
        DataError: Truncated or unreadable file.
    """
    size = path.stat().st_size
    if size % _ATIS_EVENT_BYTES:
        raise DataError(f"{path}: {size} bytes is not a whole number of 5-byte ATIS events (truncated?)")
    try:
        events = tonic.io.read_mnist_file(str(path), dtype=EVENT_DTYPE)
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: unreadable ATIS file ({exc})") from None
    return make_events(events["x"], events["y"], events["t"], events["p"])


def read_aedat2_dvs128(path: Path) -> NDArray[Any]:
    """CIFAR10-DVS AEDAT 2.0 through tonic's readers and jAER's DVS128 address map.

    Raises:
        DataError: Not AEDAT 2.x, or truncated.
    """
    version, start = _aedat_header(path)
    if not 2 <= version < 3:
        raise DataError(f"{path}: AEDAT {version}, expected 2.0")
    size = path.stat().st_size
    if (size - start) % _AEDAT2_EVENT_BYTES:
        raise DataError(f"{path}: {size - start} data bytes is not a whole number of 8-byte AEDAT 2.0 events")
    try:
        raw = tonic.io.get_aer_events_from_file(str(path), version, start)
    except _READ_ERRORS as exc:
        raise DataError(f"{path}: unreadable AEDAT 2.0 data ({exc})") from None
    addr = raw["address"].astype(np.int64)
    pixel = (addr >> 15) == 0  # bit 15 and up: external/stereo events, not pixels
    addr = addr[pixel]
    top = DVS128_SIZE - 1
    x = top - ((addr >> 1) & 0x7F)
    y = top - ((addr >> 8) & 0x7F)  # jAER counts y from the bottom
    return make_events(x, y, raw["timeStamp"][pixel].astype(np.int64), (addr & 1) == 0)


def _aedat31_packets(path: Path, start: int, size: int) -> list[tuple[int, int, int, int, int]]:
    """Packet headers of an AEDAT 3.1 file: ``(type, event_size, ts_overflow, capacity, payload_offset)``.

    Raises:
        DataError: A header or payload runs past the end of the file.
    """
    packets = []
    with open(path, "rb") as handle:
        pos = start
        while pos < size:
            handle.seek(pos)
            header = handle.read(_AEDAT3_HEADER_BYTES)
            if len(header) < _AEDAT3_HEADER_BYTES:
                raise DataError(f"{path}: AEDAT 3.1 packet header at byte {pos} is cut short (truncated file)")
            kind = int(np.frombuffer(header[0:2], "<u2")[0])
            event_size, _, overflow, capacity = (int(v) for v in np.frombuffer(header[4:20], "<u4"))
            end = pos + _AEDAT3_HEADER_BYTES + event_size * capacity
            if event_size == 0 or end > size:
                raise DataError(f"{path}: AEDAT 3.1 packet at byte {pos} runs past the end (truncated file)")
            packets.append((kind, event_size, overflow, capacity, pos + _AEDAT3_HEADER_BYTES))
            pos = end
    return packets


def read_aedat31_polarity(path: Path) -> NDArray[Any]:
    """DVS128 Gesture AEDAT 3.1: valid polarity events of every polarity packet.

    Raises:
        DataError: Not AEDAT 3.x, truncated, or without polarity packets.
    """
    version, start = _aedat_header(path)
    if not 3 <= version < 4:
        raise DataError(f"{path}: AEDAT {version}, expected 3.1")
    size = path.stat().st_size
    packets = _aedat31_packets(path, start, size)
    data = np.fromfile(path, dtype=np.uint8)
    columns: list[tuple[NDArray[Any], NDArray[Any]]] = []
    for kind, event_size, overflow, capacity, offset in packets:
        if kind != _AEDAT3_POLARITY or event_size < 8:
            continue
        block = data[offset : offset + event_size * capacity].reshape(capacity, event_size)[:, :8]
        words = np.ascontiguousarray(block).view("<u4")  # (capacity, 2): data, timestamp
        valid = (words[:, 0] & 1) == 1
        timestamps = (np.int64(overflow) << 31) | words[valid, 1].astype(np.int64)
        columns.append((words[valid, 0].astype(np.int64), timestamps))
    if not columns:
        raise DataError(f"{path}: no polarity event packet (type 1) in this AEDAT 3.1 file")
    addr = np.concatenate([c[0] for c in columns])
    t = np.concatenate([c[1] for c in columns])
    return make_events((addr >> 17) & 0x7FFF, (addr >> 2) & 0x7FFF, t, ((addr >> 1) & 1) == 1)


def read_gesture_labels(path: Path) -> NDArray[Any]:
    """A DVS128 Gesture ``_labels.csv``: ``class,startTime_usec,endTime_usec`` per gesture.

    Returns:
        ``(K, 3)`` int64: class (1..11), start and end in microseconds.

    Raises:
        DataError: Unreadable, a class outside 1..11, or a window with end <= start.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file; handled below
            table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable gesture labels ({exc})") from None
    if table.shape[0] == 0 or table.shape[1] != 3:
        raise DataError(f"{path}: expected rows of class,startTime_usec,endTime_usec; got shape {table.shape}")
    if table[:, 0].min() < 1 or table[:, 0].max() > 11:
        raise DataError(f"{path}: gesture classes must be 1..11, found {sorted(set(table[:, 0].tolist()))}")
    if np.any(table[:, 2] <= table[:, 1]):
        raise DataError(f"{path}: a gesture window ends before it starts")
    return table


def read_gesture_npy(path: Path) -> NDArray[Any]:
    """tonic's re-exported DVS128 Gesture sample: an ``(N, 4)`` array of x, y, p, t (milliseconds).

    Raises:
        DataError: Unreadable or wrong shape.
    """
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable .npy ({exc})") from None
    if array.ndim != 2 or array.shape[1] != 4:
        raise DataError(f"{path}: expected an (N, 4) array of x, y, p, t; got shape {array.shape}")
    t_us = np.round(array[:, 3].astype(np.float64) * 1000.0).astype(np.int64)  # tonic stores ms
    return make_events(array[:, 0], array[:, 1], t_us, array[:, 2] > 0)


def read_aedat4(path: Path) -> NDArray[Any]:
    """tonic's re-exported CIFAR10-DVS ``.aedat4`` (polarity stream), via tonic and ``aedat``.

    Raises:
        MissingDependencyError: The ``aedat`` package is not installed.
        DataError: Unreadable file.
    """
    try:
        import aedat  # noqa: F401  (tonic.io.read_aedat4 imports it)
    except ImportError:
        raise MissingDependencyError(
            f"{path}: reading .aedat4 needs the 'aedat' package (pip install aedat), "
            "or point --data-root at the original AEDAT 2.0 recordings"
        ) from None
    try:
        raw = tonic.io.read_aedat4(str(path))
    except Exception as exc:  # the Rust decoder raises its own types
        raise DataError(f"{path}: unreadable AEDAT4 file ({exc})") from None
    return make_events(raw["x"], raw["y"], raw["t"].astype(np.int64), raw["on"] if "on" in raw.dtype.names else raw["p"])


def clip_to_sensor(events: NDArray[Any], width: int, height: int, path: Path | str) -> NDArray[Any]:
    """Drop events outside the sensor, warning with the file name and the count.

    Args:
        events: Events in the project's convention.
        width: Sensor columns.
        height: Sensor rows.
        path: The file, for the warning.

    Returns:
        The events inside ``[0, width) x [0, height)``.
    """
    inside = (events["x"] >= 0) & (events["x"] < width) & (events["y"] >= 0) & (events["y"] < height)
    dropped = len(events) - int(inside.sum())
    if dropped:
        warnings.warn(f"{path}: dropped {dropped} of {len(events)} events outside the {width}x{height} sensor", stacklevel=2)
        return events[inside]
    return events
