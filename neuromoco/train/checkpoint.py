"""Checkpoints of ``nmoco train``: one stable format, written atomically, read with ``weights_only=True``.

A run folder holds ``checkpoints/last.pt``, rewritten after every epoch. The
file is a dict of tensors and plain Python values (format version 1):

============== =====================================================================
key            value
============== =====================================================================
format         ``"neuromoco-checkpoint"``
format_version ``1``
model          state dict of the backbone (the query encoder after pre-training)
model_name     registry name, e.g. ``"loihinet_s"``
model_cfg      ``dataclasses.asdict(ModelConfig)``
input_shape    ``[C, H, W]`` of one frame
num_classes    classifier width
n_time_bins    ``T`` the model was trained with
data_cfg       ``dataclasses.asdict(DataConfig)``
config         the whole resolved config as tables (see ``config_to_dict``)
stage          ``"pretrain"``, ``"finetune"`` or ``"linear"``
epoch          completed epochs
global_step    completed optimizer steps
optimizer      optimizer state dict
scheduler      LR scheduler state dict
scaler         AMP grad-scaler state dict
moco           pre-training only: MoCo state dict without ``query_encoder.*`` (heads, momentum encoder, queue)
rng            ``{"torch", "cuda", "numpy", "python"}`` generator states
metrics        the last epoch's metrics
============== =====================================================================

:func:`load_model_from_run` is what the exporter and the validator call.
"""

from __future__ import annotations

import os
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hw_targets.errors import ConfigError, NmocoError
from neuromoco.models.base import SpikingBackbone
from neuromoco.models.registry import ModelConfig, build_model

FORMAT = "neuromoco-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"


