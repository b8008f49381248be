"""The ``[data]`` and ``[augment]`` sections, and what a built dataset reports about itself.

:class:`DataConfig` and :class:`AugmentConfig` hold the only data defaults in
the code base; the CLI, the TOML loader and the trainers read them from here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from hw_targets.errors import ConfigError

#: Frame modes: ``count`` keeps event counts per bin, ``binary`` marks bins with >= 1 event.
FRAME_MODES = ("count", "binary")


def _positive_pair(value: object, field: str, section: str) -> tuple[int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ConfigError(f"[{section}] {field}={value!r} must be a pair (H, W) of positive integers")
    pair = tuple(int(v) for v in value)
    if any(v <= 0 or v != orig for v, orig in zip(pair, value)):
        raise ConfigError(f"[{section}] {field}={value!r} must be a pair (H, W) of positive integers")
    return pair  # type: ignore[return-value]


@dataclass(frozen=True)
class DataConfig:
    """The ``[data]`` section: which dataset, how events become frames, how they are loaded.

    Attributes:
        name: ``ndigits`` (built in, events), ``digits`` (its static images),
            ``nmnist``, ``ncaltech101``, ``dvs_cifar10``, ``dvs_gesture``, or ``imagefolder``
            (static images in torchvision's ImageFolder layout under ``data_root``).
        data_root: Folder holding a real dataset's files (``--data-root``); unused by
            ``ndigits`` and ``digits``.
        n_time_bins: ``T``, frames per sample. 8 keeps ``ndigits`` training fast on 2 CPU
            cores (one bin is ~40 ms of its 315 ms saccade recording). For static images,
            the steps each image is coded into (``[model] encoding``). The project's one name for
            ``T``: checkpoints store it under this key too. Two other names differ on purpose: the
            export sidecar's ``time_steps`` (an on-disk key older exports use; same value) and the
            simulators' ``steps``, which count ``T`` plus one step of synaptic delay per layer.
        time_window_us: If set, each frame spans this many microseconds from the first
            event (zero-padded or cut to ``n_time_bins`` frames); if None, the recording
            is split into ``n_time_bins`` equal spans (tonic ``ToFrame(n_time_bins=...)``).
        size: ``(H, W)`` of the model input; events are binned down (or up) to it before
            framing, images are resized. None keeps the sensor size (34x34 for ``ndigits``;
            the first image's size for ``imagefolder``).
        frame_mode: ``count`` (events per pixel and bin) or ``binary`` (1 where any event).
        num_workers: DataLoader worker processes; None picks ``min(8, cpu_count // 2)``, at least 1.
        seed: Data seed: the ``ndigits`` emulator (sensor mismatch and noise) and the seeded
            train/test splits of ``ndigits``, ``dvs_cifar10`` and ``ncaltech101``.
        ndigits_count: Make ``ndigits``/``digits`` from only the first N of the 1,797 images
            (tests, quick looks); None uses all of them.
        cache_frames: Keep framed tensors in the cache so later epochs read no events.
    """

    name: str = "ndigits"
    data_root: str | None = None
    n_time_bins: int = 8
    time_window_us: float | None = None
    size: tuple[int, int] | None = None
    frame_mode: str = "count"
    num_workers: int | None = None
    seed: int = 0
    ndigits_count: int | None = None
    cache_frames: bool = True

    def __post_init__(self) -> None:
        from neuromoco.data.registry import canonical_name

        canonical_name(self.name)  # raises ConfigError naming the choices
        if not isinstance(self.n_time_bins, int) or self.n_time_bins <= 0:
            raise ConfigError(f"[data] n_time_bins={self.n_time_bins!r} must be a positive integer")
        if self.time_window_us is not None and not self.time_window_us > 0:
            raise ConfigError(f"[data] time_window_us={self.time_window_us!r} must be > 0 microseconds")
        if self.size is not None:
            # TOML gives lists; keep the same value as a hashable tuple.
            object.__setattr__(self, "size", _positive_pair(self.size, "size", "data"))
        if self.frame_mode not in FRAME_MODES:
            raise ConfigError(f"[data] frame_mode={self.frame_mode!r}; choose one of {list(FRAME_MODES)}")
        if self.num_workers is not None and (not isinstance(self.num_workers, int) or self.num_workers < 0):
            raise ConfigError(f"[data] num_workers={self.num_workers!r} must be >= 0 (0 loads in the main process)")
        if self.ndigits_count is not None and (not isinstance(self.ndigits_count, int) or self.ndigits_count < 20):
            raise ConfigError(
                f"[data] ndigits_count={self.ndigits_count!r} must be an integer >= 20 (two per class for the split)"
            )

    @property
    def resolved_num_workers(self) -> int:
        """``num_workers``, or the automatic choice when it is None."""
        return self.num_workers if self.num_workers is not None else auto_num_workers()


def auto_num_workers() -> int:
    """Half the CPU cores (the training process needs the rest), between 1 and 8."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class AugmentConfig:
    """The ``[augment]`` section: frame augmentations for the two SSL views.

    Every transform is applied to all ``T`` frames and both polarities of a sample
    alike, so a view stays one consistent recording. A probability of 0 switches a
    transform off; ``AugmentConfig(crop_scale=(1.0, 1.0), flip_prob=0.0,
    translate_px=0.0, rotate_deg=0.0, drop_time_prob=0.0, drop_area_prob=0.0,
    drop_event_prob=0.0)`` is the identity.

    Attributes:
        crop_scale: Random resized crop: the crop's area as a fraction of the frame,
            drawn uniformly from this range, then resized back (nearest) to the frame size.
        crop_ratio: Range of the crop's width/height aspect ratio (drawn log-uniformly).
        flip_prob: Horizontal flip probability. None: 0.5, except 0 for datasets whose
            labels change under a mirror (DVS128 Gesture: left vs right hand wave).
        translate_px: Shift by up to this many pixels in x and y (uniform).
        rotate_deg: Rotate by up to this many degrees either way (uniform).
        drop_time_prob: EventDrop "drop by time": probability to blank a random span of frames.
        drop_time_max: Longest blanked span, as a fraction of ``T`` (at least one frame).
        drop_area_prob: EventDrop "drop by area": probability to blank a random rectangle
            in every frame.
        drop_area_max: Largest blanked rectangle, as a fraction of the frame area.
        drop_event_prob: EventDrop "random drop": probability to thin the events.
        drop_event_max: Largest fraction of events removed (binomial thinning of counts).
        polarity_swap_prob: Probability to swap the ON and OFF channels.
    """

    crop_scale: tuple[float, float] = (0.5, 1.0)
    crop_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    flip_prob: float | None = None
    translate_px: float = 3.0
    rotate_deg: float = 15.0
    drop_time_prob: float = 0.2
    drop_time_max: float = 0.25
    drop_area_prob: float = 0.2
    drop_area_max: float = 0.25
    drop_event_prob: float = 0.2
    drop_event_max: float = 0.3
    polarity_swap_prob: float = 0.0

    def __post_init__(self) -> None:
        for field in ("crop_scale", "crop_ratio"):
            value = getattr(self, field)
            if not isinstance(value, (tuple, list)) or len(value) != 2:
                raise ConfigError(f"[augment] {field}={value!r} must be a pair (low, high)")
            low, high = float(value[0]), float(value[1])
            if not 0.0 < low <= high or (field == "crop_scale" and high > 1.0):
                bound = "0 < low <= high <= 1" if field == "crop_scale" else "0 < low <= high"
                raise ConfigError(f"[augment] {field}={value!r} must satisfy {bound}")
            object.__setattr__(self, field, (low, high))
        probs = ["drop_time_prob", "drop_area_prob", "drop_event_prob", "polarity_swap_prob"]
        if self.flip_prob is not None:
            probs.append("flip_prob")
        for field in probs + ["drop_time_max", "drop_area_max", "drop_event_max"]:
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"[augment] {field}={value!r} must be within [0, 1]")
        if self.translate_px < 0:
            raise ConfigError(f"[augment] translate_px={self.translate_px!r} must be >= 0 pixels")
        if not 0.0 <= self.rotate_deg <= 180.0:
            raise ConfigError(f"[augment] rotate_deg={self.rotate_deg!r} must be within [0, 180] degrees")


@dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, as built from a :class:`DataConfig`.

    Attributes:
        name: Canonical dataset name.
        num_classes: Number of classes.
        class_names: One name per label index.
        sensor_size: ``(W, H, P)`` of the recording sensor, tonic's order
            (``digits``: the 34x34 canvas, one channel).
        input_shape: ``(C, H, W)`` of one model input frame (``C = 2`` polarities;
            1 for ``digits``).
        n_time_bins: ``T``, frames per sample.
        train_size: Samples in the ``train`` split.
        test_size: Samples in the ``test`` split.
        mirror_safe: Whether a horizontal flip keeps every label (False for gestures).
        skipped_files: Corrupt or truncated files left out (each was named in a warning).
        data_root: The folder read, or None for the built-in datasets.
    """

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    sensor_size: tuple[int, int, int]
    input_shape: tuple[int, int, int]
    n_time_bins: int
    train_size: int
    test_size: int
    mirror_safe: bool
    skipped_files: int
    data_root: str | None
