"""Two-view datasets for SSL, and DataLoaders seeded per worker.

A view's randomness is drawn from a generator seeded by ``(seed, epoch,
index, view)``, not from the worker's state, so the views of a sample are the
same whatever the number of workers and whichever worker loads it. The epoch
lives in shared memory: ``set_epoch`` in the training process reaches
persistent workers too (call it before iterating the loader).
"""

from __future__ import annotations

import random
from typing import Iterator, Sized

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from neuromoco.data.augment import Augment
from neuromoco.data.config import DataConfig

#: Generator streams: ``SeedSequence([seed, stream, ...])``.
_AUGMENT_STREAM, _SHUFFLE_STREAM = 11, 12


def view_generator(seed: int, epoch: int, index: int, view: int) -> torch.Generator:
    """The generator of one view of one sample in one epoch."""
    state = np.random.SeedSequence([seed, _AUGMENT_STREAM, epoch, index, view]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


class _EpochDataset(Dataset):  # type: ignore[type-arg]
    def __init__(self, dataset: Dataset, augment: Augment, seed: int) -> None:  # type: ignore[type-arg]
        self.dataset = dataset
        self.augment = augment
        self.seed = seed
        self._epoch = torch.zeros(1, dtype=torch.int64).share_memory_()  # type: ignore[no-untyped-call]

    @property
    def epoch(self) -> int:
        """The epoch the views are drawn for."""
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Draw new views for ``epoch`` (seen by persistent workers too)."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        assert isinstance(self.dataset, Sized)
        return len(self.dataset)

    def _view(self, frames: torch.Tensor, index: int, view: int) -> torch.Tensor:
        return self.augment(frames, view_generator(self.seed, self.epoch, index, view))


class TwoViewDataset(_EpochDataset):
    """Item ``((view1, view2), label)``: two independent augmentations of a framed sample.

    Deterministic under ``(seed, epoch)``; each view has the wrapped item's shape.
    """

    def __init__(self, dataset: Dataset, augment: Augment, seed: int = 0) -> None:  # type: ignore[type-arg]
        """Wrap a framed dataset.

        Args:
            dataset: Item ``(frames (T, 2, H, W), label)``.
            augment: From :func:`make_augment`.
            seed: Augmentation seed.
        """
        super().__init__(dataset, augment, seed)

    def __getitem__(self, index: int) -> tuple[tuple[torch.Tensor, torch.Tensor], int]:
        frames, label = self.dataset[index]
        return (self._view(frames, index, 0), self._view(frames, index, 1)), label


class AugmentedDataset(_EpochDataset):
    """Item ``(view, label)``: one augmentation of a framed sample (supervised fine-tuning)."""

    def __init__(self, dataset: Dataset, augment: Augment, seed: int = 0) -> None:  # type: ignore[type-arg]
        """Wrap a framed dataset (see :class:`TwoViewDataset`)."""
        super().__init__(dataset, augment, seed)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        frames, label = self.dataset[index]
        return self._view(frames, index, 0), label


class SeededShuffle(Sampler[int]):
    """A fresh permutation each epoch, a function of ``(seed, epoch)`` only.

    DataLoader's own shuffling draws from the loader's generator, which it also uses
    for worker seeds once per iterator, so the order would depend on the worker
    count and on persistent workers; this sampler's does not. The epoch counts the
    passes over it; :meth:`set_epoch` sets it (resuming a run).
    """

    def __init__(self, size: int, seed: int) -> None:
        """Shuffle ``range(size)`` under ``seed``."""
        self.size = size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """The next pass draws the permutation of ``epoch``."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[int]:
        state = np.random.SeedSequence([self.seed, _SHUFFLE_STREAM, self.epoch]).generate_state(1, np.uint64)
        self.epoch += 1
        generator = torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))
        return iter(torch.randperm(self.size, generator=generator).tolist())


def seed_worker(worker_id: int) -> None:
    """Seed Python's and numpy's global generators in a worker from torch's per-worker seed."""
    seed = torch.initial_seed() % 2**32  # torch sets base_seed + worker_id
    np.random.seed(seed)
    random.seed(seed)


def make_loader(
    dataset: Dataset,  # type: ignore[type-arg]
    batch_size: int,
    *,
    shuffle: bool,
    seed: int,
    num_workers: int | None = None,
    drop_last: bool = False,
) -> DataLoader:  # type: ignore[type-arg]
    """A DataLoader with seeded shuffling and workers.

    Batches of a framed dataset are ``(B, T, 2, H, W)`` float32 (models transpose to
    ``[T, B, ...]``); of a :class:`TwoViewDataset`, ``((view1, view2), labels)``.

    Args:
        dataset: Any dataset of this package.
        batch_size: Samples per batch.
        shuffle: Reshuffle every epoch with :class:`SeededShuffle` (the order is a function of
            ``seed`` and the epoch only; ``loader.sampler.set_epoch(e)`` when resuming).
        seed: Seeds the shuffling and the workers' base seed.
        num_workers: Worker processes; None uses ``DataConfig().resolved_num_workers``.
        drop_last: Drop the last incomplete batch.

    Returns:
        The loader: ``pin_memory`` when CUDA is available, ``persistent_workers`` when it has workers.
    """
    workers = DataConfig().resolved_num_workers if num_workers is None else int(num_workers)
    generator = torch.Generator().manual_seed(int(seed))
    sampler = SeededShuffle(len(dataset), int(seed)) if shuffle else None  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=drop_last,
        num_workers=workers,
        pin_memory=torch.cuda.is_available(),
        persistent_workers=workers > 0,
        worker_init_fn=seed_worker,
        generator=generator,
        prefetch_factor=4 if workers > 0 else None,
    )
