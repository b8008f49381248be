"""Fixtures of the data tests: a private cache, the shared real recordings, writers of published formats.

No original CIFAR10-DVS or DVS128 Gesture recording is small enough to share,
so those decoders are tested on files written here in the published formats:
AEDAT 2.0 with jAER's DVS128 address map, AEDAT 3.1 packets as cAER writes
them, and the 40-bit ATIS layout of N-MNIST/N-Caltech101.
"""

from __future__ import annotations

import struct
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np
import pytest

REAL_EVENTS = (Path(__file__).resolve().parents[3] / "../shared/data/real_events").resolve()


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One cache folder for the session (``ndigits`` is generated once)."""
    return tmp_path_factory.mktemp("nmoco_cache")


@pytest.fixture(scope="module", autouse=True)
def private_cache(session_cache: Path) -> Iterator[Path]:
    """Every test writes its cache under a temporary folder, never under the home folder.

    Module-scoped and autouse, so module-scoped fixtures that build datasets run after it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NMOCO_CACHE", str(session_cache))
        yield session_cache


@pytest.fixture
def real_events() -> Path:
    """``../shared/data/real_events``, or skip when the checkout has no ``../shared``."""
    if not REAL_EVENTS.is_dir():
        pytest.skip(f"{REAL_EVENTS} is absent (users' clones have no ../shared)")
    return REAL_EVENTS


def dvs128_address(x: np.ndarray, y: np.ndarray, on: np.ndarray) -> np.ndarray:
    """jAER DVS128 raw addresses for image coordinates (x from the left, y from the top, ON)."""
    x_raw = 127 - np.asarray(x, dtype=np.int64)  # jAER: x = 127 - bits 1..7
    y_raw = 127 - np.asarray(y, dtype=np.int64)  # jAER counts y from the bottom
    return (y_raw << 8) | (x_raw << 1) | np.where(on, 0, 1)


def _write_aedat2(path: Path, addresses: np.ndarray, timestamps: np.ndarray) -> Path:
    header = (
        b"#!AER-DAT2.0\r\n"
        b"# This is a raw AE data file - do not edit\r\n"
        b"# Data format is int32 address, int32 timestamp (8 bytes total), repeated for each event\r\n"
        b"# Timestamps tick is 1 us\r\n"
        b"# created Mon Nov 23 00:00:00 UTC 2026\r\n"
    )
    body = np.empty(len(addresses), dtype=[("address", ">u4"), ("timeStamp", ">u4")])
    body["address"], body["timeStamp"] = addresses, timestamps
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(header + body.tobytes())
    return path


def _write_aedat31(path: Path, packets: list[dict]) -> Path:  # type: ignore[type-arg]
    """Each packet: ``type``, ``overflow`` and ``words`` (``(n, 2)`` uint32: data, timestamp)."""
    out = bytearray(b"#!AER-DAT3.1\r\n#Format: RAW\r\n#Source 1: DVS128\r\n#Start-Time: 2026-11-23 00:00:00\r\n#!END-HEADER\r\n")
    for packet in packets:
        words = np.asarray(packet["words"], dtype="<u4").reshape(-1, 2)
        n = len(words)
        out += struct.pack("<HHIIIIII", packet["type"], 1, 8, 4, packet.get("overflow", 0), n, n, n)
        out += words.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(out))
    return path


def polarity_words(x: np.ndarray, y: np.ndarray, on: np.ndarray, t: np.ndarray, valid: bool = True) -> np.ndarray:
    """AEDAT 3.1 polarity events: data word ``x << 17 | y << 2 | p << 1 | valid`` and timestamp."""
    data = (np.asarray(x, np.int64) << 17) | (np.asarray(y, np.int64) << 2) | (np.asarray(on, np.int64) << 1) | int(valid)
    return np.stack([data, np.asarray(t, np.int64)], axis=1).astype(np.uint32)


def _write_atis(path: Path, x: np.ndarray, y: np.ndarray, on: np.ndarray, t: np.ndarray) -> Path:
    """N-MNIST 40-bit events: x, y, polarity bit 7 + 23-bit timestamp (no overflow markers)."""
    t = np.asarray(t, dtype=np.int64)
    assert t.max(initial=0) < 2**23
    raw = np.zeros((len(t), 5), dtype=np.uint8)
    raw[:, 0], raw[:, 1] = x, y
    raw[:, 2] = (np.asarray(on, np.int64) << 7) | (t >> 16)
    raw[:, 3], raw[:, 4] = (t >> 8) & 0xFF, t & 0xFF
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(raw.tobytes())
    return path


def random_events(rng: np.random.Generator, n: int, size: int = 128, duration_us: int = 100_000):  # type: ignore[no-untyped-def]
    """Sorted random events ``(x, y, on, t)`` on a ``size x size`` sensor."""
    t = np.sort(rng.integers(0, duration_us, n))
    return rng.integers(0, size, n), rng.integers(0, size, n), rng.random(n) < 0.5, t


@pytest.fixture
def formats() -> SimpleNamespace:
    """Writers of the published formats and address helpers (see the module docstring)."""
    return SimpleNamespace(
        write_aedat2=_write_aedat2,
        write_aedat31=_write_aedat31,
        write_atis=_write_atis,
        dvs128_address=dvs128_address,
        polarity_words=polarity_words,
        random_events=random_events,
    )
