"""Two-view datasets and DataLoaders: batch shapes, and the same views whatever the worker count."""

from __future__ import annotations

import pytest
import torch

from neuromoco.data import AugmentConfig, AugmentedDataset, DataConfig, TwoViewDataset, build_dataset, make_augment, make_loader

COUNT = 40


@pytest.fixture(scope="module")
def framed():  # type: ignore[no-untyped-def]
    return build_dataset(DataConfig(ndigits_count=COUNT), "train")


def test_two_views_are_independent_and_deterministic(framed) -> None:  # type: ignore[no-untyped-def]
    views = TwoViewDataset(framed, make_augment(AugmentConfig()), seed=0)
    (v1, v2), label = views[2]
    frames, same_label = framed[2]
    assert v1.shape == v2.shape == frames.shape and label == same_label
    assert not torch.equal(v1, v2)
    (w1, w2), _ = TwoViewDataset(framed, make_augment(AugmentConfig()), seed=0)[2]
    assert torch.equal(v1, w1) and torch.equal(v2, w2)
    views.set_epoch(1)
    (e1, _), _ = views[2]
    assert not torch.equal(e1, v1), "a new epoch draws new views"
    single, _ = AugmentedDataset(framed, make_augment(AugmentConfig()), seed=0)[2]
    assert torch.equal(single, v1)


def _epochs(dataset, workers: int, epochs: int = 2):  # type: ignore[no-untyped-def]
    loader = make_loader(dataset, 8, shuffle=True, seed=3, num_workers=workers)
    out = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        out.append([(v1.clone(), v2.clone(), y.clone()) for (v1, v2), y in loader])
    return loader, out


def test_loader_batches_and_worker_independence(framed) -> None:  # type: ignore[no-untyped-def]
    dataset = TwoViewDataset(framed, make_augment(AugmentConfig()), seed=0)
    loader, main = _epochs(dataset, workers=0)
    (v1, v2, labels) = main[0][0]
    assert v1.shape == (8, 8, 2, 34, 34) and v1.dtype == torch.float32 and labels.dtype == torch.int64
    assert loader.persistent_workers is False
    workers_loader, workers = _epochs(dataset, workers=2)
    assert workers_loader.persistent_workers is True
    for epoch in range(2):
        for a, b in zip(main[epoch], workers[epoch]):
            assert all(torch.equal(x, y) for x, y in zip(a, b)), f"epoch {epoch}: workers changed the batches"
    assert not torch.equal(main[0][0][2], main[1][0][2]), "shuffled anew each epoch"


def test_plain_batches(framed) -> None:  # type: ignore[no-untyped-def]
    frames, labels = next(iter(make_loader(framed, 5, shuffle=False, seed=0, num_workers=0, drop_last=True)))
    assert frames.shape == (5, 8, 2, 34, 34) and labels.tolist() == [int(framed[i][1]) for i in range(5)]
