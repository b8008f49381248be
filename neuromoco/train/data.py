"""What a training stage reads: the framed splits, the view augmentation, and per-epoch loaders.

Every epoch's sample order comes from a ``DistributedSampler`` seeded by
``(seed, epoch)`` (one replica without DDP), and the augmentations from
``(seed, epoch, index, view)`` (:mod:`neuromoco.data.loader`), so an epoch's
batches are the same whether the run went straight through or was resumed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sized, TypeVar

import numpy as np
import numpy.typing as npt
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Subset

from neuromoco.data import AugmentedDataset, TwoViewDataset, dataset_info, make_augment, make_loader
from neuromoco.data.registry import build_frames, is_static
from neuromoco.data.static import make_image_augment
from neuromoco.train.config import TrainConfig
from neuromoco.train.distributed import DistContext

Augment = Any  # ``augment(frames (T, P, H, W), generator) -> (T, P, H, W)``, from ``make_augment``
#: A framed sample, ``(frames (T, C, H, W) float32, label)``.
Sample = tuple[torch.Tensor, int]
#: A pre-training sample, ``((view_1, view_2), label)``, each view ``(T, C, H, W)``.
TwoViewSample = tuple[tuple[torch.Tensor, torch.Tensor], int]
_Item_co = TypeVar("_Item_co", covariant=True)


@dataclass
class StageData:
    """The inputs of one training stage.

    Attributes:
        train: Framed train split, item ``(frames (T, C, H, W), label)``.
        test: Framed test split.
        num_classes: Number of labels.
        input_shape: ``(C, H, W)`` of one frame.
        n_time_bins: ``T``.
        augment: View augmentation (``make_augment``).
    """

    train: Dataset[Sample]
    test: Dataset[Sample]
    num_classes: int
    input_shape: tuple[int, int, int]
    n_time_bins: int
    augment: Augment


def build_stage_data(cfg: TrainConfig) -> StageData:
    """Build the splits and the augmentation the config names.

    Raises:
        ConfigError, DataError: From the data package (bad name, missing files).
    """
    info = dataset_info(cfg.data)
    # Static images become T identical frames; the model's input encoder re-codes them.
    train, test = build_frames(cfg.data, "train"), build_frames(cfg.data, "test")
    augment = make_image_augment(cfg.augment, info) if is_static(info.name) else make_augment(cfg.augment, info)
    return StageData(
        train=train,
        test=test,
        num_classes=info.num_classes,
        input_shape=info.input_shape,
        n_time_bins=info.n_time_bins,
        augment=augment,
    )


def dataset_labels(dataset: Dataset[Sample]) -> npt.NDArray[np.int64]:
    """Labels of a framed dataset (its ``labels`` array, else read item by item)."""
    labels = getattr(dataset, "labels", None)
    if labels is not None:
        return np.asarray(labels, dtype=np.int64)
    assert isinstance(dataset, Sized)
    return np.array([int(dataset[i][1]) for i in range(len(dataset))], dtype=np.int64)


def label_subset(labels: npt.NDArray[np.int64], fraction: float, seed: int) -> npt.NDArray[np.int64]:
    """A stratified subset of sample indices: ``ceil(fraction * n_c)`` of each class ``c``.

    Args:
        labels: ``(N,)`` int labels.
        fraction: Share kept, in (0, 1].
        seed: Which samples are kept.

    Returns:
        Sorted int64 indices.
    """
    if fraction >= 1.0:
        return np.arange(len(labels), dtype=np.int64)
    rng = np.random.default_rng([seed, 7])  # 7: the label-subset stream of the run seed
    keep = []
    for cls in np.unique(labels):
        members = np.flatnonzero(labels == cls)
        count = max(1, int(np.ceil(fraction * len(members))))
        keep.append(rng.choice(members, size=count, replace=False))
    return np.sort(np.concatenate(keep)).astype(np.int64)


class EpochOrder(Dataset[_Item_co]):
    """``dataset`` read in an order that is rewritten every epoch, also inside persistent workers.

    The order lives in a shared-memory tensor (as the epoch of
    :class:`neuromoco.data.TwoViewDataset` does), so one DataLoader with
    persistent workers serves the whole run instead of starting new worker
    processes every epoch.
    """

    def __init__(self, dataset: Dataset[_Item_co], length: int) -> None:
        self.dataset = dataset
        # torch leaves Tensor.share_memory_ unannotated.
        self._order: torch.Tensor = torch.arange(length, dtype=torch.int64).share_memory_()  # type: ignore[no-untyped-call]

    def set_order(self, order: list[int]) -> None:
        """The dataset indices of the next epoch, one per position (same length every epoch)."""
        self._order.copy_(torch.as_tensor(order, dtype=torch.int64))

    def __len__(self) -> int:
        return int(self._order.numel())

    def __getitem__(self, index: int) -> _Item_co:
        return self.dataset[int(self._order[index])]


class EpochLoader:
    """One training loader for the whole run; each epoch is this rank's share of a seeded ``DistributedSampler``."""

    def __init__(
        self, dataset: Dataset[Sample | TwoViewSample], cfg: TrainConfig, ctx: DistContext, *, drop_last: bool
    ) -> None:
        """Build the loader (its workers start on the first epoch).

        Args:
            dataset: A (possibly two-view) dataset; its ``set_epoch`` is called when it has one.
            cfg: Seed, batch size and workers.
            ctx: Rank and world size.
            drop_last: Drop the last incomplete batch.
        """
        self.dataset = dataset
        # drop_last in the sampler gives every rank the same number of samples, every epoch.
        self.sampler: DistributedSampler[int] = DistributedSampler(
            dataset, num_replicas=ctx.world_size, rank=ctx.rank, shuffle=True, seed=cfg.train.seed, drop_last=True
        )
        self.view = EpochOrder(dataset, len(self.sampler))
        self.loader: DataLoader[Any] = make_loader(
            self.view,
            cfg.optim.batch_size,
            shuffle=False,
            seed=cfg.train.seed,
            num_workers=cfg.data.resolved_num_workers,
            drop_last=drop_last,
        )

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int) -> DataLoader[Any]:
        """The loader, set to the order and the views of ``epoch`` (1-based).

        Call it before iterating: persistent workers fetch only after ``iter``.
        """
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        self.sampler.set_epoch(epoch)
        self.view.set_order(list(self.sampler))
        return self.loader


