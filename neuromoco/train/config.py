"""``TrainConfig``: every setting of ``nmoco train``, one frozen dataclass per TOML section.

A TOML file has the sections ``[data]``, ``[augment]``, ``[model]``,
``[moco]``, ``[optim]`` and ``[train]``; each key is a field of that
section's dataclass, and the dataclass fields hold the only defaults. A CLI
flag sets one field (``--epochs`` is ``train.epochs``). Unknown sections and
keys are errors naming them. The resolved config is written back as TOML
(:func:`dump_toml`) next to the checkpoints and loads again unchanged.
"""

from __future__ import annotations

import sys

import dataclasses
import math
if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI
    import tomli as tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from hw_targets.errors import ConfigError
from neuromoco.data import AugmentConfig, DataConfig
from neuromoco.models.registry import ModelConfig
from neuromoco.ssl.config import MoCoConfig

STAGES = ("pretrain", "finetune", "linear", "qat")
OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")


@dataclass(frozen=True)
class OptimConfig:
    """The ``[optim]`` section.

    Attributes:
        optimizer: ``"adamw"`` or ``"sgd"`` (with ``momentum``).
        lr: Peak learning rate, for ``batch_size`` samples per process (not rescaled).
        momentum: SGD momentum.
        weight_decay: Decoupled (AdamW) or L2 (SGD) weight decay.
        batch_size: Samples per step and process.
        schedule: ``"cosine"`` decay to 0 over the run after warm-up, or ``"constant"``.
        warmup_epochs: Linear warm-up from 0, in epochs (may be fractional).
    """

    optimizer: str = "adamw"
    lr: float = 2e-3
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 64
    schedule: str = "cosine"
    warmup_epochs: float = 1.0

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"[optim] optimizer={self.optimizer!r}: choose one of {list(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"[optim] schedule={self.schedule!r}: choose one of {list(SCHEDULES)}")
        if self.lr <= 0 or self.batch_size < 1 or self.weight_decay < 0 or self.warmup_epochs < 0:
            raise ConfigError("[optim] lr and batch_size must be positive, weight_decay and warmup_epochs >= 0")


@dataclass(frozen=True)
class RunConfig:
    """The ``[train]`` section: the stage and how the run is driven.

    Attributes:
        stage: ``"pretrain"`` (NeuroMoCo, no labels), ``"finetune"`` (all weights), ``"linear"`` (frozen backbone),
            ``"qat"`` (loihinet only: fine-tune the integer Loihi twin of the ``init`` model, in hardware timing).
        epochs: Passes over the (labelled) training set.
        seed: Seed of initialisation, shuffling, augmentation and the label subset.
        label_fraction: Share of training labels used by ``finetune``/``linear`` (stratified per class).
        init: Pre-training run folder or checkpoint to start from; empty for random initialisation.
        out: Run folder; empty means ``runs/<model>-<stage>-s<seed>``.
        resume: Continue from ``<out>/checkpoints/last.pt``.
        device: ``"auto"`` (CUDA when present), ``"cpu"`` or ``"cuda"``.
        amp: Mixed precision (float16 autocast + grad scaling) on CUDA; no effect on CPU.
        augment: Augment the single view in ``finetune``/``linear`` with ``[augment]``.
        knn_every: Pre-training: kNN accuracy of frozen features every this many epochs (0: never).
        knn_k: Neighbours of the kNN monitor.
        knn_temperature: Weighting temperature of the kNN vote (Wu et al. 2018).
        eval_every: Fine-tuning: test top-1 every this many epochs (always after the last).
        log_every: Steps between metric rows.
        tensorboard: Also write TensorBoard events (needs the ``tensorboard`` package).
        progress: Show a tqdm bar.
    """

    stage: str = "pretrain"
    epochs: int = 30
    seed: int = 0
    label_fraction: float = 1.0
    init: str = ""
    out: str = ""
    resume: bool = False
    device: str = "auto"
    amp: bool = True
    augment: bool = True
    knn_every: int = 5
    knn_k: int = 20
    knn_temperature: float = 0.1
    eval_every: int = 5
    log_every: int = 10
    tensorboard: bool = True
    progress: bool = True

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ConfigError(f"[train] stage={self.stage!r}: choose one of {list(STAGES)}")
        if not 0.0 < self.label_fraction <= 1.0:
            raise ConfigError(f"[train] label_fraction={self.label_fraction!r} must lie in (0, 1]")
        if self.epochs < 1:
            raise ConfigError(f"[train] epochs={self.epochs!r} must be >= 1")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ConfigError(f"[train] device={self.device!r}: choose auto, cpu or cuda")
        if min(self.knn_every, self.eval_every) < 0 or self.knn_k < 1 or self.log_every < 1:
            raise ConfigError("[train] knn_every/eval_every must be >= 0, knn_k and log_every >= 1")


