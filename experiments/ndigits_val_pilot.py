"""Pilot runs of the ndigits NeuroMoCo recipes on a validation split carved from the TRAINING split.

The fixed ndigits test split is never read: the 1,438 training samples are split (stratified,
fixed generator 123) into 1,079 for training (pre-training, and the labelled subsets drawn from
them) and 359 for validation, which takes the place of the test split (``test_top1`` and the kNN
monitor's queries are measured on it). This is how the recipe of the issue-4 run was chosen.

    python experiments/ndigits_val_pilot.py NAME STAGE [section.field=TOML-value ...]
    python experiments/ndigits_val_pilot.py pre pretrain train.epochs=60 moco.loss='"infonce"'
    python experiments/ndigits_val_pilot.py ft finetune train.label_fraction=0.1 train.epochs=100 \\
        train.init='"runs/pilot/pre"'

Runs go to ``runs/pilot/NAME``; ``--features RUN...`` instead prints, for each run, the kNN (k = 20)
accuracy of its time-mean features on the validation split with all 1,079 training labels and with
the 10 % subset (110), and a logistic regression fitted on that subset (scikit-learn).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from neuromoco.train.config import TrainConfig, config_from_dict, load_config
from neuromoco.train.data import StageData, build_stage_data, dataset_labels, label_subset
from neuromoco.train.trainer import run_training

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VAL_FRACTION, VAL_SEED = 0.25, 123


class Rows(Dataset):  # type: ignore[type-arg]
    """Some rows of a framed dataset, with its ``labels``."""

    def __init__(self, base: Any, rows: np.ndarray, labels: np.ndarray) -> None:
        self.base, self.rows, self.labels = base, [int(i) for i in rows], labels[rows]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> Any:
        return self.base[self.rows[index]]


def val_split(cfg: TrainConfig) -> StageData:
    """``cfg``'s data with the training split cut into train' (75 %) and validation (25 %, as ``test``)."""
    data = build_stage_data(cfg)
    labels = dataset_labels(data.train)
    rng = np.random.default_rng(VAL_SEED)
    members = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    val = np.sort(np.concatenate([rng.choice(m, size=round(VAL_FRACTION * len(m)), replace=False) for m in members]))
    train = np.setdiff1d(np.arange(len(labels)), val)
    return dataclasses.replace(data, train=Rows(data.train, train, labels), test=Rows(data.train, val, labels))


def features(runs: list[str]) -> None:
    from sklearn.linear_model import LogisticRegression

    from neuromoco.train.checkpoint import load_model_from_run
    from neuromoco.train.evaluate import extract_features, knn_top1

    cfg = load_config(CONFIGS / "ndigits_loihinet_s_finetune.toml")
    data = val_split(cfg)
    for run in runs:
        model, _ = load_model_from_run(run)
        bank, bank_labels = extract_features(model, DataLoader(data.train, batch_size=64), torch.device("cpu"), nullcontext)
        query, query_labels = extract_features(model, DataLoader(data.test, batch_size=64), torch.device("cpu"), nullcontext)
        sub = torch.as_tensor(label_subset(bank_labels.numpy(), 0.1, 0))
        all_knn = knn_top1(bank, bank_labels, query, query_labels, data.num_classes, 20, 0.1)
        sub_knn = knn_top1(bank[sub], bank_labels[sub], query, query_labels, data.num_classes, 20, 0.1)
        logreg = LogisticRegression(C=10, max_iter=2000).fit(bank[sub].numpy(), bank_labels[sub].numpy())
        print(f"{run}: knn_all={all_knn:.4f} knn_10pct={sub_knn:.4f} "
              f"logreg_10pct={logreg.score(query.numpy(), query_labels.numpy()):.4f}", flush=True)


def main() -> None:
    torch.set_num_threads(1)
    if sys.argv[1:2] == ["--features"]:
        features(sys.argv[2:])
        return
    name, stage, *changes = sys.argv[1:]
    tables: dict[str, dict[str, Any]] = {"train": {"progress": False, "tensorboard": False}, "data": {"num_workers": 0}}
    for change in changes:  # section.field=TOML-value, checked like a config file's
        key, value = change.split("=", 1)
        section, field = key.split(".")
        tables.setdefault(section, {})[field] = tomllib.loads(f"x = {value}")["x"]
    cfg = config_from_dict(tables, base=load_config(CONFIGS / f"ndigits_loihinet_s_{stage}.toml",
                                                     {"out": f"runs/pilot/{name}"}))
    start = time.perf_counter()
    summary = run_training(cfg, val_split(cfg))
    print("RESULT", name, json.dumps(summary["final"]), f"wall={time.perf_counter() - start:.1f}s", flush=True)


if __name__ == "__main__":
    main()
