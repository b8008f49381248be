"""Fixed, seeded, stratified train/test splits, kept in the cache.

DVS-CIFAR10 and N-Caltech101 publish no split. Like Spikformer and most SNN
papers (spikingjelly's ``split_to_train_test_set(0.9, ...)``) we hold out 10 %
of every class. The split is a pure function of the sorted sample ids and the
seed; it is also written to ``<cache>/splits/`` so a run can be audited and the
same file copied to another machine.
"""

from __future__ import annotations

from typing import Any

import json
import warnings
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from neuromoco.data.cache import cache_dir, save_json

#: Generator stream of splits: ``default_rng([seed, _SPLIT_STREAM])``.
_SPLIT_STREAM = 7
SPLIT_FORMAT = 1


def stratified_split(labels: NDArray[Any], test_fraction: float, seed: int) -> tuple[NDArray[Any], NDArray[Any]]:
    """Hold out ``test_fraction`` of every class, at random under ``seed``.

    A class with at least two samples keeps at least one on each side.

    Args:
        labels: ``(N,)`` integer labels, in the dataset's fixed order.
        test_fraction: Held-out fraction per class, in (0, 1).
        seed: Split seed.

    Returns:
        ``(train, test)`` sorted int64 indices into ``labels``.
    """
    rng = np.random.default_rng([seed, _SPLIT_STREAM])
    train: list[NDArray[Any]] = []
    test: list[NDArray[Any]] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(np.floor(len(members) * test_fraction + 0.5))
        if len(members) >= 2:
            n_test = min(max(n_test, 1), len(members) - 1)
        test.append(members[:n_test])
        train.append(members[n_test:])
    return np.sort(np.concatenate(train)).astype(np.int64), np.sort(np.concatenate(test)).astype(np.int64)


def cached_split(
    name: str, key: str, ids: list[str], labels: NDArray[Any], test_fraction: float, seed: int
) -> tuple[NDArray[Any], NDArray[Any]]:
    """:func:`stratified_split`, read from or written to ``<cache>/splits/<name>-<key>.json``.

    A cached split is used when it lists exactly ``ids``; otherwise (files were added
    or removed) the split is recomputed and rewritten, with a warning.

    Args:
        name: Dataset name (file name).
        key: Identifies the data folder and the seed (file name).
        ids: One stable id per sample (relative path), in the dataset's fixed order.
        labels: ``(N,)`` labels, aligned with ``ids``.
        test_fraction: Held-out fraction per class.
        seed: Split seed.

    Returns:
        ``(train, test)`` sorted indices into ``ids``.
    """
    path = cache_dir("splits") / f"{name}-{key}.json"
    position = {sample_id: i for i, sample_id in enumerate(ids)}
    stored = _read(path)
    if stored is not None:
        listed = stored.get("train", []) + stored.get("test", [])
        if len(listed) == len(ids) and set(listed) == set(position):
            train = np.sort(np.array([position[s] for s in stored["train"]], dtype=np.int64))
            test = np.sort(np.array([position[s] for s in stored["test"]], dtype=np.int64))
            return train, test
        warnings.warn(f"{path}: the dataset's files changed since this split was written; recomputing it", stacklevel=2)
    train, test = stratified_split(labels, test_fraction, seed)
    save_json(
        path,
        {
            "format": SPLIT_FORMAT,
            "dataset": name,
            "seed": seed,
            "test_fraction": test_fraction,
            "train": [ids[i] for i in train],
            "test": [ids[i] for i in test],
        },
    )
    return train, test


def _read(path: Path) -> dict[str, list[str]] | None:
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        warnings.warn(f"{path}: unreadable cached split; recomputing it", stacklevel=3)
        return None
    return data if isinstance(data, dict) and data.get("format") == SPLIT_FORMAT else None
