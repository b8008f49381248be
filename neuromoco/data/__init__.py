"""neuromoco.data: event datasets (real, from local files, and the built-in ``ndigits``), frames, augmentations.

``build_dataset(DataConfig(), "train")`` gives ``(frames (T, 2, H, W) float32, label)``
items; ``TwoViewDataset`` and ``make_loader`` turn them into SSL batches.
"""

from neuromoco.data.augment import make_augment
from neuromoco.data.config import AugmentConfig, DataConfig, DatasetInfo
from neuromoco.data.loader import AugmentedDataset, TwoViewDataset, make_loader
from neuromoco.data.registry import build_dataset, dataset_info

__all__ = [
    "AugmentConfig",
    "AugmentedDataset",
    "DataConfig",
    "DatasetInfo",
    "TwoViewDataset",
    "build_dataset",
    "dataset_info",
    "make_augment",
    "make_loader",
]
