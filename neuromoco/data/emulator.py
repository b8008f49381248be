"""A small DVS pixel emulator: log-intensity changes become ON/OFF events.

Each pixel keeps a reference log intensity ``ref``. Between two rendered
frames the log intensity ``L`` is taken to move linearly; when it departs from
``ref`` by the pixel's contrast threshold (``L - ref >= c_on`` or
``ref - L >= c_off``) the pixel emits one event at the time the threshold was
crossed, moves ``ref`` by one threshold towards ``L`` and stays silent for the
refractory period. Thresholds differ per pixel (mismatch, drawn once per
sensor), and a little background activity (Poisson shot noise, random
polarity) is added per sample. This is the model of Lichtsteiner et al. 2008
and of v2e (Hu et al. 2021), without the photoreceptor low-pass filter.

Everything is vectorised over a batch of samples that see the same motion, and
every random draw comes from a generator the caller seeds, so the output is a
pure function of the inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class DvsParams:
    """Sensor parameters (all required; ``ndigits`` fixes its own in a versioned recipe).

    Attributes:
        threshold: Nominal ON and OFF contrast threshold, in natural-log intensity units.
        threshold_sigma: Per-pixel threshold mismatch (standard deviation, log units).
        refractory_us: Dead time after each event of a pixel, microseconds.
        noise_rate_hz: Background events per pixel and second (both polarities together).
        dark_level: Intensity of black relative to white; keeps ``log`` finite.
    """

    threshold: float
    threshold_sigma: float
    refractory_us: float
    noise_rate_hz: float
    dark_level: float


@dataclass(frozen=True)
class RawEvents:
    """Events of a batch of samples as flat arrays (one entry per event).

    Attributes:
        sample: Index of the sample in the batch, int64.
        x: Column, int16.
        y: Row, int16.
        t: Time, microseconds, int64.
        p: True for ON (brightness increase).
    """

    sample: NDArray[Any]
    x: NDArray[Any]
    y: NDArray[Any]
    t: NDArray[Any]
    p: NDArray[Any]


def pixel_thresholds(params: DvsParams, shape: tuple[int, int], rng: np.random.Generator) -> tuple[NDArray[Any], NDArray[Any]]:
    """Draw one sensor's per-pixel ON and OFF thresholds.

    Args:
        params: Nominal threshold and mismatch.
        shape: ``(H, W)``.
        rng: Generator of the sensor.

    Returns:
        ``(c_on, c_off)``, each ``(H, W)`` float32, at least a fifth of the nominal threshold.
    """
    floor = 0.2 * params.threshold  # a mismatch draw must not make a pixel fire on every flicker
    c_on = np.maximum(rng.normal(params.threshold, params.threshold_sigma, shape), floor)
    c_off = np.maximum(rng.normal(params.threshold, params.threshold_sigma, shape), floor)
    return c_on.astype(np.float32), c_off.astype(np.float32)


def emulate(
    log_frames: Iterator[NDArray[Any]],
    times_us: NDArray[Any],
    c_on: NDArray[Any],
    c_off: NDArray[Any],
    ref_offset: NDArray[Any],
    refractory_us: float,
) -> RawEvents:
    """Turn a sequence of log-intensity frames into events.

    Args:
        log_frames: One ``(N, H, W)`` float32 frame per entry of ``times_us``: log intensity
            of ``N`` samples at that time.
        times_us: ``(S,)`` increasing frame times, microseconds.
        c_on: ``(H, W)`` ON thresholds.
        c_off: ``(H, W)`` OFF thresholds.
        ref_offset: ``(N, H, W)`` initial ``ref - L`` per pixel (a pixel's unknown state at
            the start, within a threshold).
        refractory_us: Dead time after an event, microseconds.

    Returns:
        The events, in time-step order (not sorted within a step).
    """
    frames = iter(log_frames)
    prev = next(frames)  # (N, H, W)
    ref = prev + ref_offset
    ready = np.full(prev.shape, -np.inf)  # earliest time each pixel may fire again
    chunks: list[tuple[NDArray[Any], ...]] = []
    for k in range(1, len(times_us)):
        cur = next(frames)
        t0, t1 = float(times_us[k - 1]), float(times_us[k])
        diff = cur - ref
        on = diff >= c_on
        fire = on | (diff <= -c_off)
        if not fire.any():
            prev = cur
            continue
        idx = np.nonzero(fire)  # only firing pixels from here on: they are few
        on_f = on[idx]
        step = np.where(on_f, c_on[idx[1:]], -c_off[idx[1:]])
        level = ref[idx] + step
        p0, p1 = prev[idx], cur[idx]
        slope = p1 - p0
        # Where L moved in the firing direction, the crossing is inside the step; a pixel
        # held back by its refractory period is already past the level (fraction 0).
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(slope != 0, (level - p0) / slope, 0.0)
        frac = np.clip(frac, 0.0, 1.0)
        t_ev = np.maximum(t0 + frac * (t1 - t0), ready[idx])
        emit = t_ev < t1
        if not emit.any():
            prev = cur
            continue
        sel = tuple(i[emit] for i in idx)
        ref[sel] += step[emit]
        ready[sel] = t_ev[emit] + refractory_us
        chunks.append((sel[0], sel[2], sel[1], t_ev[emit], on_f[emit]))
        prev = cur
    if not chunks:
        empty = np.zeros(0, dtype=np.int64)
        return RawEvents(empty, empty.astype(np.int16), empty.astype(np.int16), empty, empty.astype(bool))
    sample, x, y, t, p = (np.concatenate(parts) for parts in zip(*chunks))
    return RawEvents(sample.astype(np.int64), x.astype(np.int16), y.astype(np.int16), np.floor(t).astype(np.int64), p)


def background_noise(
    rate_hz: float, shape: tuple[int, int], duration_us: float, rng: np.random.Generator
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """Poisson background events of one sample.

    Args:
        rate_hz: Events per pixel and second.
        shape: ``(H, W)``.
        duration_us: Length of the recording, microseconds.
        rng: Generator of this sample.

    Returns:
        ``(x, y, t, p)``: int16 columns, int16 rows, int64 microseconds, bool polarity.
    """
    height, width = shape
    count = rng.poisson(rate_hz * height * width * duration_us * 1e-6)
    x = rng.integers(0, width, count).astype(np.int16)
    y = rng.integers(0, height, count).astype(np.int16)
    t = rng.integers(0, int(duration_us), count).astype(np.int64)
    p = rng.random(count) < 0.5
    return x, y, t, p