def eval_loader(dataset: Dataset[Sample], cfg: TrainConfig) -> DataLoader[Any]:
    """All of ``dataset`` in order, unaugmented (kNN bank, test accuracy); build once and reuse."""
    loader: DataLoader[Any] = make_loader(
        dataset, cfg.optim.batch_size, shuffle=False, seed=cfg.train.seed, num_workers=cfg.data.resolved_num_workers
    )
    return loader


def pretrain_dataset(data: StageData, cfg: TrainConfig) -> Dataset[TwoViewSample]:
    """Two augmented views of every training sample; labels are never read by the loss."""
    views: Dataset[TwoViewSample] = TwoViewDataset(data.train, data.augment, cfg.train.seed)
    return views


def supervised_dataset(data: StageData, cfg: TrainConfig) -> tuple[Dataset[Sample], int]:
    """The labelled share of the training split, augmented when ``[train] augment``.

    Returns:
        The dataset and the number of labelled samples.
    """
    indices = label_subset(dataset_labels(data.train), cfg.train.label_fraction, cfg.train.seed)
    labelled: Dataset[Sample] = Subset(data.train, indices.tolist())
    if cfg.train.augment:
        labelled = AugmentedDataset(labelled, data.augment, cfg.train.seed)
    return labelled, len(indices)


def as_time_major(frames: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Loader batch ``(B, T, C, H, W)`` to model input ``[T, B, C, H, W]`` on ``device``."""
    return frames.to(device, non_blocking=True).transpose(0, 1)
