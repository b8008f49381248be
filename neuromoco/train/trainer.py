"""The training loop of every stage: NeuroMoCo pre-training, fine-tuning, linear probing.

``run_training(cfg)`` builds the data, the model and the optimizer, trains
for ``[train] epochs`` and leaves in the run folder::

    config.toml          the resolved config (re-loadable with --config)
    checkpoints/last.pt  written atomically after every epoch (format: checkpoint.py)
    metrics.csv          train / knn / test rows
    tensorboard/         the same scalars, when tensorboard is installed
    summary.json         final and best accuracies, time, throughput

The code path is the same on CPU and CUDA (with float16 autocast there), and
under ``torchrun`` with any number of processes (DDP; rank 0 writes).
"""

from __future__ import annotations

import sys

import json
import math
import random
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any, Iterable, Sized, cast

import numpy as np
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from hw_targets.errors import ConfigError
from neuromoco.models.base import SpikingBackbone, readout_logits
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.ssl.moco import MoCo
from neuromoco.ssl.split_bn import convert_split_bn
from neuromoco.train import checkpoint as ckpt
from neuromoco.train.config import TrainConfig, config_from_dict, config_to_dict, dump_toml
from neuromoco.train.data import (
    Sample,
    StageData,
    TwoViewSample,
    as_time_major,
    build_stage_data,
    EpochLoader,
    eval_loader,
    pretrain_dataset,
    supervised_dataset,
)
from neuromoco.train.distributed import DistContext, barrier, setup_distributed, teardown
from neuromoco.train.evaluate import extract_features, knn_top1, top1_accuracy
from neuromoco.train.metrics import MetricsLogger

CONFIG_NAME = "config.toml"
SUMMARY_NAME = "summary.json"
#: Fields that may change when a run is resumed: how it is driven, not what it computes.
RESUMABLE_FIELDS = {
    ("train", "resume"),
    ("train", "epochs"),
    ("train", "progress"),
    ("train", "tensorboard"),
    ("train", "device"),
    ("train", "amp"),
    ("train", "out"),
    ("data", "num_workers"),
    ("data", "data_root"),
}


