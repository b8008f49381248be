"""Static images as ``T`` frames, and their augmentation.

A static-image dataset (``digits``, ``imagefolder``) yields ``(image (C, H, W),
label)``. Training and evaluation take ``(frames (T, C, H, W), label)``;
:class:`StaticFrames` repeats the image ``T`` times (direct coding), and the
model's input encoder (:mod:`neuromoco.models.encoding`) re-codes it as
latency or hybrid input. Keeping the repeat in the data means every loop
(fine-tuning, MoCo views, kNN, test accuracy) sees the same ``[T, B, ...]``
batches as with event frames.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sized

import numpy as np
import torch
from numpy.typing import NDArray
from torch.utils.data import Dataset

from neuromoco.data.augment import Augment, make_augment
from neuromoco.data.config import AugmentConfig, DatasetInfo


class StaticFrames(Dataset):  # type: ignore[type-arg]
    """Item ``(image repeated T times (T, C, H, W), label)`` of a static-image dataset.

    Attributes:
        images: The wrapped dataset, item ``(image (C, H, W), label)``.
        steps: ``T``.
    """

    def __init__(self, images: Dataset, steps: int) -> None:  # type: ignore[type-arg]
        self.images = images
        self.steps = steps

    @property
    def labels(self) -> NDArray[Any]:
        """Labels of the wrapped dataset (its ``labels`` array, else read item by item)."""
        labels = getattr(self.images, "labels", None)
        if labels is None:
            assert isinstance(self.images, Sized)
            labels = [int(self.images[i][1]) for i in range(len(self.images))]
        return np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        assert isinstance(self.images, Sized)
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image, label = self.images[index]
        return torch.as_tensor(image).unsqueeze(0).repeat(self.steps, 1, 1, 1), int(label)  # (T, C, H, W)


def make_image_augment(cfg: AugmentConfig, info: DatasetInfo | None = None) -> Augment:
    """The view augmentation of repeated static images.

    The spatial warp (crop, flip, rotation, shift) and drop-by-area act on
    every frame alike, so the ``T`` copies stay one image. EventDrop's
    drop-by-time and event thinning, and the polarity swap, are event
    operations: they would blank the image at some steps, or treat grey
    levels as event counts, so they are not applied to images.

    Returns:
        ``augment(frames (T, C, H, W), generator) -> (T, C, H, W)``.
    """
    image_cfg = dataclasses.replace(cfg, drop_time_prob=0.0, drop_event_prob=0.0, polarity_swap_prob=0.0)
    return make_augment(image_cfg, info)
