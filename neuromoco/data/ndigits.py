"""``ndigits``: the built-in event dataset, real handwriting seen by an emulated sensor.

The 1,797 handwritten digits that scikit-learn ships (8x8, 10 classes, from
the UCI "optical recognition of handwritten digits" set) are upsampled to
20x20 (the size of MNIST's digit box), placed on a 34x34 sensor and moved along the three saccades N-MNIST was
recorded with (Orchard et al. 2015: a triangle of 3.5 and 7 pixel moves, 105 ms
each). The DVS emulator in :mod:`neuromoco.data.emulator` turns the moving
image into ON/OFF events. Samples and the sensor draw their randomness from
generators seeded by ``(seed, stream, index)``, so a sample's events do not
depend on which other samples are generated with it.

The result is cached under ``<cache>/ndigits/`` with a key holding
:data:`RECIPE_VERSION`; change anything here and bump it.
"""

from __future__ import annotations

from typing import Any

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from hw_targets.errors import DataError
from neuromoco.data.cache import cache_dir, digest, save_npz
from neuromoco.data.emulator import DvsParams, background_noise, emulate, pixel_thresholds
from neuromoco.data.events import EVENT_DTYPE

#: Bump when anything below changes the generated events.
RECIPE_VERSION = 1
#: (W, H, P), tonic's order; N-MNIST's ATIS crop.
SENSOR_SIZE = (34, 34, 2)
#: Upsampling of the 8x8 digits (bicubic) to 20x20: MNIST's digits fill a 20x20 box.
UPSAMPLE = 2.5
#: Contrast stretch of the upsampled digits: [INK_LOW, INK_HIGH] -> [0, 1].
INK_LOW, INK_HIGH = 0.3, 0.7
#: N-MNIST's saccade triangle, image displacement in pixels (x, y); tonic's ``nmnist.stabilize`` undoes it.
SACCADE_VERTICES_PX = ((0.0, 0.0), (3.5, 7.0), (7.0, 0.0), (0.0, 0.0))
SACCADE_US = 105_000
#: Emulator time step: fine enough that a pixel crosses at most one threshold per step.
STEP_US = 1_000
SENSOR = DvsParams(threshold=0.45, threshold_sigma=0.05, refractory_us=1_000.0, noise_rate_hz=0.2, dark_level=0.1)
#: Stratified held-out fraction of the fixed ndigits split.
TEST_FRACTION = 0.2
NUM_IMAGES = 1797
CLASS_NAMES = tuple(str(d) for d in range(10))
#: Generator streams: ``default_rng([seed, stream, ...])``.
_SENSOR_STREAM, _SAMPLE_STREAM = 0, 1
#: Samples emulated together (bounded memory, cache-friendly arrays).
_BATCH = 256


@dataclass(frozen=True)
class EventSet:
    """Events of many samples in one array.

    Attributes:
        events: All events, tonic's structured dtype, sorted by sample then time.
        offsets: ``(N + 1,)`` int64; sample ``i`` is ``events[offsets[i]:offsets[i + 1]]``.
        labels: ``(N,)`` int64.
    """

    events: NDArray[Any]
    offsets: NDArray[Any]
    labels: NDArray[Any]

    def __len__(self) -> int:
        return len(self.labels)

    def sample(self, index: int) -> NDArray[Any]:
        """Events of one sample (a view)."""
        return self.events[self.offsets[index] : self.offsets[index + 1]]


