"""neuromoco.data: event datasets (real, from local files, and the built-in ``ndigits``), frames, augmentations.

``build_dataset(DataConfig(), "train")`` gives ``(frames (T, 2, H, W) float32, label)``
items; ``TwoViewDataset`` and ``make_loader`` turn them into SSL batches.

The names below are loaded on first use (PEP 562), so that importing the package,
or its configs, does not load torch: ``nmoco data --help`` starts in a blink.
"""

from __future__ import annotations

import importlib
from typing import Any

from neuromoco.data.config import AugmentConfig, DataConfig, DatasetInfo

#: name -> the submodule that defines it (loaded on first access).
_LAZY = {
    "AugmentedDataset": "neuromoco.data.loader",
    "TwoViewDataset": "neuromoco.data.loader",
    "make_loader": "neuromoco.data.loader",
    "make_augment": "neuromoco.data.augment",
    "build_dataset": "neuromoco.data.registry",
    "dataset_info": "neuromoco.data.registry",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'neuromoco.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
