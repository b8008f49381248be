"""One memory-mapped file of framed samples, filled by whichever process frames a sample.

Layout: ``N`` int64 slots (0 = empty, else the CRC32 of the sample's bytes + 1),
padded to a page, then ``N`` int16 frame arrays ``(T, P, H, W)``. The file is
created sparse at full size, so it costs disk only as samples are written.
DataLoader workers write disjoint samples through shared mappings, with no file
per sample (creating thousands of small files is slow on some file systems,
and opening one per read slower still). A sample's slot is written after its
frames; a slot whose CRC does not match its frames (a write cut short by a
crash) reads as empty, with a warning, and the sample is framed again.
"""

from __future__ import annotations

import os
import warnings
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from hw_targets.errors import DataError

_PAGE = 4096
_SLOT = np.dtype(np.int64)
_FRAME = np.dtype(np.int16)


class FrameStore:
    """``N`` samples of ``(T, P, H, W)`` int16 frames in one file; safe to share between processes."""

    def __init__(self, path: Path, count: int, shape: tuple[int, ...]) -> None:
        """Open the store, creating the file if it does not exist.

        Args:
            path: The file (its folder must exist).
            count: ``N``, samples.
            shape: ``(T, P, H, W)`` of one sample.

        Raises:
            DataError: The file exists with another size (another layout), or cannot be created.
        """
        self.path = path
        self.count = count
        self.shape = tuple(shape)
        self._offset = -(-count * _SLOT.itemsize // _PAGE) * _PAGE
        self._size = self._offset + count * int(np.prod(self.shape)) * _FRAME.itemsize
        self._slots: np.memmap | None = None  # type: ignore[type-arg]
        self._frames: np.memmap | None = None  # type: ignore[type-arg]
        if not path.exists():
            self._create()
        actual = path.stat().st_size
        if actual != self._size:
            raise DataError(f"{path}: {actual} bytes, expected {self._size} for {count} samples of {self.shape}; "
                            "delete the file to rebuild it")

    def _create(self) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.truncate(self._size)  # sparse: zero slots, no disk used yet
            os.link(tmp, self.path)  # atomic, and fails if another process made it first
        except FileExistsError:
            pass
        except OSError as exc:
            raise DataError(f"{self.path}: cannot create the frame cache ({exc.strerror})") from None
        finally:
            if tmp.exists():
                tmp.unlink()

    def _open(self) -> None:
        self._slots = np.memmap(self.path, dtype=_SLOT, mode="r+", offset=0, shape=(self.count,))
        self._frames = np.memmap(self.path, dtype=_FRAME, mode="r+", offset=self._offset, shape=(self.count, *self.shape))

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        state["_slots"] = state["_frames"] = None  # each worker maps the file itself
        return state

    def filled(self) -> int:
        """Samples written so far."""
        if self._slots is None:
            self._open()
        assert self._slots is not None
        return int(np.count_nonzero(self._slots))

    def get(self, index: int) -> NDArray[Any] | None:
        """The frames of sample ``index``, or None if not written (or damaged)."""
        if self._slots is None:
            self._open()
        assert self._slots is not None and self._frames is not None
        slot = int(self._slots[index])
        if slot == 0:
            return None
        frames = np.array(self._frames[index])
        if zlib.crc32(frames.tobytes()) + 1 != slot:
            warnings.warn(f"{self.path}: sample {index} is damaged (checksum); framing it again", stacklevel=2)
            return None
        return frames

    def put(self, index: int, frames: NDArray[Any]) -> None:
        """Write the frames of sample ``index`` (``shape``, int16), then mark it written."""
        if self._slots is None:
            self._open()
        assert self._slots is not None and self._frames is not None
        data = np.ascontiguousarray(frames, dtype=_FRAME)
        self._frames[index] = data
        self._slots[index] = zlib.crc32(data.tobytes()) + 1
