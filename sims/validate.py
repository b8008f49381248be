"""Float model vs the deployed integer network, on the test split: what a user runs to trust a deployment.

Runs the float model, the QAT model and the exported netx file (native
simulator on all samples, Lava on a few) and compares them: top-1 accuracy of
each, top-1 agreement, and per layer the correlation of spike counts and the
mean absolute firing-rate difference. The native simulator must equal Lava on
every sample it is compared on, spike for spike; any difference is a hard
failure naming the first layer and step.

This module loads the float model through ``neuromoco`` (inside functions, as
DESIGN allows for validation); the arithmetic it checks is ``sims.native``'s.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from export.ir import Network
from hw_targets.errors import NmocoError, SimulationError
from sims.result import first_difference


@dataclass
class LayerComparison:
    """Float vs fixed activity of one layer (spike counts over the whole run, per neuron and sample)."""

    name: str
    float_rate: float
    fixed_rate: float
    correlation: float
    mean_abs_rate_diff: float


@dataclass
class ValidationReport:
    """Everything ``nmoco validate`` reports, ready for the markdown report and the plots."""

    samples: int
    lava_samples: int
    time_steps: int
    latency: int
    accuracy: dict[str, float]
    agreement_float_fixed: float
    qat_equals_native: bool
    lava_equals_native: bool | None
    first_lava_difference: str | None
    layers: list[LayerComparison]
    confusion: npt.NDArray[np.int64]
    class_names: list[str]
    energy: dict[str, Any] = field(default_factory=dict)
    timings_s: dict[str, float] = field(default_factory=dict)
    raster: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    raster_names: list[str] = field(default_factory=list)

    @property
    def most_divergent(self) -> LayerComparison | None:
        """The layer whose firing rate differs most between float and fixed."""
        return max(self.layers, key=lambda c: c.mean_abs_rate_diff) if self.layers else None


def _corr(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    if a.size < 2 or a.std() == 0 or b.std() == 0:
        return float("nan") if (a.std() == 0) != (b.std() == 0) else 1.0
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def float_layer_spikes(model: Any, frames: Any) -> list[npt.NDArray[np.float64]]:
    """Per-block spike counts over time of a float ``LoihiNet``: (B, *shape) per block (flatten included)."""
    import torch
    from spikingjelly.activation_based import functional

    counts: list[npt.NDArray[np.float64]] = []
    with torch.no_grad():
        functional.reset_net(model)
        x = model.encode_input(frames)  # a static image's code (latency), else the frames
        for block in model.blocks:
            x = block(x)
            counts.append(x.sum(0).double().numpy())
        functional.reset_net(model)
    return counts


def validate(
    run: str | Path,
    samples: int | None = None,
    lava_samples: int = 2,
    backend: str = "native",
    out_dir: str | Path | None = None,
    batch_size: int = 128,
    progress: bool = True,
) -> ValidationReport:
    """Validate a trained run: float, QAT, native and (on ``lava_samples``) Lava, on the test split.

    Args:
        run: run folder or checkpoint.
        samples: test samples to use (default: all).
        lava_samples: how many of them also run in Lava (0 to skip).
        backend: ``native`` runs every sample natively; ``lava`` runs every sample in Lava too.
        out_dir: where the netx file goes (default: ``<run>/validate``).
        batch_size: samples per native/float batch.
        progress: show a tqdm bar.

    Raises:
        SimulationError: native and Lava differ on some sample (names the first layer and step).
    """
    import torch
    from tqdm import tqdm

    from export.lower import quant_to_ir
    from export.netx import write_netx
    from neuromoco.data import DataConfig, dataset_info
    from neuromoco.data.registry import build_frames
    from neuromoco.models.base import readout_logits
    from neuromoco.quant.convert import to_quant
    from neuromoco.quant.layers import QuantLoihiNet
    from neuromoco.train.checkpoint import load_model_from_run
    from sims.lava import run_lava
    from sims.native import simulate

    model, info = load_model_from_run(run)
    input_shape = tuple(int(s) for s in info["input_shape"])
    data_cfg = DataConfig(**info["data_cfg"])
    test = build_frames(data_cfg, "test")  # as training reads it (static images: T frames the model codes)
    names = list(dataset_info(data_cfg).class_names)
    total = len(test)
    n = total if samples is None else min(samples, total)
    if n <= 0:
        raise SimulationError("no test samples to validate on")
    if isinstance(model, QuantLoihiNet):
        # A QAT run: its float reference is the run it was initialised from (``[train] init``).
        qmodel, float_model = model, None
        init = str(info.get("config", {}).get("train", {}).get("init", ""))
        if init:
            try:
                float_model, _ = load_model_from_run(init)
            except NmocoError as exc:
                warnings.warn(f"float reference {init} not loadable ({exc}); float columns are left out", stacklevel=2)
    else:
        qmodel, float_model = to_quant(model, input_shape), model
    qmodel.eval()
    net: Network = quant_to_ir(qmodel)
    folder = Path(out_dir) if out_dir is not None else Path(run if Path(run).is_dir() else Path(run).parent) / "validate"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_netx(net, folder / "model.net")
    latency = qmodel.latency

    labels = np.zeros(n, dtype=np.int64)
    preds: dict[str, list[int]] = {"float": [], "qat": [], "native": []}
    float_counts: list[list[npt.NDArray[np.float64]]] = []
    fixed_counts: list[list[npt.NDArray[np.float64]]] = []
    spike_counts, synops = [], []
    qat_equal = True
    raster: list[npt.NDArray[np.bool_]] = []
    timings = {"float": 0.0, "qat": 0.0, "native": 0.0, "lava": 0.0}
    steps = 0
    bar = tqdm(total=n, desc="validate", disable=not progress, leave=False)
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        items = [test[i] for i in idx]
        frames = torch.stack([torch.as_tensor(f) for f, _ in items]).transpose(0, 1).float()  # (T, B, C, H, W)
        labels[start : start + len(items)] = [int(y) for _, y in items]
        if float_model is not None:
            t0 = time.perf_counter()
            counts = float_layer_spikes(float_model, frames)
            timings["float"] += time.perf_counter() - t0
            float_counts.append(counts)
            preds["float"] += counts[-1].argmax(1).tolist()
        t0 = time.perf_counter()
        with torch.no_grad():
            q_layers = qmodel.run_layers(frames)
        timings["qat"] += time.perf_counter() - t0
        q_out = q_layers[-1][0]
        preds["qat"] += readout_logits(qmodel, q_out).argmax(1).tolist()
        # What the chip receives: the frames, or the binary code of a static image (latency coding).
        binary = qmodel.input_spikes(frames).transpose(0, 1).numpy().astype(np.int32)  # (B, T, C, H, W)
        steps = binary.shape[1] + latency
        result = simulate(net, binary, steps)
        timings["native"] += result.wall_s
        preds["native"] += result.out_spikes.sum(axis=1).argmax(axis=1).tolist()
        fixed_counts.append([s.sum(axis=1).astype(np.float64) for s in result.spikes])
        spike_counts.append(result.layer_spike_counts)
        synops.append(result.synops)
        for i, (s, _, _) in enumerate(q_layers):
            if not np.array_equal(s.transpose(0, 1).numpy().astype(bool), result.spikes[i]):
                qat_equal = False
        if not raster:
            raster = [s[0] for s in result.spikes]
        bar.update(len(items))
    bar.close()

    lava_equal: bool | None = None
    first_diff: str | None = None
    n_lava = n if backend == "lava" else min(lava_samples, n)
    if n_lava > 0:
        items = [test[i] for i in range(n_lava)]
        frames_t = torch.stack([torch.as_tensor(f) for f, _ in items]).transpose(0, 1).float()  # (T, B, C, H, W)
        with torch.no_grad():
            binary = qmodel.input_spikes(frames_t).transpose(0, 1).numpy().astype(np.int32)
        t0 = time.perf_counter()
        lava = run_lava(path, binary, steps, net=net)
        timings["lava"] = time.perf_counter() - t0
        native = simulate(net, binary, steps)
        first_diff = first_difference(native, lava)
        lava_equal = first_diff is None
        preds["lava"] = lava.out_spikes.sum(axis=1).argmax(axis=1).tolist()

    accuracy = {k: float(np.mean(np.array(v) == labels[: len(v)])) for k, v in preds.items() if v}
    fixed_pred = np.array(preds["native"])
    agreement = float(np.mean(np.array(preds["float"]) == fixed_pred)) if preds["float"] else float("nan")
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (labels, fixed_pred), 1)

    layers: list[LayerComparison] = []
    if float_counts:
        t_float = max(1, steps - latency)
        for i, layer in enumerate(net.layers):
            f = np.concatenate([c[i] for c in float_counts]).reshape(n, -1) / t_float
            x = np.concatenate([c[i] for c in fixed_counts]).reshape(n, -1) / t_float
            layers.append(LayerComparison(layer.name, float(f.mean()), float(x.mean()), _corr(f, x),
                                          float(np.abs(f - x).mean())))
    report = ValidationReport(
        samples=n, lava_samples=n_lava, time_steps=steps - latency, latency=latency, accuracy=accuracy,
        agreement_float_fixed=agreement, qat_equals_native=qat_equal, lava_equals_native=lava_equal,
        first_lava_difference=first_diff, layers=layers, confusion=confusion, class_names=names,
        timings_s=timings, raster=raster, raster_names=[layer.name for layer in net.layers],
    )
    report.energy = _energy(net, np.concatenate(spike_counts), np.concatenate(synops), steps)
    return report


def _energy(net: Network, spike_counts: npt.NDArray[np.int64], synops: npt.NDArray[np.int64], steps: int) -> dict[str, Any]:
    from hw_targets.energy_tables import get_energy_table
    from sims.energy import estimate_energy

    return {name: estimate_energy(net, spike_counts, synops, steps, get_energy_table(name))
            for name in ("loihi", "cmos45nm")}