@dataclass(frozen=True)
class TrainConfig:
    """Everything ``nmoco train`` needs; one attribute per TOML section."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    moco: MoCoConfig = field(default_factory=MoCoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        from neuromoco.data.registry import is_static

        if self.train.stage == "pretrain" and self.optim.batch_size % self.moco.bn_splits:
            raise ConfigError(
                f"[optim] batch_size={self.optim.batch_size} must be a multiple of [moco] bn_splits={self.moco.bn_splits}"
            )
        encoding = self.model.encoding
        if encoding != "direct" and not is_static(self.data.name):
            raise ConfigError(
                f"[model] encoding={encoding!r} codes static images, but [data] name={self.data.name!r} gives event "
                "frames; use encoding='direct' or a static-image dataset (digits, imagefolder)"
            )
        if encoding == "hybrid" and self.data.n_time_bins < 2:
            raise ConfigError(
                f"[model] encoding='hybrid' needs [data] n_time_bins >= 2 (one analog step, then latency spikes), "
                f"got {self.data.n_time_bins}"
            )
        if self.train.stage == "qat" and (self.model.neuron != "lif" or encoding != "direct"):
            raise ConfigError(
                f"[train] stage='qat' trains the integer Loihi twin, which has fixed-parameter CUBA-LIF neurons and "
                f"takes the frames as given; got [model] neuron={self.model.neuron!r}, encoding={encoding!r}: "
                "use neuron='lif', encoding='direct'"
            )

    @property
    def run_dir(self) -> Path:
        """The run folder: ``train.out``, or ``runs/<model>-<stage>-s<seed>`` when empty."""
        if self.train.out:
            return Path(self.train.out)
        return Path("runs") / f"{self.model.name}-{self.train.stage}-s{self.train.seed}"


#: TOML section name -> attribute of :class:`TrainConfig`.
SECTIONS: dict[str, str] = {f.name: f.name for f in dataclasses.fields(TrainConfig)}

#: CLI flag destination -> (section, field). Each flag sets exactly one field.
FLAG_FIELDS: dict[str, tuple[str, str]] = {
    "stage": ("train", "stage"),
    "data": ("data", "name"),
    "data_root": ("data", "data_root"),
    "out": ("train", "out"),
    "resume": ("train", "resume"),
    "model": ("model", "name"),
    "label_fraction": ("train", "label_fraction"),
    "epochs": ("train", "epochs"),
    "seed": ("train", "seed"),
    "init": ("train", "init"),
    "neuron": ("model", "neuron"),
    "encoding": ("model", "encoding"),
}


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check a TOML value against a field's type hint; lists become tuples."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except ConfigError:
                pass
        raise ConfigError(f"{where}: {value!r} is not a {hint}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, where) for a, v in zip(args, value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _section(cls: type, table: Mapping[str, Any], section: str, base: Any = None) -> Any:
    """Build dataclass ``cls`` from a TOML table on top of ``base`` (or the defaults).

    Raises:
        ConfigError: Unknown key, wrong type, or a value the dataclass rejects.
    """
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if not isinstance(table, Mapping):
        raise ConfigError(f"[{section}] must be a table, got {table!r}")
    for key in table:
        if key not in names:
            raise ConfigError(f"unknown key {key!r} in section [{section}]; known keys: {', '.join(names)}")
    values = {k: _coerce(v, hints[k], f"[{section}] {k}") for k, v in table.items()}
    try:
        return dataclasses.replace(base, **values) if base is not None else cls(**values)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[{section}]: {exc}") from None


def config_from_dict(tables: Mapping[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Build a :class:`TrainConfig` from TOML-like tables, on top of ``base`` or the defaults.

    Args:
        tables: ``{"data": {...}, "train": {...}, ...}``; any section may be missing.
        base: Values to start from.

    Returns:
        The config.

    Raises:
        ConfigError: Unknown section or key, wrong type, or an invalid value.
    """
    base = base if base is not None else TrainConfig()
    for name in tables:
        if name not in SECTIONS:
            raise ConfigError(f"unknown section [{name}]; known sections: {', '.join(SECTIONS)}")
    parts = {}
    for name in SECTIONS:
        current = getattr(base, name)
        parts[name] = _section(type(current), tables.get(name, {}), name, current) if name in tables else current
    try:
        return TrainConfig(**parts)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def load_config(
    path: str | Path | None,
    overrides: Mapping[str, Any] | None = None,
    sections: Mapping[str, Mapping[str, Any]] | None = None,
) -> TrainConfig:
    """Read a TOML config and apply section overrides, then CLI overrides.

    Args:
        path: TOML file; None for the defaults.
        overrides: ``{flag_dest: value}`` with keys from :data:`FLAG_FIELDS`; None values are ignored.
        sections: ``{section: {key: value}}`` merged key by key into the file's tables (a program's own
            settings on top of a recipe, as ``nmoco demo`` does); checked like the file's keys.

    Returns:
        The resolved config.

    Raises:
        ConfigError: Missing or unparsable file, unknown section or key, bad value.
    """
    tables: dict[str, dict[str, Any]] = {}
    if path is not None:
        path = Path(path)
        try:
            with path.open("rb") as handle:
                tables = tomllib.load(handle)
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such config file") from None
        except (OSError, UnicodeDecodeError) as exc:  # a folder, an unreadable or a binary file
            raise ConfigError(f"{path}: cannot read the config ({getattr(exc, 'strerror', None) or exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for section_name, values in (sections or {}).items():
        tables.setdefault(section_name, {}).update(values)
    for dest, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = FLAG_FIELDS[dest]
        tables.setdefault(section, {})[key] = value
    try:
        return config_from_dict(tables)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}" if path is not None else str(exc)) from None


def config_to_dict(cfg: TrainConfig) -> dict[str, dict[str, Any]]:
    """The config as plain tables (tuples as lists), the inverse of :func:`config_from_dict`."""

    def plain(value: Any) -> Any:
        return [plain(v) for v in value] if isinstance(value, (tuple, list)) else value

    return {name: {k: plain(v) for k, v in dataclasses.asdict(getattr(cfg, name)).items()} for name in SECTIONS}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} as TOML")


def dump_toml(cfg: TrainConfig) -> str:
    """The resolved config as TOML that :func:`load_config` reads back to an equal config.

    Fields whose value is None (TOML has no null) are written as comments and
    come back as their default, which is None.
    """
    lines = ["# Resolved configuration of this run (nmoco train); `nmoco train --config` reads it back."]
    for name, table in config_to_dict(cfg).items():
        lines.append(f"\n[{name}]")
        for key, value in table.items():
            lines.append(f"# {key} = (none)" if value is None else f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
