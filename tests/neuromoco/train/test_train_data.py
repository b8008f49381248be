"""Per-epoch order through persistent workers, and the stratified label subset."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from neuromoco.train.data import EpochLoader, label_subset
from neuromoco.train.distributed import DistContext
from train_helpers import tiny_config


class Indices(Dataset):
    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        return torch.tensor(index), 0


def test_epoch_order_reaches_persistent_workers(tmp_path):
    cfg = tiny_config(tmp_path)
    cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, num_workers=1))
    ctx = DistContext(0, 1, 0, torch.device("cpu"), owns_group=False)
    dataset = Indices(10)
    loader = EpochLoader(dataset, cfg, ctx, drop_last=False)
    for epoch in (1, 2, 3):
        seen = torch.cat([x for x, _ in loader.epoch(epoch)]).tolist()
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True, seed=cfg.train.seed, drop_last=True)
        sampler.set_epoch(epoch)
        assert seen == list(sampler)
    assert len(loader) == 3  # 10 samples, batches of 4


def test_label_subset_is_stratified_and_seeded():
    labels = np.repeat(np.arange(5), 20)
    keep = label_subset(labels, 0.1, seed=3)
    assert np.bincount(labels[keep]).tolist() == [2] * 5
    assert np.array_equal(keep, label_subset(labels, 0.1, seed=3))
    assert not np.array_equal(keep, label_subset(labels, 0.1, seed=4))
    assert len(label_subset(labels, 1.0, seed=0)) == 100
