"""``digits``: the static images behind ``ndigits``, for static-image encodings."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset


class ImageDataset(Dataset):  # type: ignore[type-arg]
    """Grey images as tensors: item ``(image (1, H, W) float32 in [0, 1], label)``."""

    def __init__(self, images: NDArray[Any], labels: NDArray[Any], size: tuple[int, int] | None) -> None:
        """Hold the images, resized once.

        Args:
            images: ``(N, H0, W0)`` float32 in [0, 1].
            labels: ``(N,)`` int64.
            size: ``(H, W)`` to resize to (bilinear, antialiased), or None to keep ``(H0, W0)``.
        """
        tensor = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).unsqueeze(1)  # (N, 1, H0, W0)
        if size is not None and tuple(size) != tuple(tensor.shape[-2:]):
            tensor = F.interpolate(tensor, size=size, mode="bilinear", align_corners=False, antialias=True)
        self.images = tensor.clamp_(0.0, 1.0)  # (N, 1, H, W)
        self.labels = np.asarray(labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])