def digit_images(count: int | None = None) -> tuple[NDArray[Any], NDArray[Any]]:
    """scikit-learn's handwritten digits.

    Args:
        count: Only the first ``count`` images; None for all 1,797.

    Returns:
        ``(images, labels)``: ``(N, 8, 8)`` float32 in [0, 1] and ``(N,)`` int64.
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    n = NUM_IMAGES if count is None else min(count, NUM_IMAGES)
    images = (bunch.images[:n] / 16.0).astype(np.float32)  # pixel values are 0..16
    return images, bunch.target[:n].astype(np.int64)


def upsampled_digits(images: NDArray[Any]) -> NDArray[Any]:
    """Bicubic x2.5 upsampling with a contrast stretch, clipped to [0, 1].

    Args:
        images: ``(N, 8, 8)`` in [0, 1].

    Returns:
        ``(N, 20, 20)`` float32.
    """
    from scipy.ndimage import zoom

    big = zoom(images, (1, UPSAMPLE, UPSAMPLE), order=3, mode="grid-constant", grid_mode=True)
    # Stretch the contrast: the 8x8 block averages blur strokes into grey ramps; ink is
    # the upper part of the range (thinner, sharper strokes, like a printed digit).
    stretched: NDArray[Any] = np.clip((big - INK_LOW) / (INK_HIGH - INK_LOW), 0.0, 1.0).astype(np.float32)
    return stretched


def canvas_images(count: int | None = None) -> tuple[NDArray[Any], NDArray[Any]]:
    """The static images behind ``ndigits``: each upsampled digit centred on the 34x34 sensor.

    Returns:
        ``(images, labels)``: ``(N, 34, 34)`` float32 in [0, 1] and ``(N,)`` int64.
    """
    images, labels = digit_images(count)
    big = upsampled_digits(images)
    width, height = SENSOR_SIZE[:2]
    canvas = np.zeros((len(big), height, width), dtype=np.float32)
    top, left = (height - big.shape[1]) // 2, (width - big.shape[2]) // 2
    canvas[:, top : top + big.shape[1], left : left + big.shape[2]] = big
    return canvas, labels


def saccade_offset(t_us: float) -> tuple[float, float]:
    """Image displacement ``(dx, dy)`` in pixels at time ``t_us`` along the saccade triangle.

    Each saccade starts and ends at rest (raised-cosine speed profile), as the pan-tilt
    unit of the N-MNIST recordings did: their events bunch up mid-saccade.
    """
    leg = min(int(t_us // SACCADE_US), len(SACCADE_VERTICES_PX) - 2)
    tau = min(max((t_us - leg * SACCADE_US) / SACCADE_US, 0.0), 1.0)
    frac = 0.5 - 0.5 * np.cos(np.pi * tau)
    (x0, y0), (x1, y1) = SACCADE_VERTICES_PX[leg], SACCADE_VERTICES_PX[leg + 1]
    return x0 + frac * (x1 - x0), y0 + frac * (y1 - y0)


def _render(padded: NDArray[Any], pad: int, origin: tuple[float, float], shape: tuple[int, int]) -> NDArray[Any]:
    """Bilinear sample of digits placed with their top-left corner at ``origin`` (x, y).

    Args:
        padded: ``(N, h + 2 pad, w + 2 pad)`` digits with a zero border of ``pad``.
        pad: Border width; must exceed the displacement so slices stay inside.
        origin: Sub-pixel position of the digit's top-left corner on the sensor.
        shape: ``(H, W)`` of the sensor.

    Returns:
        ``(N, H, W)`` float32 intensities in [0, 1].
    """
    height, width = shape
    ox, oy = origin
    i0, j0 = int(np.floor(oy)), int(np.floor(ox))
    fy, fx = np.float32(oy - i0), np.float32(ox - j0)
    r, c = pad - i0, pad - j0  # sensor row 0 samples digit row -i0 (and -i0-1 for the fraction)
    assert r >= 1 and c >= 1 and r + height <= padded.shape[1] and c + width <= padded.shape[2], "pad too small"
    a = padded[:, r : r + height, c : c + width]
    b = padded[:, r - 1 : r - 1 + height, c : c + width]
    d = padded[:, r : r + height, c - 1 : c - 1 + width]
    e = padded[:, r - 1 : r - 1 + height, c - 1 : c - 1 + width]
    return (1 - fy) * ((1 - fx) * a + fx * d) + fy * ((1 - fx) * b + fx * e)


def generate(seed: int, count: int | None = None) -> EventSet:
    """Generate ``ndigits`` (no caching; see :func:`load`).

    Args:
        seed: Seeds the sensor's threshold mismatch and each sample's initial pixel
            state and background noise.
        count: Only the first ``count`` images; None for all 1,797.

    Returns:
        The events of every sample, with labels.
    """
    images, labels = digit_images(count)
    big = upsampled_digits(images)  # (N, 20, 20)
    width, height = SENSOR_SIZE[:2]
    shape = (height, width)
    pad = 12  # > the 8.5 px the digit travels from the corner
    padded = np.pad(big, ((0, 0), (pad, pad), (pad, pad)))
    duration = SACCADE_US * (len(SACCADE_VERTICES_PX) - 1)
    times = np.arange(0, duration + 1, STEP_US, dtype=np.float64)  # (S,)
    # Centre the path: the digit's corner sweeps x, y in [start, start + 7].
    start = (width - big.shape[2] - max(v[0] for v in SACCADE_VERTICES_PX)) / 2.0
    c_on, c_off = pixel_thresholds(SENSOR, shape, np.random.default_rng([seed, _SENSOR_STREAM]))
    sample_rngs = [np.random.default_rng([seed, _SAMPLE_STREAM, i]) for i in range(len(labels))]
    # The per-sample initial state is drawn first, then the noise, from each sample's own stream.
    ref_offsets = np.stack([rng.uniform(-0.5, 0.5, shape) for rng in sample_rngs]).astype(np.float32) * c_on
    log_dark = np.float32(SENSOR.dark_level)

    parts: list[NDArray[Any]] = []
    for lo in range(0, len(labels), _BATCH):
        hi = min(lo + _BATCH, len(labels))
        batch = padded[lo:hi]

        def frames(batch: NDArray[Any] = batch):  # type: ignore[no-untyped-def]
            for t in times:
                dx, dy = saccade_offset(t)
                intensity = _render(batch, pad, (start + dx, start + dy), shape)
                yield np.log(log_dark + (1 - log_dark) * intensity)

        raw = emulate(frames(), times, c_on, c_off, ref_offsets[lo:hi], SENSOR.refractory_us)
        order = np.argsort(raw.sample, kind="stable")  # group by sample, keep step order
        bounds = np.concatenate([[0], np.cumsum(np.bincount(raw.sample, minlength=hi - lo))])
        for k in range(hi - lo):
            mine = order[bounds[k] : bounds[k + 1]]
            nx, ny, nt, npol = background_noise(SENSOR.noise_rate_hz, shape, duration, sample_rngs[lo + k])
            ev = np.empty(len(mine) + len(nx), dtype=EVENT_DTYPE)
            ev["x"] = np.concatenate([raw.x[mine], nx])
            ev["y"] = np.concatenate([raw.y[mine], ny])
            ev["t"] = np.concatenate([raw.t[mine], nt])
            ev["p"] = np.concatenate([raw.p[mine], npol])
            parts.append(ev[np.argsort(ev["t"], kind="stable")])
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return EventSet(np.concatenate(parts), offsets, labels)


def recipe() -> dict[str, object]:
    """Everything that determines the events, for the cache key and the cached file."""
    return {
        "version": RECIPE_VERSION,
        "sensor_size": SENSOR_SIZE,
        "upsample": UPSAMPLE,
        "saccades_px": SACCADE_VERTICES_PX,
        "saccade_us": SACCADE_US,
        "step_us": STEP_US,
        "sensor": asdict(SENSOR),
    }


def cache_path(seed: int, count: int | None) -> Path:
    """Where :func:`load` keeps the events of ``(seed, count)``."""
    n = NUM_IMAGES if count is None else min(count, NUM_IMAGES)
    return cache_dir("ndigits") / f"events-v{RECIPE_VERSION}-seed{seed}-n{n}-{digest(recipe())}.npz"


def load(seed: int, count: int | None = None) -> EventSet:
    """``ndigits`` from the cache, generating and caching it on first use.

    Raises:
        DataError: The cached file is unreadable (names it; delete it to regenerate).
    """
    path = cache_path(seed, count)
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as data:
                return EventSet(data["events"], data["offsets"], data["labels"])
        except (OSError, ValueError, KeyError) as exc:
            raise DataError(f"{path}: unreadable ndigits cache ({exc}); delete the file to regenerate it") from None
    events = generate(seed, count)
    save_npz(path, events=events.events, offsets=events.offsets, labels=events.labels)
    return events