def checkpoint_path(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints/last.pt``."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write a checkpoint atomically: a temporary file in the same folder, fsync, then rename.

    A crash mid-write leaves the previous checkpoint intact.

    Args:
        state: The checkpoint dict (see the module docstring).
        path: Destination file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    # A writer killed mid-save (SIGKILL, power loss) never renamed its temporary file: it is garbage.
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def resolve_checkpoint(run_or_ckpt: str | Path) -> Path:
    """A checkpoint file from a run folder or a file path.

    Raises:
        ConfigError: Neither a checkpoint file nor a run folder holding one.
    """
    path = Path(run_or_ckpt)
    if path.is_dir():
        path = checkpoint_path(path)
    if not path.is_file():
        raise ConfigError(f"{run_or_ckpt}: no checkpoint (expected a .pt file or a run folder with {CHECKPOINT_DIR}/{LAST})")
    return path


def load_checkpoint(run_or_ckpt: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` and check its format.

    Args:
        run_or_ckpt: Run folder or ``.pt`` file.
        map_location: Where tensors go.

    Returns:
        The checkpoint dict.

    Raises:
        ConfigError: Missing, unreadable or of another format.
    """
    path = resolve_checkpoint(run_or_ckpt)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        # weights_only refuses pickled code (custom classes, reducers); its message spans many lines.
        raise ConfigError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {_one_line(exc)})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a neuromoco checkpoint (no format={FORMAT!r})")
    if state.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"{path}: checkpoint format version {state.get('format_version')!r}, this code reads {FORMAT_VERSION}")
    for section in ("model", "moco"):
        tensors = state.get(section, {})
        if not isinstance(tensors, dict):
            raise ConfigError(f"{path}: '{section}' is not a state dict")
        for key, value in tensors.items():
            if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
                raise ConfigError(f"{path}: {section} tensor {key!r} contains NaN or inf; the run diverged, "
                                  "use an earlier checkpoint or retrain with a lower learning rate")
    return state


def _one_line(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def model_from_checkpoint(state: dict[str, Any], where: str = "checkpoint") -> SpikingBackbone:
    """Rebuild the backbone a checkpoint describes and load its weights (strict).

    Args:
        state: A dict from :func:`load_checkpoint`.
        where: The file, for messages.

    Returns:
        The backbone in eval mode on the CPU (or where ``state``'s tensors are).

    Raises:
        ConfigError: A key is missing, or the weights do not fit the model the checkpoint names.
    """
    missing = [key for key in ("model", "model_cfg", "input_shape", "num_classes") if key not in state]
    if missing:
        raise ConfigError(f"{where}: checkpoint lacks {', '.join(missing)}; it was not written by nmoco train")
    try:
        return _build_from_checkpoint(state)
    except NmocoError:
        raise
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:  # load_state_dict: RuntimeError on shapes
        raise ConfigError(f"{where}: the weights do not fit the model it names ({_one_line(exc)})") from None


def _build_from_checkpoint(state: dict[str, Any]) -> SpikingBackbone:
    # Checkpoints from before ModelConfig.hw_timing existed were trained without the synaptic delays.
    model_cfg = ModelConfig(**{"hw_timing": False, **state["model_cfg"]})
    model = build_model(model_cfg, tuple(state["input_shape"]), int(state["num_classes"]),
                        time_steps=state.get("n_time_bins"))
    if state.get("stage") == "qat":
        from neuromoco.quant.convert import to_quant

        model = to_quant(model, tuple(state["input_shape"]))
    model.load_state_dict(state["model"])
    return model.eval()


def load_model_from_run(run_or_ckpt: str | Path) -> tuple[SpikingBackbone, dict[str, Any]]:
    """Load a trained backbone for export, validation or further training.

    Args:
        run_or_ckpt: A run folder (``checkpoints/last.pt`` inside) or a checkpoint file.

    Returns:
        ``(model, info)``: the backbone in eval mode on the CPU, and the
        checkpoint's metadata (every key of the format except ``model``,
        ``optimizer``, ``scheduler``, ``scaler``, ``moco`` and ``rng``), e.g.
        ``info["model_name"]``, ``info["input_shape"]``, ``info["n_time_bins"]``,
        ``info["data_cfg"]``, ``info["stage"]``, ``info["epoch"]``, ``info["metrics"]``,
        plus ``info["path"]``, the file read.

    Raises:
        ConfigError: No readable checkpoint there.
    """
    path = resolve_checkpoint(run_or_ckpt)
    state = load_checkpoint(path)
    model = model_from_checkpoint(state, str(path))
    heavy = {"model", "optimizer", "scheduler", "scaler", "moco", "rng"}
    info = {k: v for k, v in state.items() if k not in heavy}
    info["path"] = str(path)
    return model, info


def init_backbone_from(model: SpikingBackbone, run_or_ckpt: str | Path, model_cfg: ModelConfig) -> dict[str, Any]:
    """Copy a checkpoint's backbone weights into ``model`` (``--init``).

    Classifier weights whose shape differs (another number of classes) are
    left as initialised, with a warning.

    Args:
        model: Freshly built backbone.
        run_or_ckpt: The pre-training run or checkpoint.
        model_cfg: The config ``model`` was built from.

    Returns:
        The source checkpoint's metadata (as :func:`load_model_from_run`'s ``info``).

    Raises:
        ConfigError: Another backbone, or weights that do not fit.
    """
    state = load_checkpoint(run_or_ckpt)
    if state["model_name"] != model_cfg.name:
        raise ConfigError(
            f"--init {run_or_ckpt}: it holds a {state['model_name']!r}, this run builds {model_cfg.name!r}; "
            f"pass --model {state['model_name']}"
        )
    own = model.state_dict()
    weights = {}
    for key, value in state["model"].items():
        if key in own and own[key].shape != value.shape:
            warnings.warn(f"--init {run_or_ckpt}: {key} has shape {tuple(value.shape)}, the model {tuple(own[key].shape)}; kept the fresh weights")
            continue
        weights[key] = value
    missing, unexpected = model.load_state_dict(weights, strict=False)
    changed = {k for k in own if k not in weights}
    if unexpected or set(missing) - changed:
        raise ConfigError(f"--init {run_or_ckpt}: weights do not fit {model_cfg.name} (missing {missing}, unexpected {unexpected})")
    return {k: v for k, v in state.items() if k not in {"model", "optimizer", "scheduler", "scaler", "moco", "rng"}}


def rng_state() -> dict[str, Any]:
    """Every global generator's state, in types ``weights_only`` loading accepts."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), int(pos), int(has_gauss), float(cached)],
        "python": random.getstate(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
