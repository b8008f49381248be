"""Synthetic data and tiny configs for the training tests (no dataset generation, seconds per run)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from neuromoco.data import AugmentConfig, DataConfig, make_augment
from neuromoco.models import ModelConfig
from neuromoco.ssl.config import MoCoConfig
from neuromoco.train.config import OptimConfig, RunConfig, TrainConfig
from neuromoco.train.data import StageData

T, SIZE, NUM_CLASSES = 3, 16, 4
INPUT_SHAPE = (2, SIZE, SIZE)


class SyntheticFrames(Dataset):
    """Count frames where class ``c`` lights a bar at row ``4c``; item ``(frames (T, 2, H, W), label)``."""

    def __init__(self, count: int, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.labels = np.arange(count, dtype=np.int64) % NUM_CLASSES
        frames = (torch.rand(count, T, *INPUT_SHAPE, generator=gen) < 0.05).float()
        for i, label in enumerate(self.labels):
            frames[i, :, int(label) % 2, 4 * int(label) : 4 * int(label) + 3, 2:14] += 2.0
        self.frames = frames

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.frames[index], int(self.labels[index])


def stage_data(train_count: int = 16, test_count: int = 8) -> StageData:
    """Tiny synthetic splits with the default augmentation."""
    return StageData(
        train=SyntheticFrames(train_count, seed=0),
        test=SyntheticFrames(test_count, seed=1),
        num_classes=NUM_CLASSES,
        input_shape=INPUT_SHAPE,
        n_time_bins=T,
        augment=make_augment(AugmentConfig(), None),
    )


def tiny_config(out: Path, **train: Any) -> TrainConfig:
    """A config that trains ``loihinet_s`` on :func:`stage_data` in about a second per epoch."""
    run = dict(epochs=1, out=str(out), progress=False, tensorboard=False, knn_every=1, eval_every=1, log_every=1)
    run.update(train)
    return TrainConfig(
        data=DataConfig(num_workers=0),
        model=ModelConfig(name="loihinet_s"),
        moco=MoCoConfig(dim=8, hidden_dim=16, queue_size=12, bn_splits=2),
        optim=OptimConfig(batch_size=4, warmup_epochs=0.5),
        train=RunConfig(**run),
    )


def replace_train(cfg: TrainConfig, **changes: Any) -> TrainConfig:
    """``cfg`` with some ``[train]`` fields changed."""
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, **changes))
