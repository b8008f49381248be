"""``export_run``: a trained run to a netx file for a hardware target (and ONNX, NIR), each with a JSON sidecar.

One function for ``nmoco export`` and ``nmoco demo``: it lowers the run and
checks it against the target once, before anything is written, then writes
the files and prints what it wrote and the resource table.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from neuromoco.cli_args import check_writable

if TYPE_CHECKING:
    from export.resources import ResourceTable
    from export.ir import Network


@dataclass(frozen=True)
class ExportOutputs:
    """Where ``export_run`` writes: the netx file, and optionally ONNX (float model) and NIR (integer network).

    Attributes:
        netx: The ``.net`` file (``--out``).
        onnx: The float model as ONNX (``--onnx``), or None.
        nir: The integer network as NIR (``--nir``), or None.
    """

    netx: Path
    onnx: Path | None = None
    nir: Path | None = None

    def named(self) -> list[tuple[str, Path]]:
        """``(flag, path)`` of each file to write; the ``nmoco export`` flag names the path in messages."""
        named = [("--out", self.netx), ("--onnx", self.onnx), ("--nir", self.nir)]
        return [(flag, path) for flag, path in named if path is not None]


@dataclass(frozen=True)
class ExportResult:
    """What ``export_run`` wrote.

    Attributes:
        network: The integer network written to the netx file.
        resources: Its resource estimate on the target.
        paths: The files written (netx first), without their sidecars.
    """

    network: Network
    resources: ResourceTable
    paths: tuple[Path, ...]


def export_run(run: str | Path, target: str, outputs: ExportOutputs) -> ExportResult:
    """Lower a trained run, check it against ``target`` and write the files of ``outputs``.

    Everything that can refuse (target name, output folders, the checkpoint,
    lowering, the target's limits) runs before anything is written. Each file
    gets a sidecar ``<file>.json``: source checkpoint and its SHA-256, input
    shape and coding, timing, class names, target and resources.

    Args:
        run: Run folder or checkpoint file.
        target: Hardware target name (``loihi2``, ``loihi1``).
        outputs: The files to write.

    Returns:
        The network, its resources and the paths written.

    Raises:
        ConfigError: Unknown target, an output that cannot be written, or no readable checkpoint.
        TargetLimitError: The network does not fit the target (names the layer and the rule).
        ExportError: ONNX asked of a QAT run that names no float run (``[train] init``).
    """
    from export.check import check_network
    from export.resources import estimate_resources
    from export.lower import lower
    from hw_targets import get_target
    from hw_targets.base import UnknownTargetError
    from hw_targets.errors import ConfigError
    from neuromoco.pipeline.runs import load_run

    try:
        hw = get_target(target)
    except UnknownTargetError as exc:
        raise ConfigError(f"--target: {exc}") from None
    for flag, out in outputs.named():
        check_writable(out, flag)
    model, info = load_run(run)
    # (C, H, W) of one frame, as every checkpoint stores it (the backbones take image-shaped frames).
    input_shape = cast("tuple[int, int, int]", tuple(int(s) for s in info["input_shape"]))
    float_model = _onnx_model(model, info) if outputs.onnx else model
    net = lower(model, input_shape)
    input_encoding = _input_encoding(info, net.family)
    check_network(net, hw)
    resources = estimate_resources(net, hw)
    # The checkpoint's n_time_bins (the data's T) is the sidecar's "time_steps": the key predates the
    # checkpoint name and readers of older exports look it up, so the on-disk name stays.
    n_time_bins = int(info.get("n_time_bins") or 0)
    # One step per synaptic hop on the longest path (a residual graph's slower branch; a chain: its synapses).
    latency = net.depth
    sidecar = {
        "source_checkpoint": info["path"],
        "source_sha256": _sha256(Path(info["path"])),
        "stage": info.get("stage"),
        "model_name": info.get("model_name"),
        "time_steps": n_time_bins,
        "latency_steps": latency,
        "input_shape": list(input_shape),
        "input_encoding": input_encoding,
        "class_names": _class_names(info),
        "readout": _readout(net.family, n_time_bins, latency),
        "target": hw.name,
        "resources": resources.to_dict(),
    }
    paths = [_write_netx(net, outputs.netx, sidecar, hw.name)]
    if outputs.onnx:
        paths.append(_write_onnx(float_model, input_shape, n_time_bins, outputs.onnx, sidecar))
    if outputs.nir:
        paths.append(_write_nir(net, outputs.nir, sidecar))
    print(resources.format_table())
    return ExportResult(network=net, resources=resources, paths=tuple(paths))


def _write_netx(net: Network, out: Path, sidecar: dict[str, Any], target: str) -> Path:
    from export.netx import write_netx

    path = write_netx(net, out)
    _write_json(path.with_name(path.name + ".json"), {**sidecar, "format": "netx"})
    print(f"wrote {path} ({len(net.layers)} layers, target {target})")
    return path


def _write_onnx(model: Any, input_shape: tuple[int, int, int], n_time_bins: int, out: Path,
                sidecar: dict[str, Any]) -> Path:
    from export.onnx import export_onnx

    path = export_onnx(model, input_shape, n_time_bins, out)
    _write_json(path.with_name(path.name + ".json"), {**sidecar, "format": "onnx"})
    print(f"wrote {path} (float model unrolled over {n_time_bins} steps)")
    return path


def _write_nir(net: Network, out: Path, sidecar: dict[str, Any]) -> Path:
    from export.nir import write_nir

    path = write_nir(net, out)
    _write_json(path.with_name(path.name + ".json"), {**sidecar, "format": "nir"})
    print(f"wrote {path} (NIR graph of the integer network)")
    return path


def _onnx_model(model: Any, info: dict[str, Any]) -> Any:
    """The float model ``--onnx`` exports: the run's own, or for a QAT run the run it was initialised from.

    Raises:
        ExportError: A QAT run that names no ``[train] init``.
    """
    from hw_targets.errors import ExportError
    from neuromoco.pipeline.runs import float_reference

    float_model = float_reference(model, info)
    if float_model is None:
        raise ExportError(f"{info['path']}: --onnx exports the float model, but this QAT run names no [train] init")
    return float_model


def _readout(family: str, n_time_bins: int, latency: int) -> str:
    """How the class is read from the exported network's output, for the sidecar."""
    steps = f"over {n_time_bins} input steps + {latency} steps of synaptic latency"
    if family == "SDNN":
        return f"argmax of the Sigma read-out's messages (its sigma) summed {steps}"
    return f"argmax of output spike counts {steps}"


def _input_encoding(info: dict[str, Any], family: str = "CUBA") -> str:
    """What the exported network's input port receives, for the sidecar.

    Raises:
        TargetLimitError: A static-image run with direct coding: its input is the analog
            image at every step, which a binary netx input port cannot carry.
    """
    from hw_targets.errors import TargetLimitError
    from neuromoco.data.registry import is_static

    data_cfg = info.get("data_cfg")
    encoding = str((info.get("model_cfg") or {}).get("encoding", "direct"))
    if family == "SDNN":
        from neuromoco.models.loihinet_sdnn import SDNN_SPECS

        spec = SDNN_SPECS.get(str(info.get("model_name")))
        scale = f"{spec.input_scale:g}" if spec is not None else "input_scale"
        return (f"graded integers round(frame * {scale}), one frame per step, into the Delta input layer "
                "(act = x << (spike_exp + state_exp))")
    if isinstance(data_cfg, dict) and is_static(str(data_cfg.get("name", ""))) and encoding == "direct":
        raise TargetLimitError(
            f"{info['path']}: input coding 'direct' feeds the analog image of dataset {data_cfg['name']!r} at every "
            "step, but the netx input here carries binary spikes into the first synapse; train with --encoding latency"
        )
    if encoding == "latency":
        return ("binary spikes: the latency code of each image (one spike per lit pixel, at step "
                "round((1 - x) * (T - 1)); neuromoco.models.encoding.latency_code), one frame per step")
    return "binary spikes: frame > 0, one frame per step into the first synapse"


def _class_names(info: dict[str, Any]) -> list[str] | None:
    from neuromoco.data import DataConfig, dataset_info

    data_cfg = info.get("data_cfg")
    if not isinstance(data_cfg, dict):
        return None
    try:
        return list(dataset_info(DataConfig(**data_cfg)).class_names)
    except Exception:  # the data may be absent on the exporting machine; names are optional
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` atomically (temporary file, then rename) with the permissions of a plain new file."""
    fd, tmp = tempfile.mkstemp(prefix=".sidecar-", suffix=".json", dir=path.parent)
    # mkstemp makes the file 0600; a sidecar is as readable as the netx file next to it (0666 less the umask).
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    os.replace(tmp, path)
