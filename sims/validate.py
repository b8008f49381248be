"""Float model vs the deployed integer network, on the test split: what a user runs to trust a deployment.

Runs the float model, the QAT model and the exported netx file (native
simulator on all samples, Lava on a few) and compares them: top-1 accuracy of
each, top-1 agreement, and per layer the correlation of spike counts and the
mean absolute firing-rate difference. Sigma-delta networks (``loihinet_sdnn``)
send graded messages: their per-layer figures compare activations in float units
(the running sum of a layer's messages over its message scale) with the float
model's, and their class scores are the Sigma read-out summed over the run. The native simulator must equal Lava on
every sample it is compared on, spike for spike: the report names the first
layer and step that differ, and ``nmoco validate`` fails on it (``nmoco demo``
exits with 1).

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
    # T, the input steps of a sample (the data's and checkpoint's ``n_time_bins``); the simulators ran
    # time_steps + latency steps. The name matches the export sidecar's "time_steps" key.
    time_steps: int
    latency: int  # steps of synaptic delay, one per synaptic layer
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


def float_layer_activity(model: Any, frames: Any) -> list[npt.NDArray[np.float64]]:
    """Per IR layer activations of a float ``LoihiSdnn`` summed over its ``T + L`` steps: (B, *shape) each.

    The input layer first (the input as its Delta encoder reconstructs it), then every block
    (flatten included); the last is the read-out, whose argmax is the float prediction.
    """
    import torch

    from neuromoco.models.loihinet_sdnn import delta_reconstruction

    sums: list[npt.NDArray[np.float64]] = []
    with torch.no_grad():
        r = delta_reconstruction(model.input_code(frames) / model.spec.input_scale, model.spec.input_threshold)
        sums.append(r.sum(0).double().numpy())
        for block in model.blocks:
            r = block(r)
            sums.append(r.sum(0).double().numpy())
    return sums


def fixed_layer_activity(units: list[tuple[float, bool]], messages: list[npt.NDArray[Any]]) -> list[npt.NDArray[np.float64]]:
    """The simulator's counterpart of :func:`float_layer_activity` from its graded messages.

    Args:
        units: Per layer (integer units per float unit, messages are changes), ``QuantSdnnNet.layer_units()``.
        messages: Per layer (B, steps, *shape) int32 messages.
    """
    out: list[npt.NDArray[np.float64]] = []
    for (scale, cumulative), m in zip(units, messages):
        values = np.cumsum(m, axis=1, dtype=np.float64) if cumulative else m.astype(np.float64)
        out.append(values.sum(axis=1) / scale)
    return out


def float_layer_spikes(model: Any, frames: Any) -> list[npt.NDArray[np.float64]]:
    """Per-layer spike counts over time of a float ``LoihiNet`` or residual ``LoihiGraphNet``: (B, *shape)
    per IR layer (flatten included). A graph reports its own layers (``layer_spikes``: the IR's, one for
    one, each over the chip's ``T + L`` steps), since its blocks are no chain."""
    import torch
    from spikingjelly.activation_based import functional

    counts: list[npt.NDArray[np.float64]] = []
    with torch.no_grad():
        if hasattr(model, "layer_spikes"):
            return [s.sum(0).double().numpy() for s in model.layer_spikes(frames)]
        functional.reset_net(model)
        x = model.encode_input(frames)  # a static image's code (latency), else the frames
        for block in model.blocks:
            x = block(x)
            counts.append(x.sum(0).double().numpy())
        functional.reset_net(model)
    return counts


@dataclass
class ValidationInputs:
    """A run made ready for validation: both models, the integer network and its netx file, the test split.

    Attributes:
        qmodel: The QAT model (the run's own, or the run's float model converted), in eval mode.
        float_model: The float reference, or None (a QAT run without a loadable ``[train] init``).
        net: The integer network read out of ``qmodel``.
        netx_path: Where ``net`` was written (Lava reads the file).
        test: The test split, framed as training reads it.
        class_names: One name per label.
        samples: How many test samples are validated.
    """

    qmodel: Any
    float_model: Any
    net: Network
    netx_path: Path
    test: Any
    class_names: list[str]
    samples: int


@dataclass
class ValidationRuns:
    """What float, QAT, native (and Lava) gave on the validated samples.

    Attributes:
        labels: ``(n,)`` true labels.
        preds: Predicted labels per backend (``float``, ``qat``, ``native``, ``lava``); empty when not run.
        float_counts: Per batch, per layer spike counts over time ``(B, *shape)`` of the float model.
        fixed_counts: The same of the native simulator.
        spike_counts: Per batch ``(B, layers)`` native spike counts (for the energy estimate).
        synops: Per batch ``(B, layers)`` native synaptic operations.
        qat_equal: QAT spikes equal native spikes at every layer and step.
        raster: Native spikes ``(steps, *shape)`` of sample 0, per layer.
        timings_s: Seconds spent per backend.
        steps: Simulator steps: T input steps plus the network's synaptic latency.
        lava_samples: Samples also run in Lava.
        lava_equal: Native equals Lava on those samples; None when Lava did not run.
        first_lava_difference: The first layer and step where they differ, if any.
    """

    labels: npt.NDArray[np.int64]
    preds: dict[str, list[int]]
    float_counts: list[list[npt.NDArray[np.float64]]] = field(default_factory=list)
    fixed_counts: list[list[npt.NDArray[np.float64]]] = field(default_factory=list)
    spike_counts: list[npt.NDArray[np.int64]] = field(default_factory=list)
    synops: list[npt.NDArray[np.int64]] = field(default_factory=list)
    qat_equal: bool = True
    raster: list[npt.NDArray[np.bool_]] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    steps: int = 0
    lava_samples: int = 0
    lava_equal: bool | None = None
    first_lava_difference: str | None = None


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

    A difference between native and Lava is reported (``lava_equals_native``,
    ``first_lava_difference``), not raised; ``nmoco validate`` turns it into an error.

    Args:
        run: run folder or checkpoint.
        samples: test samples to use (default: all).
        lava_samples: how many of them also run in Lava (0 to skip).
        backend: ``native`` runs every sample natively; ``lava`` runs every sample in Lava too.
        out_dir: where the netx file goes (default: ``validate/`` in the run folder, or next to the checkpoint).
        batch_size: samples per native/float batch.
        progress: show a tqdm bar.

    Raises:
        ConfigError: No readable checkpoint at ``run``.
        SimulationError: No test samples to validate on.
    """
    inputs = load_validation(run, samples, out_dir)
    runs = run_validation(inputs, lava_samples=lava_samples, backend=backend, batch_size=batch_size,
                          progress=progress)
    return compare_runs(inputs, runs)


def load_validation(run: str | Path, samples: int | None = None, out_dir: str | Path | None = None) -> ValidationInputs:
    """Load a run, its float reference and its test split, and write the integer network as netx.

    Args:
        run: run folder or checkpoint.
        samples: test samples to use (default: all).
        out_dir: where the netx file goes (default: ``validate/`` in the run folder, or next to the checkpoint).

    Raises:
        ConfigError: No readable checkpoint at ``run``.
        SimulationError: No test samples to validate on.
    """
    from export.lower import quant_to_ir
    from export.netx import write_netx
    from neuromoco.data import DataConfig, dataset_info
    from neuromoco.data.registry import build_frames
    from neuromoco.pipeline.runs import float_init, float_reference, load_run
    from neuromoco.quant.convert import to_quant
    from neuromoco.quant.layers import QuantLoihiNet
    from neuromoco.quant.sdnn import QuantSdnnNet

    model, info = load_run(run)
    input_shape = tuple(int(s) for s in info["input_shape"])
    data_cfg = DataConfig(**info["data_cfg"])
    test = build_frames(data_cfg, "test")  # as training reads it (static images: T frames the model codes)
    names = list(dataset_info(data_cfg).class_names)
    n = len(test) if samples is None else min(samples, len(test))
    if n <= 0:
        raise SimulationError("no test samples to validate on")
    float_model = None
    try:
        float_model = float_reference(model, info)
    except NmocoError as exc:
        warnings.warn(f"float reference {float_init(info)} not loadable ({exc}); float columns are left out",
                      stacklevel=3)
    qmodel = model if isinstance(model, (QuantLoihiNet, QuantSdnnNet)) else to_quant(model, input_shape)
    qmodel.eval()
    net: Network = quant_to_ir(qmodel)
    folder = Path(out_dir) if out_dir is not None else Path(run if Path(run).is_dir() else Path(run).parent) / "validate"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_netx(net, folder / "model.net")
    return ValidationInputs(qmodel=qmodel, float_model=float_model, net=net, netx_path=path, test=test,
                            class_names=names, samples=n)


def run_validation(
    inputs: ValidationInputs,
    lava_samples: int = 2,
    backend: str = "native",
    batch_size: int = 128,
    progress: bool = True,
) -> ValidationRuns:
    """Run the float model, the QAT model and the native simulator on every sample, then Lava on the first few.

    Args:
        inputs: What :func:`load_validation` prepared.
        lava_samples: how many samples also run in Lava (0 to skip).
        backend: ``native`` runs every sample natively; ``lava`` runs every sample in Lava too.
        batch_size: samples per native/float batch.
        progress: show a tqdm bar.
    """
    runs = _run_batches(inputs, batch_size, progress)
    runs.lava_samples = inputs.samples if backend == "lava" else min(lava_samples, inputs.samples)
    if runs.lava_samples > 0:
        _run_lava(inputs, runs)
    return runs


def _frames(items: list[Any]) -> Any:
    """The frames of test items as one float batch ``(T, B, C, H, W)``."""
    import torch

    return torch.stack([torch.as_tensor(f) for f, _ in items]).transpose(0, 1).float()


def _run_batches(inputs: ValidationInputs, batch_size: int, progress: bool) -> ValidationRuns:
    """Float, QAT and native on every validated sample, batch by batch."""
    import torch
    from tqdm import tqdm

    from neuromoco.models.base import readout_logits
    from sims.native import simulate

    qmodel, float_model, n = inputs.qmodel, inputs.float_model, inputs.samples
    graded = inputs.net.family == "SDNN"
    runs = ValidationRuns(labels=np.zeros(n, dtype=np.int64), preds={"float": [], "qat": [], "native": []},
                          timings_s={"float": 0.0, "qat": 0.0, "native": 0.0, "lava": 0.0})
    bar = tqdm(total=n, desc="validate", disable=not progress, leave=False)
    for start in range(0, n, batch_size):
        items = [inputs.test[i] for i in range(start, min(n, start + batch_size))]
        frames = _frames(items)  # (T, B, C, H, W)
        runs.labels[start : start + len(items)] = [int(y) for _, y in items]
        if float_model is not None:
            t0 = time.perf_counter()
            counts = (float_layer_activity if graded else float_layer_spikes)(float_model, frames)
            runs.timings_s["float"] += time.perf_counter() - t0
            runs.float_counts.append(counts)
            runs.preds["float"] += counts[-1].argmax(1).tolist()
        t0 = time.perf_counter()
        with torch.no_grad():
            q_layers = qmodel.run_layers(frames)
        runs.timings_s["qat"] += time.perf_counter() - t0
        runs.preds["qat"] += readout_logits(qmodel, q_layers[-1][0]).argmax(1).tolist()
        # What the chip receives: the frames, or the binary code of a static image (latency coding), or the
        # graded integers of a sigma-delta network's input layer.
        binary = qmodel.input_spikes(frames).transpose(0, 1).numpy().astype(np.int32)  # (B, T, C, H, W)
        # The simulator runs T input steps plus one step of synaptic delay per layer, so the last input
        # reaches the output.
        runs.steps = binary.shape[1] + qmodel.latency
        result = simulate(inputs.net, binary, runs.steps)
        runs.timings_s["native"] += result.wall_s
        runs.preds["native"] += result.out_spikes.sum(axis=1).argmax(axis=1).tolist()
        runs.fixed_counts.append(fixed_layer_activity(qmodel.layer_units(), result.spikes) if graded
                                 else [s.sum(axis=1).astype(np.float64) for s in result.spikes])
        runs.spike_counts.append(result.layer_spike_counts)
        runs.synops.append(result.synops)
        for i, (s, _, _) in enumerate(q_layers):
            qat = s.detach().transpose(0, 1).numpy()
            if not np.array_equal(qat.astype(np.int64) if graded else qat.astype(bool), result.spikes[i]):
                runs.qat_equal = False
        if not runs.raster:
            runs.raster = [s[0] != 0 for s in result.spikes]  # graded: where a message was sent
        bar.update(len(items))
    bar.close()
    return runs


def _run_lava(inputs: ValidationInputs, runs: ValidationRuns) -> None:
    """Lava on the first ``runs.lava_samples`` samples, compared with the native simulator spike for spike."""
    import torch

    from sims.lava import run_lava
    from sims.native import simulate

    frames = _frames([inputs.test[i] for i in range(runs.lava_samples)])  # (T, B, C, H, W)
    with torch.no_grad():
        binary = inputs.qmodel.input_spikes(frames).transpose(0, 1).numpy().astype(np.int32)
    t0 = time.perf_counter()
    lava = run_lava(inputs.netx_path, binary, runs.steps, net=inputs.net)
    runs.timings_s["lava"] = time.perf_counter() - t0
    native = simulate(inputs.net, binary, runs.steps)
    runs.first_lava_difference = first_difference(native, lava)
    runs.lava_equal = runs.first_lava_difference is None
    runs.preds["lava"] = lava.out_spikes.sum(axis=1).argmax(axis=1).tolist()


def compare_runs(inputs: ValidationInputs, runs: ValidationRuns) -> ValidationReport:
    """Accuracy per backend, float/fixed agreement, confusion, per-layer rates and energy, as one report."""
    n, names, net = inputs.samples, inputs.class_names, inputs.net
    latency = inputs.qmodel.latency
    labels, preds = runs.labels, runs.preds
    accuracy = {k: float(np.mean(np.array(v) == labels[: len(v)])) for k, v in preds.items() if v}
    fixed_pred = np.array(preds["native"])
    agreement = float(np.mean(np.array(preds["float"]) == fixed_pred)) if preds["float"] else float("nan")
    confusion = np.zeros((len(names), len(names)), dtype=np.int64)
    np.add.at(confusion, (labels, fixed_pred), 1)

    layers: list[LayerComparison] = []
    if runs.float_counts:
        t_float = max(1, runs.steps - latency)
        for i, layer in enumerate(net.layers):
            f = np.concatenate([c[i] for c in runs.float_counts]).reshape(n, -1) / t_float
            x = np.concatenate([c[i] for c in runs.fixed_counts]).reshape(n, -1) / t_float
            layers.append(LayerComparison(layer.name, float(f.mean()), float(x.mean()), _corr(f, x),
                                          float(np.abs(f - x).mean())))
    report = ValidationReport(
        samples=n, lava_samples=runs.lava_samples, time_steps=runs.steps - latency, latency=latency,
        accuracy=accuracy, agreement_float_fixed=agreement, qat_equals_native=runs.qat_equal,
        lava_equals_native=runs.lava_equal, first_lava_difference=runs.first_lava_difference, layers=layers,
        confusion=confusion, class_names=names, timings_s=runs.timings_s, raster=runs.raster,
        raster_names=[layer.name for layer in net.layers],
    )
    report.energy = _energy(net, np.concatenate(runs.spike_counts), np.concatenate(runs.synops), runs.steps)
    return report


def _energy(net: Network, spike_counts: npt.NDArray[np.int64], synops: npt.NDArray[np.int64], steps: int) -> dict[str, Any]:
    from hw_targets.energy_tables import get_energy_table
    from sims.energy import estimate_energy

    return {name: estimate_energy(net, spike_counts, synops, steps, get_energy_table(name))
            for name in ("loihi", "cmos45nm")}

