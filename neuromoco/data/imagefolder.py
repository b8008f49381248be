"""``imagefolder``: any folder of static images in torchvision's ImageFolder layout.

``--data imagefolder --data-root DIR`` reads either

- ``DIR/train/<class>/<image>`` and ``DIR/test/<class>/<image>`` (or ``val/``
  instead of ``test/``): the folder's own split; or
- ``DIR/<class>/<image>``: one pool, split per class with the seeded
  stratified split of the other datasets (``TEST_FRACTION`` held out).

Files are listed by ``torchvision.datasets.ImageFolder`` (its image
extensions, class folders sorted by name). Images are grey when the first
image is (PIL modes ``1``, ``L``, ``LA``, ``I``, ``I;16``, ``F``), else RGB;
every image is converted to that mode, resized (bilinear, antialiased) to
``[data] size`` (default: the first image's size) and scaled to [0, 1].
Items are ``(image (C, H, W) float32, label)``, read lazily from disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch.utils.data import Dataset

from hw_targets.errors import DataError

#: Held-out share per class of a folder without its own split (as ``ndigits``).
TEST_FRACTION = 0.2
#: Split folder pairs looked for, in order.
SPLIT_FOLDERS = (("train", "test"), ("train", "val"))
#: PIL modes read as one grey channel.
GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")
_LAYOUT = "DIR/<class>/<image> or DIR/train/<class>/<image> + DIR/test/<class>/<image>"


@dataclass(frozen=True)
class ImageFolderIndex:
    """The files of an image folder, split.

    Attributes:
        folder: The data root.
        class_names: Class folder names, sorted; label ``i`` is ``class_names[i]``.
        train: ``(paths, labels)`` of the training split.
        test: ``(paths, labels)`` of the test split.
        channels: 1 (grey) or 3 (RGB), from the first image.
        image_hw: ``(H, W)`` of the first image.
    """

    folder: Path
    class_names: tuple[str, ...]
    train: tuple[tuple[str, ...], NDArray[Any]]
    test: tuple[tuple[str, ...], NDArray[Any]]
    channels: int
    image_hw: tuple[int, int]


def _list(folder: Path) -> tuple[list[str], list[str], NDArray[Any]]:
    from torchvision.datasets import ImageFolder

    try:
        listing = ImageFolder(str(folder), loader=lambda path: path)
    except (FileNotFoundError, OSError) as exc:
        raise DataError(f"image folder {folder}: {exc}; expected {_LAYOUT}") from None
    paths = [path for path, _ in listing.samples]
    labels = np.array([label for _, label in listing.samples], dtype=np.int64)
    return list(listing.classes), paths, labels


def _open(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(path)
        image.load()
    except (OSError, UnidentifiedImageError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return image


@lru_cache(maxsize=4)
def index_image_folder(root: str | None, seed: int) -> ImageFolderIndex:
    """List and split an image folder.

    Args:
        root: The data root (``--data-root``).
        seed: Seed of the stratified split (used when the folder has no ``train/``/``test/``).

    Returns:
        The index.

    Raises:
        DataError: No root, no class folders, no images, or different classes in train and test.
    """
    from neuromoco.data.splits import stratified_split

    if not root:
        raise DataError(f"dataset 'imagefolder' needs --data-root DIR (layout: {_LAYOUT})")
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"image folder {folder}: not a folder; expected {_LAYOUT}")
    pair = next(((folder / a, folder / b) for a, b in SPLIT_FOLDERS if (folder / a).is_dir() and (folder / b).is_dir()),
                None)
    if pair is not None:
        classes, train_paths, train_labels = _list(pair[0])
        test_classes, test_paths, test_labels = _list(pair[1])
        if test_classes != classes:
            raise DataError(f"image folder {folder}: class folders differ between {pair[0].name}/ ({classes}) "
                            f"and {pair[1].name}/ ({test_classes})")
    else:
        classes, paths, labels = _list(folder)
        train_idx, test_idx = stratified_split(labels, TEST_FRACTION, seed)
        train_paths, train_labels = [paths[i] for i in train_idx], labels[train_idx]
        test_paths, test_labels = [paths[i] for i in test_idx], labels[test_idx]
    first = _open(train_paths[0])
    channels = 1 if first.mode in GREY_MODES else 3
    return ImageFolderIndex(folder, tuple(classes), (tuple(train_paths), train_labels),
                            (tuple(test_paths), test_labels), channels, (first.height, first.width))


def read_image(path: str, channels: int, size: tuple[int, int]) -> torch.Tensor:
    """One image as ``(C, H, W)`` float32 in [0, 1].

    Args:
        path: Image file.
        channels: 1 (converted to grey) or 3 (converted to RGB).
        size: ``(H, W)`` to resize to (bilinear, antialiased).

    Raises:
        DataError: The file is not a readable image.
    """
    image = _open(path).convert("L" if channels == 1 else "RGB")
    array = np.asarray(image, dtype=np.float32) / 255.0  # (H0, W0) or (H0, W0, 3)
    tensor = torch.from_numpy(array.reshape(array.shape[0], array.shape[1], channels)).permute(2, 0, 1)
    if tuple(tensor.shape[1:]) != tuple(size):
        tensor = F.interpolate(tensor[None], size=size, mode="bilinear", align_corners=False, antialias=True)[0]
    return tensor.clamp_(0.0, 1.0).contiguous()


class ImageFolderDataset(Dataset):  # type: ignore[type-arg]
    """One split of an image folder: item ``(image (C, H, W) float32 in [0, 1], label)``."""

    def __init__(self, paths: tuple[str, ...], labels: NDArray[Any], channels: int, size: tuple[int, int]) -> None:
        """Hold the file list; images are read on access.

        Args:
            paths: Image files.
            labels: ``(N,)`` int64, aligned with ``paths``.
            channels: 1 or 3.
            size: ``(H, W)`` of every item.
        """
        self.paths = paths
        self.labels = np.asarray(labels, dtype=np.int64)
        self.channels = channels
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return read_image(self.paths[index], self.channels, self.size), int(self.labels[index])
