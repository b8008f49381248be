"""Events to frames: ``T`` frames x 2 polarity channels, cached so later epochs read no events.

Framing is tonic's: :class:`tonic.transforms.Downsample` bins the events to the
model's input size (events are binned, so counts are summed, not resampled),
then :class:`tonic.transforms.ToFrame` accumulates them per time bin and
polarity. Frames are stored as int16 event counts (tonic's ``ToFrame`` dtype)
and turned into float32 count or binary frames when read.
"""

from __future__ import annotations

from typing import Any

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
import torch
import tonic.transforms
from torch.utils.data import Dataset

from neuromoco.data.sources import EventSource
from neuromoco.data.store import FrameStore

#: Bump when framing changes what a cached frame holds.
FRAMING_VERSION = 1


@dataclass(frozen=True)
class FrameSpec:
    """How one sample's events become frames.

    Attributes:
        sensor_size: ``(W, H, P)`` of the recording.
        n_time_bins: ``T``.
        time_window_us: Frame length in microseconds from the first event, or None for
            ``T`` equal spans of the recording.
        size: ``(H, W)`` output, or None for the sensor size.
    """

    sensor_size: tuple[int, int, int]
    n_time_bins: int
    time_window_us: float | None
    size: tuple[int, int] | None

    @property
    def out_hw(self) -> tuple[int, int]:
        """``(H, W)`` of the frames."""
        return self.size if self.size is not None else (self.sensor_size[1], self.sensor_size[0])

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(T, P, H, W)`` of one sample's frames."""
        return (self.n_time_bins, self.sensor_size[2], *self.out_hw)

    def key(self) -> dict[str, object]:
        """Everything that changes the frames (cache keys)."""
        return {"v": FRAMING_VERSION, "sensor": self.sensor_size, "T": self.n_time_bins,
                "window_us": self.time_window_us, "size": self.size}


def frame_events(events: NDArray[Any], spec: FrameSpec) -> NDArray[Any]:
    """Frames of one sample.

    Args:
        events: Events in the project's convention, sorted by time, inside the sensor.
        spec: Framing.

    Returns:
        ``(T, P, H, W)`` int16 event counts.
    """
    width, height, polarities = spec.sensor_size
    out_h, out_w = spec.out_hw
    frames = np.zeros(spec.shape, dtype=np.int16)
    if len(events) == 0:
        return frames  # tonic's ToFrame returns (T, P, W, H) zeros here: build them ourselves
    if (out_h, out_w) != (height, width):
        events = tonic.transforms.Downsample(sensor_size=spec.sensor_size, target_size=(out_w, out_h))(events)
    sensor = (out_w, out_h, polarities)
    if spec.time_window_us is None:
        to_frame = tonic.transforms.ToFrame(sensor_size=sensor, n_time_bins=spec.n_time_bins)
    else:
        start = float(events["t"][0])
        end = start + spec.time_window_us * spec.n_time_bins
        to_frame = tonic.transforms.ToFrame(
            sensor_size=sensor, time_window=spec.time_window_us, start_time=start, end_time=end
        )
    framed = to_frame(events)  # (T', P, H, W); T' = T for n_time_bins, <= T for a window past the end
    n = min(len(framed), spec.n_time_bins)
    frames[:n] = framed[:n]
    return frames


def to_float(frames: NDArray[Any], frame_mode: str) -> torch.Tensor:
    """int16 counts to the model's float32 frames (``binary``: 1 where any event)."""
    if frame_mode == "binary":
        frames = np.minimum(frames, 1)
    return torch.from_numpy(frames.astype(np.float32))


class FramedDataset(Dataset):  # type: ignore[type-arg]
    """A split of an event dataset as frames: item ``(frames (T, 2, H, W) float32, label)``.

    Frames are cached in a :class:`FrameStore` under the folder given: written the
    first time a sample is read (by whichever DataLoader worker reads it, so epoch
    one frames in parallel), or all at once when the dataset is built (``eager``,
    for small datasets such as ``ndigits``). Later reads take no events. With
    ``cache_folder=None`` nothing is cached and every read frames the events.
    """

    def __init__(
        self,
        source: EventSource,
        spec: FrameSpec,
        frame_mode: str,
        cache_folder: Path | None,
        eager: bool = False,
    ) -> None:
        """Wrap an event source.

        Args:
            source: Events and labels of one split.
            spec: Framing.
            frame_mode: ``count`` or ``binary``.
            cache_folder: Where frames are cached; the caller's key must cover the
                source's samples and ``spec``. None: no cache.
            eager: Frame every sample not yet cached now.

        Raises:
            DataError: A cache file of another layout is in the way.
        """
        self.source = source
        self.spec = spec
        self.frame_mode = frame_mode
        self.labels = np.array([source.label(i) for i in range(len(source))], dtype=np.int64)
        self.store: FrameStore | None = None
        if cache_folder is not None:
            cache_folder.mkdir(parents=True, exist_ok=True)
            self.store = FrameStore(cache_folder / "frames.bin", len(source), spec.shape)
            if eager and self.store.filled() < len(source):
                for i in range(len(source)):
                    self.raw_frames(i)

    def __len__(self) -> int:
        return len(self.source)

    def raw_frames(self, index: int) -> NDArray[Any]:
        """int16 counts ``(T, P, H, W)`` of sample ``index``, from the cache when there."""
        if self.store is not None:
            cached = self.store.get(index)
            if cached is not None:
                return cached
        frames = frame_events(self.source.events(index), self.spec)
        if self.store is not None:
            self.store.put(index, frames)
        return frames

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_float(self.raw_frames(index), self.frame_mode), int(self.labels[index])  # (T, P, H, W)
