"""``imagefolder`` (torchvision ImageFolder layout, grey or RGB, resized) and static images as T frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hw_targets.errors import ConfigError, DataError
from neuromoco.data import AugmentConfig, DataConfig, build_dataset, dataset_info
from neuromoco.data.imagefolder import TEST_FRACTION
from neuromoco.data.registry import event_source, is_static
from neuromoco.data.static import StaticFrames, make_image_augment


def write_images(folder: Path, classes: list[str], per_class: int, mode: str, hw: tuple[int, int] = (12, 10)) -> None:
    rng = np.random.default_rng(0)
    for name in classes:
        (folder / name).mkdir(parents=True)
        for i in range(per_class):
            shape = hw if mode == "L" else (*hw, 3)
            Image.fromarray((rng.random(shape) * 255).astype(np.uint8), mode).save(folder / name / f"{i}.png")


def test_grey_pool_is_split_per_class_and_resized(tmp_path):
    write_images(tmp_path, ["a", "b", "c"], 5, "L")
    cfg = DataConfig(name="ImageFolder", data_root=str(tmp_path), size=(8, 8))
    info = dataset_info(cfg)
    assert info.name == "imagefolder" and is_static(info.name)
    assert info.class_names == ("a", "b", "c") and info.input_shape == (1, 8, 8) and info.sensor_size == (10, 12, 1)
    assert info.test_size == 3 * round(5 * TEST_FRACTION) and info.train_size + info.test_size == 15
    train = build_dataset(cfg, "train")
    image, label = train[0]
    assert image.shape == (1, 8, 8) and image.dtype == torch.float32 and 0.0 <= image.min() <= image.max() <= 1.0
    assert sorted(set(train.labels.tolist())) == [0, 1, 2]
    native = build_dataset(DataConfig(name="imagefolder", data_root=str(tmp_path)), "test")[0][0]
    assert native.shape == (1, 12, 10)  # no size: the first image's


def test_rgb_train_test_folders(tmp_path):
    write_images(tmp_path / "train", ["x", "y"], 3, "RGB")
    write_images(tmp_path / "test", ["x", "y"], 2, "RGB")
    info = dataset_info(DataConfig(name="imagefolder", data_root=str(tmp_path)))
    assert info.input_shape == (3, 12, 10) and (info.train_size, info.test_size) == (6, 4)
    test = build_dataset(DataConfig(name="imagefolder", data_root=str(tmp_path)), "test")
    assert test[3][0].shape == (3, 12, 10) and test[3][1] == 1


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataError, match="--data-root"):
        dataset_info(DataConfig(name="imagefolder"))
    with pytest.raises(DataError, match="expected"):
        dataset_info(DataConfig(name="imagefolder", data_root=str(tmp_path / "missing")))
    write_images(tmp_path / "train", ["x", "y"], 2, "L")
    write_images(tmp_path / "test", ["x", "z"], 2, "L")
    with pytest.raises(DataError, match="class folders differ"):
        dataset_info(DataConfig(name="imagefolder", data_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="static images"):
        event_source(DataConfig(name="imagefolder", data_root=str(tmp_path)), "train")


def test_static_frames_and_image_augment_keep_one_image():
    images = torch.rand(4, 1, 9, 9)

    class Images(torch.utils.data.Dataset):
        labels = np.arange(4)

        def __len__(self):
            return 4

        def __getitem__(self, i):
            return images[i], i

    frames = StaticFrames(Images(), 5)
    sample, label = frames[2]
    assert sample.shape == (5, 1, 9, 9) and label == 2 and all(torch.equal(f, images[2]) for f in sample)
    assert frames.labels.tolist() == [0, 1, 2, 3]
    # EventDrop's time and event operations would blank or thin the image at some steps: not applied.
    augment = make_image_augment(AugmentConfig(drop_time_prob=1.0, drop_event_prob=1.0, drop_area_prob=0.0))
    out = augment(sample, torch.Generator().manual_seed(0))
    assert all(torch.equal(f, out[0]) for f in out) and out.sum() > 0
