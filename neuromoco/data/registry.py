"""Dataset names, and building a split or its description from a :class:`DataConfig`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray
from torch.utils.data import Dataset

from hw_targets.errors import ConfigError

if TYPE_CHECKING:
    from neuromoco.data.config import DataConfig, DatasetInfo
    from neuromoco.data.framing import FrameSpec
    from neuromoco.data.sources import EventSource

BUILTIN = ("ndigits", "digits")
REAL = ("nmnist", "ncaltech101", "dvs_cifar10", "dvs_gesture")
NAMES = BUILTIN + REAL + ("imagefolder",)
#: Datasets of static images (item ``(image (C, H, W), label)``), not events.
STATIC = ("digits", "imagefolder")
SPLITS = ("train", "test")
#: Datasets whose labels change under a horizontal mirror (left vs right hand wave).
MIRROR_SENSITIVE = ("dvs_gesture",)

_ALIASES = {
    "ndigits": "ndigits",
    "digits": "digits",
    "nmnist": "nmnist",
    "ncaltech101": "ncaltech101",
    "ncaltech": "ncaltech101",
    "dvscifar10": "dvs_cifar10",
    "cifar10dvs": "dvs_cifar10",
    "dvsgesture": "dvs_gesture",
    "dvs128gesture": "dvs_gesture",
    "ibmgesture": "dvs_gesture",
    "imagefolder": "imagefolder",
}


def canonical_name(name: str) -> str:
    """The registered name for ``name`` (case, ``-`` and ``_`` ignored: ``CIFAR10-DVS`` is ``dvs_cifar10``).

    Raises:
        ConfigError: Unknown dataset (lists the names).
    """
    key = str(name).lower().replace("-", "").replace("_", "")
    if key not in _ALIASES:
        raise ConfigError(f"[data] name={name!r} is not a dataset; choose one of {list(NAMES)}")
    return _ALIASES[key]


def is_static(name: str) -> bool:
    """Whether dataset ``name`` holds static images (``digits``, ``imagefolder``) rather than events."""
    return canonical_name(name) in STATIC


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}; choose one of {list(SPLITS)}")


@lru_cache(maxsize=8)
def _ndigits_split(seed: int, count: int | None) -> tuple[NDArray[Any], NDArray[Any]]:
    from neuromoco.data import ndigits
    from neuromoco.data.splits import stratified_split

    _, labels = ndigits.digit_images(count)
    return stratified_split(labels, ndigits.TEST_FRACTION, seed)


def frame_spec(cfg: DataConfig, sensor_size: tuple[int, int, int]) -> FrameSpec:
    """How ``cfg`` frames events of a sensor of ``sensor_size`` (W, H, P)."""
    from neuromoco.data.framing import FrameSpec

    return FrameSpec(tuple(int(s) for s in sensor_size), cfg.n_time_bins, cfg.time_window_us, cfg.size)  # type: ignore[arg-type]


def event_source(cfg: DataConfig, split: str) -> EventSource:
    """The events of one split of an event dataset (no framing), e.g. for statistics.

    Raises:
        ConfigError: ``digits`` or ``imagefolder`` (images, not events) or a bad split.
        DataError: The data root does not hold the dataset, or nothing is readable.
    """
    from neuromoco.data import ndigits
    from neuromoco.data.sources import ArraySource, FileSource, index_dataset

    _check_split(split)
    name = canonical_name(cfg.name)
    if name == "digits":
        raise ConfigError("dataset 'digits' holds static images, not events; use 'ndigits' for its event version")
    if name == "imagefolder":
        raise ConfigError("dataset 'imagefolder' holds static images, not events")
    if name == "ndigits":
        data = ndigits.load(cfg.seed, cfg.ndigits_count)
        indices = _ndigits_split(cfg.seed, cfg.ndigits_count)[SPLITS.index(split)]
        return ArraySource(data.events, data.offsets, data.labels, indices, ndigits.SENSOR_SIZE,
                           f"ndigits-v{ndigits.RECIPE_VERSION}-seed{cfg.seed}")
    index = index_dataset(name, cfg.data_root, cfg.seed)
    return FileSource(index.train if split == "train" else index.test, index.sensor_size)


def build_frames(cfg: DataConfig, split: str) -> Dataset:  # type: ignore[type-arg]
    """One split as the models see it: item ``(frames (T, C, H, W) float32, label)``.

    Event datasets are :func:`build_dataset` itself; a static-image dataset's image is repeated
    ``T`` times (:class:`~neuromoco.data.static.StaticFrames`), and the model's input encoder
    codes it. Training and validation both read their splits through here.
    """
    dataset = build_dataset(cfg, split)
    if is_static(cfg.name):
        from neuromoco.data.static import StaticFrames

        dataset = StaticFrames(dataset, dataset_info(cfg).n_time_bins)
    return dataset


def build_dataset(cfg: DataConfig, split: str) -> Dataset:  # type: ignore[type-arg]
    """One split of a dataset, ready for a DataLoader.

    Args:
        cfg: Which dataset and how to frame it.
        split: ``train`` or ``test``.

    Returns:
        Event datasets: item ``(frames (T, 2, H, W) float32, label int)``.
        ``digits``: item ``(image (1, H, W) float32 in [0, 1], label int)``.
        ``imagefolder``: item ``(image (C, H, W) float32 in [0, 1], label int)``, C = 1 or 3.

    Raises:
        ConfigError: Bad split.
        DataError: Missing or unreadable data (names the folder and the expected layout).
    """
    from neuromoco.data import ndigits
    from neuromoco.data.cache import cache_dir, digest
    from neuromoco.data.framing import FramedDataset
    from neuromoco.data.images import ImageDataset
    from neuromoco.data.sources import index_dataset

    _check_split(split)
    name = canonical_name(cfg.name)
    if name == "digits":
        images, labels = ndigits.canvas_images(cfg.ndigits_count)
        indices = _ndigits_split(cfg.seed, cfg.ndigits_count)[SPLITS.index(split)]
        return ImageDataset(images[indices], labels[indices], cfg.size)
    if name == "imagefolder":
        from neuromoco.data.imagefolder import ImageFolderDataset, index_image_folder

        folder = index_image_folder(cfg.data_root, cfg.seed)
        paths, split_labels = folder.train if split == "train" else folder.test
        return ImageFolderDataset(paths, split_labels, folder.channels, cfg.size or folder.image_hw)
    source = event_source(cfg, split)
    spec = frame_spec(cfg, source.sensor_size)
    folder = None
    if cfg.cache_frames:
        ids = [source.sample_id(i) for i in range(len(source))]
        where = ndigits.recipe() if name == "ndigits" else str(index_dataset(name, cfg.data_root, cfg.seed).folder)
        folder = cache_dir("frames", name, digest(where, spec.key(), split, digest(ids)))
    # ndigits is small and in memory: frame it all now, so workers only augment.
    return FramedDataset(source, spec, cfg.frame_mode, folder, eager=name == "ndigits")


def dataset_info(cfg: DataConfig) -> DatasetInfo:
    """Describe the dataset ``cfg`` names: classes, sensor, input shape, split sizes.

    Raises:
        DataError: Missing or unreadable data (real datasets are indexed to count the splits).
    """
    from neuromoco.data import ndigits
    from neuromoco.data.config import DatasetInfo
    from neuromoco.data.sources import index_dataset

    name = canonical_name(cfg.name)
    if name in BUILTIN:
        train, test = _ndigits_split(cfg.seed, cfg.ndigits_count)
        width, height, polarities = ndigits.SENSOR_SIZE
        channels = 1 if name == "digits" else polarities
        sensor = (width, height, channels)
        out_h, out_w = cfg.size if cfg.size is not None else (height, width)
        return DatasetInfo(name, len(ndigits.CLASS_NAMES), ndigits.CLASS_NAMES, sensor, (channels, out_h, out_w),
                           cfg.n_time_bins, len(train), len(test), True, 0, None)
    if name == "imagefolder":
        from neuromoco.data.imagefolder import index_image_folder

        folder = index_image_folder(cfg.data_root, cfg.seed)
        height, width = folder.image_hw
        out_h, out_w = cfg.size if cfg.size is not None else (height, width)
        return DatasetInfo(name, len(folder.class_names), folder.class_names, (width, height, folder.channels),
                           (folder.channels, out_h, out_w), cfg.n_time_bins, len(folder.train[0]),
                           len(folder.test[0]), True, 0, str(folder.folder))
    index = index_dataset(name, cfg.data_root, cfg.seed)
    width, height, polarities = index.sensor_size
    out_h, out_w = cfg.size if cfg.size is not None else (height, width)
    return DatasetInfo(name, len(index.class_names), index.class_names, index.sensor_size, (polarities, out_h, out_w),
                       cfg.n_time_bins, len(index.train), len(index.test), name not in MIRROR_SENSITIVE,
                       index.skipped, str(index.folder))
