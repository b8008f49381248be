"""A trained run as the pipeline sees it: the model, its metadata, and the float model behind it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from neuromoco.models.base import SpikingBackbone


def load_run(run: str | Path) -> tuple[SpikingBackbone, dict[str, Any]]:
    """Load a run folder or checkpoint file (see :func:`neuromoco.train.checkpoint.load_model_from_run`).

    Returns:
        ``(model, info)``: the backbone in eval mode on the CPU and the checkpoint's metadata
        (``info["path"]`` is the file read).

    Raises:
        ConfigError: No readable checkpoint there.
    """
    from neuromoco.train.checkpoint import load_model_from_run

    model, info = load_model_from_run(run)
    return model, info


def float_init(info: dict[str, Any]) -> str:
    """The run a QAT run was initialised from (its ``[train] init``), or ``""`` when it names none."""
    return str(info.get("config", {}).get("train", {}).get("init", ""))


def float_reference(model: SpikingBackbone, info: dict[str, Any]) -> SpikingBackbone | None:
    """The float model behind a run: the model itself, or for a QAT run the run it was initialised from.

    A QAT run holds only the integer twin; its float reference is the fine-tuned
    run named by its ``[train] init``, loaded from there.

    Args:
        model: The run's model, as :func:`load_run` gives it.
        info: The run's metadata, as :func:`load_run` gives it.

    Returns:
        The float model, or None for a QAT run that names no ``[train] init``.

    Raises:
        ConfigError: The ``init`` run has no readable checkpoint.
    """
    from neuromoco.quant.layers import QuantLoihiNet
    from neuromoco.quant.sdnn import QuantSdnnNet

    if not isinstance(model, (QuantLoihiNet, QuantSdnnNet)):
        return model
    init = float_init(info)
    return load_run(init)[0] if init else None