def seed_everything(seed: int) -> None:
    """Seed Python's, numpy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def lr_factor(step: int, warmup_steps: int, total_steps: int, schedule: str) -> float:
    """Learning-rate multiplier at optimizer step ``step`` (0-based): linear warm-up, then cosine or constant.

    Args:
        step: Steps taken so far.
        warmup_steps: Length of the warm-up.
        total_steps: Steps of the whole run.
        schedule: ``"cosine"`` or ``"constant"``.

    Returns:
        Factor in (0, 1].
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def supervised_loss(model: SpikingBackbone, out: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The classification loss that fits the backbone's read-out, and the logits.

    ``spike_count`` read-outs train with the MSE between each class's firing
    rate and the one-hot label (spikingjelly's recipe): silent wrong classes
    get no gradient and a silent right class is pushed up, whereas
    cross-entropy on spike counts lets every output fall silent, where the
    surrogate gradient can no longer revive it. ``membrane_mean`` read-outs
    train with cross-entropy on the time-mean outputs.

    Args:
        model: The backbone (its ``readout`` decides).
        out: ``[T, B, num_classes]`` float32.
        labels: ``(B,)`` int64.

    Returns:
        ``(loss, logits (B, num_classes))``.
    """
    logits = readout_logits(model, out)
    if model.readout == "spike_count":
        rate = out.mean(0)  # (B, num_classes), in [0, 1]
        return F.mse_loss(rate, F.one_hot(labels, rate.shape[1]).to(rate.dtype)), logits
    return F.cross_entropy(logits, labels), logits


def make_optimizer(params: Iterable[nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """The ``[optim]`` optimizer over ``params``."""
    o = cfg.optim
    if o.optimizer == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)
    return torch.optim.AdamW(params, lr=o.lr, weight_decay=o.weight_decay)


def _check_resumable(saved: dict[str, dict[str, Any]], cfg: TrainConfig, path: Path) -> None:
    current = config_to_dict(cfg)
    differ = [
        f"[{section}] {key}: checkpoint {saved.get(section, {}).get(key)!r}, now {value!r}"
        for section, table in current.items()
        for key, value in table.items()
        if (section, key) not in RESUMABLE_FIELDS and saved.get(section, {}).get(key) != value
    ]
    if differ:
        raise ConfigError(f"{path}: cannot resume with a different config: " + "; ".join(differ))


def _check_same_dynamics(saved: dict[str, Any], model: ModelConfig, init: str) -> None:
    """QAT converts the neurons it builds from ``[model]``: they must be the ``init`` run's."""
    saved = {"hw_timing": False, **saved}  # checkpoints from before the field existed
    fields = ("current_decay", "voltage_decay", "threshold", "hw_timing")
    differ = [f"{k}: init {saved.get(k)!r}, now {getattr(model, k)!r}" for k in fields if saved.get(k) != getattr(model, k)]
    if differ:
        raise ConfigError(f"[train] init={init}: QAT must keep the float run's neurons, but [model] differs ("
                          + "; ".join(differ) + "); set them in [model] as the init run had them")


class Trainer:
    """One stage of one run; see the module docstring for what it writes."""

    def __init__(self, cfg: TrainConfig, data: StageData | None = None) -> None:
        """Set up data, model, optimizer, logs, and resume state.

        Args:
            cfg: The resolved config.
            data: Splits to use instead of building ``cfg.data`` (tests use synthetic ones).

        Raises:
            ConfigError: Bad combination of settings, a run folder that would be
                overwritten, or a checkpoint that does not fit.
        """
        self.cfg = cfg
        self.ctx: DistContext = setup_distributed(cfg.train.device)
        self.device = self.ctx.device
        self.run_dir = cfg.run_dir
        self.stage: str = cfg.train.stage
        self._check_run_dir()
        seed_everything(cfg.train.seed)
        self.data = data if data is not None else build_stage_data(cfg)
        self.amp = cfg.train.amp and self.device.type == "cuda"

        self.model: SpikingBackbone = build_model(
            cfg.model, self.data.input_shape, self.data.num_classes, time_steps=self.data.n_time_bins
        )
        self.init_info: dict[str, Any] | None = None
        if cfg.train.init and not cfg.train.resume:
            self.init_info = ckpt.init_backbone_from(self.model, cfg.train.init, cfg.model)
        if self.stage == "qat":
            from neuromoco.quant.convert import to_quant

            if self.init_info is not None:
                _check_same_dynamics(self.init_info.get("model_cfg", {}), cfg.model, cfg.train.init)
            # Fold batch-norm, map decays/thresholds/weights onto Loihi's integer grid; train in hardware timing.
            self.model = to_quant(self.model, self.data.input_shape)
        self.moco: MoCo | None = None
        self.train_set, self.labelled = self._stage_dataset()
        self.train_loader = EpochLoader(self.train_set, cfg, self.ctx, drop_last=self._drop_last)
        self._eval_loaders: dict[str, DataLoader[Any]] = {}
        trainable = self._stage_module()
        trainable.to(self.device)
        self.trainable = trainable
        self.wrapped: nn.Module = trainable
        if self.ctx.distributed:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(trainable, device_ids=ids)
        params = [p for p in trainable.parameters() if p.requires_grad]
        self.optimizer = make_optimizer(params, cfg)
        self.steps_per_epoch = max(1, len(self.train_loader))
        total = self.steps_per_epoch * cfg.train.epochs
        warmup = round(cfg.optim.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda step: lr_factor(step, warmup, total, cfg.optim.schedule)
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.epoch = 0
        self.global_step = 0
        self.metrics: dict[str, float] = {}
        self.best: dict[str, float] = {}
        self.train_time_s = 0.0
        if cfg.train.resume:
            self._resume()
        if self.ctx.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            (self.run_dir / CONFIG_NAME).write_text(dump_toml(cfg))
        self.logger = MetricsLogger(self.run_dir, cfg.train.tensorboard, enabled=self.ctx.is_main)

    # -- set-up -----------------------------------------------------------------------------

    @property
    def _drop_last(self) -> bool:
        # Pre-training drops the last partial batch: split-BN needs whole groups.
        return self.stage == "pretrain"

    def _check_run_dir(self) -> None:
        last = ckpt.checkpoint_path(self.run_dir)
        if self.cfg.train.resume and not last.is_file():
            raise ConfigError(f"--resume: {last} does not exist; start the run without --resume")
        if not self.cfg.train.resume and last.is_file():
            raise ConfigError(f"{self.run_dir} already holds a run ({last}); pass --resume or choose another --out")

    def _stage_dataset(self) -> tuple[Dataset[Sample | TwoViewSample], int]:
        if self.stage == "pretrain":
            dataset = pretrain_dataset(self.data, self.cfg)
            return dataset, len(cast(Sized, dataset))  # torch's Dataset declares no __len__; ours all have one
        return supervised_dataset(self.data, self.cfg)

    def _stage_module(self) -> nn.Module:
        cfg = self.cfg
        if self.stage == "pretrain":
            # The classifier is not part of the contrastive path; frozen, DDP sees no unused parameters.
            self.model.classifier.requires_grad_(False)
            if not self.ctx.distributed and cfg.moco.bn_splits > 1:
                convert_split_bn(self.model, cfg.moco.bn_splits)
            self.moco = MoCo(self.model, cfg.moco, self.data.n_time_bins)
            return self.moco
        if self.stage == "linear":
            self.model.requires_grad_(False)
            self.model.classifier.requires_grad_(True)
            self.model.to(self.device)
            classifier: nn.Module = self.model.classifier
            return classifier
        model: nn.Module = self.model
        return model

    def _resume(self) -> None:
        path = ckpt.checkpoint_path(self.run_dir)
        state = ckpt.load_checkpoint(path, map_location=self.device)
        _check_resumable(state["config"], self.cfg, path)
        self.model.load_state_dict(state["model"])
        if self.moco is not None:
            query = {f"query_encoder.{k}": v for k, v in state["model"].items()}
            self.moco.load_state_dict({**state["moco"], **query})
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(state["rng"])
        self.epoch = int(state["epoch"])
        self.global_step = int(state["global_step"])
        self.metrics = dict(state["metrics"])
        self.best = dict(state.get("best", {}))
        self.train_time_s = float(state.get("train_time_s", 0.0))

    def autocast(self) -> AbstractContextManager[Any]:
        """float16 autocast on CUDA with ``[train] amp``, else nothing."""
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    # -- one step ---------------------------------------------------------------------------

    def _loss(self, batch: Any) -> tuple[torch.Tensor, int, float]:
        """Loss of one batch, its size and the batch top-1 (NaN in pre-training)."""
        if self.stage == "pretrain":
            (view_1, view_2), _ = batch
            view_1, view_2 = as_time_major(view_1, self.device), as_time_major(view_2, self.device)
            with self.autocast():
                loss = self.wrapped(view_1, view_2)
            return loss, view_1.shape[1], float("nan")
        frames, labels = batch
        x = as_time_major(frames, self.device)
        labels = labels.to(self.device, non_blocking=True)
        try:
            with self.autocast():
                if self.stage == "linear":
                    with torch.no_grad():
                        # Frozen backbone; exactly what the classifier sees in forward (and in evaluation).
                        feats = self.model.classifier_input(x)
                    out = self.wrapped(feats)
                else:
                    out = self.wrapped(x)  # (T, B, num_classes)
                loss, logits = supervised_loss(self.model, out.float(), labels)
        finally:
            functional.reset_net(self.model)
        accuracy = float((logits.argmax(1) == labels).float().mean())
        return loss, x.shape[1], accuracy

    def _set_train_mode(self) -> None:
        if self.stage == "linear":
            self.model.eval()  # frozen batch-norm statistics
            self.model.classifier.train()
        else:
            self.trainable.train()

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training set.

        Returns:
            ``loss``, ``train_top1`` (fine-tuning) and ``samples_per_s`` of the epoch.
        """
        cfg = self.cfg
        loader = self.train_loader.epoch(self.epoch + 1)
        self._set_train_mode()
        bar = tqdm(
            loader,
            desc=f"{self.stage} {self.epoch + 1}/{cfg.train.epochs}",
            disable=not (cfg.train.progress and self.ctx.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        total_loss = total_acc = 0.0
        seen = batches = 0
        start = time.perf_counter()
        for batch in bar:
            loss, size, accuracy = self._loss(batch)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()  # type: ignore[no-untyped-call]  # torch leaves Tensor.backward unannotated
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.scheduler.step()
            self.global_step += 1
            batches += 1
            seen += size * self.ctx.world_size
            total_loss += float(loss.detach())
            total_acc += accuracy
            rate = seen / max(time.perf_counter() - start, 1e-9)
            lr = self.optimizer.param_groups[0]["lr"]
            if self.global_step % cfg.train.log_every == 0:
                self.logger.log("train", self.epoch + 1, self.global_step, loss=float(loss.detach()), lr=lr,
                                samples_per_s=rate)
            bar.set_postfix(loss=f"{total_loss / batches:.4f}", lr=f"{lr:.2e}", sps=f"{rate:.0f}")
        bar.close()
        elapsed = time.perf_counter() - start
        self.train_time_s += elapsed
        out = {"loss": total_loss / max(batches, 1), "samples_per_s": seen / max(elapsed, 1e-9)}
        if self.stage != "pretrain":
            out["train_top1"] = total_acc / max(batches, 1)
        return out

    # -- evaluation -------------------------------------------------------------------------

    def evaluate(self, last: bool) -> dict[str, float]:
        """kNN top-1 (pre-training) or test top-1 (otherwise), when due; rank 0 only."""
        cfg = self.cfg
        every = cfg.train.knn_every if self.stage == "pretrain" else cfg.train.eval_every
        if self.stage == "pretrain":  # knn_every = 0 switches the monitor off
            due = every > 0 and (last or self.epoch % every == 0)
        else:  # the test accuracy is always measured after the last epoch
            due = last or (every > 0 and self.epoch % every == 0)
        if not (due and self.ctx.is_main):
            return {}
        if self.stage == "pretrain":
            bank, bank_labels = extract_features(self.model, self._eval_loader("train"), self.device, self.autocast)
            queries, labels = extract_features(self.model, self._eval_loader("test"), self.device, self.autocast)
            return {"knn_top1": knn_top1(bank, bank_labels, queries, labels, self.data.num_classes, cfg.train.knn_k,
                                         cfg.train.knn_temperature)}
        return {"test_top1": top1_accuracy(self.model, self._eval_loader("test"), self.device, self.autocast)}

    def _eval_loader(self, split: str) -> DataLoader[Any]:
        """The unaugmented loader of a split, built on first use and kept (persistent workers)."""
        if split not in self._eval_loaders:
            self._eval_loaders[split] = eval_loader(self.data.train if split == "train" else self.data.test, self.cfg)
        return self._eval_loaders[split]

    # -- checkpoints and summary ------------------------------------------------------------

    def checkpoint_state(self) -> dict[str, Any]:
        """The checkpoint dict of the current state (format in :mod:`neuromoco.train.checkpoint`)."""
        cfg = self.cfg
        state: dict[str, Any] = {
            "model": self.model.state_dict(),
            "model_name": cfg.model.name,
            "model_cfg": asdict(cfg.model),
            "input_shape": list(self.data.input_shape),
            "num_classes": self.data.num_classes,
            "n_time_bins": self.data.n_time_bins,
            "data_cfg": config_to_dict(cfg)["data"],
            "config": config_to_dict(cfg),
            "stage": self.stage,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": ckpt.rng_state(),
            "metrics": dict(self.metrics),
            "best": dict(self.best),
            "train_time_s": self.train_time_s,
        }
        if self.moco is not None:
            state["moco"] = {k: v for k, v in self.moco.state_dict().items() if not k.startswith("query_encoder.")}
        return state

    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds."""
        cfg = self.cfg
        return {
            "stage": self.stage,
            "model": cfg.model.name,
            "data": cfg.data.name,
            "seed": cfg.train.seed,
            "epochs": self.epoch,
            "label_fraction": cfg.train.label_fraction if self.stage != "pretrain" else None,
            "labelled_samples": self.labelled if self.stage != "pretrain" else 0,
            "train_samples": len(cast(Sized, self.data.train)),
            "test_samples": len(cast(Sized, self.data.test)),
            "loss": cfg.moco.loss if self.stage == "pretrain" else ("rate_mse" if self.model.readout == "spike_count" else "cross_entropy"),
            "init": cfg.train.init or None,
            "final": dict(self.metrics),
            "best": dict(self.best),
            "train_time_s": round(self.train_time_s, 2),
            "samples_per_s": self.metrics.get("samples_per_s"),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "device": str(self.device),
            "world_size": self.ctx.world_size,
            "checkpoint": str(ckpt.checkpoint_path(self.run_dir)),
        }

    def fit(self) -> dict[str, Any]:
        """Train to ``[train] epochs``, checkpointing after every epoch.

        Returns:
            The summary (also written to ``summary.json`` by rank 0).
        """
        cfg = self.cfg
        try:
            while self.epoch < cfg.train.epochs:
                train_metrics = self.train_epoch()
                self.epoch += 1
                eval_metrics = self.evaluate(last=self.epoch == cfg.train.epochs)
                self.metrics = {**train_metrics, **eval_metrics}
                for key, value in eval_metrics.items():
                    self.best[key] = max(value, self.best.get(key, value))
                    self.logger.log("test" if key == "test_top1" else "knn", self.epoch, self.global_step, **{key: value})
                self.logger.log("epoch", self.epoch, self.global_step, elapsed_s=self.train_time_s, **train_metrics)
                if self.ctx.is_main:
                    ckpt.save_checkpoint(self.checkpoint_state(), ckpt.checkpoint_path(self.run_dir))
                    shown = " ".join(f"{k}={v:.4g}" for k, v in self.metrics.items())
                    tqdm.write(f"{self.stage} epoch {self.epoch}/{cfg.train.epochs}: {shown}")
                barrier(self.ctx)
            summary = self.summary()
            if self.ctx.is_main:
                (self.run_dir / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
            return summary
        finally:
            self.logger.close()
            teardown(self.ctx)


def run_training(cfg: TrainConfig, data: StageData | None = None) -> dict[str, Any]:
    """Run one stage as ``cfg`` says (``nmoco train`` calls this).

    Args:
        cfg: The resolved config.
        data: Splits to use instead of building ``cfg.data``.

    Returns:
        The run summary.
    """
    return Trainer(cfg, data).fit()


def resolved_config_of(run_dir: str | Path) -> TrainConfig:
    """Read a run folder's ``config.toml`` back (``config_from_dict`` of the saved tables)."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser from PyPI
        import tomli as tomllib

    with (Path(run_dir) / CONFIG_NAME).open("rb") as handle:
        return config_from_dict(tomllib.load(handle))

