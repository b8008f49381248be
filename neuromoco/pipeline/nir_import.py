"""``nmoco export MODEL.nir`` and ``nmoco validate MODEL.nir``: a NIR graph from any framework onto Loihi 2.

Export reads the graph (``nir.read``), quantizes it (:mod:`export.nir_import`,
optionally calibrated on event recordings), checks it against the target and
writes the netx file (and, with ``--nir``, the integer network back as NIR),
printing the per-layer quantization report.

Validate runs the same import, then on event recordings (binned into frames
of ``window_us``, binarized: Loihi's input port carries binary spikes) runs
the float reference in Norse (:mod:`sims.nir_reference`), the native
simulator on every sample and Lava on the first few, and prints accuracy,
float/fixed agreement and per layer the firing rates, including the float
reference with Sinabs' IF semantics (what the graph's trainer used and
neither NIR nor Loihi express).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from neuromoco.cli_args import check_writable

if TYPE_CHECKING:
    from export.nir_import import ImportOptions, NirImport
    from neuromoco.pipeline.deploy import ExportOutputs, ExportResult

#: N-MNIST bins of the NIR paper's scripts (tonic ``ToFrame(time_window=1e3)``): 1 ms per step.
DEFAULT_WINDOW_US = 1000
#: Calibration: factors tried on each layer's mantissa scale (1: the largest weight on the largest mantissa).
CALIBRATION_FACTORS = (1.0, 1.5, 2.0, 3.0)
#: Samples a calibration folder contributes at most.
CALIBRATION_SAMPLES = 8


def is_nir_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``nmoco export``/``validate`` got a NIR graph (``.nir``) rather than a run."""
    return Path(path).suffix.lower() == ".nir"


@dataclass(frozen=True)
class NirOptions:
    """How ``nmoco export/validate MODEL.nir`` imports and feeds the graph.

    Attributes:
        dt: the forward-Euler step in the graph's time unit (``export.nir_import``).
        calibrate: an event dataset folder whose recordings pick the per-layer scales, or None.
        data: the dataset layout of ``calibrate`` and of validation data (``nmnist``, ...).
        window_us: microseconds of events per input step.
    """

    dt: float = 1.0
    calibrate: Path | None = None
    data: str = "nmnist"
    window_us: int = DEFAULT_WINDOW_US


# ----------------------------------------------------------------------------- data


def event_frames(path: Path, input_shape: tuple[int, ...], window_us: int) -> npt.NDArray[np.int32]:
    """One recording as binary input frames ``(T, 2, H, W)``: polarity channels, rows, columns.

    Raises:
        DataError: an unreadable file, or events outside the network's input.
        ConfigError: the network does not take (2, H, W) frames.
    """
    from hw_targets.errors import ConfigError, DataError
    from neuromoco.data.events import read_events

    if len(input_shape) != 3 or input_shape[0] != 2:
        raise ConfigError(f"the network takes {input_shape}; event frames are (2, H, W) (ON and OFF polarity)")
    ev = read_events(path)
    if len(ev) == 0:
        return np.zeros((1, *input_shape), dtype=np.int32)
    x, y, p = ev["x"].astype(np.int64), ev["y"].astype(np.int64), ev["p"].astype(np.int64)
    if x.max() >= input_shape[2] or y.max() >= input_shape[1]:
        raise DataError(f"{path}: events up to ({int(x.max())}, {int(y.max())}) do not fit the network's input "
                        f"{input_shape}")
    t = (ev["t"].astype(np.int64) - int(ev["t"].min())) // window_us
    frames = np.zeros((int(t.max()) + 1, *input_shape), dtype=np.int32)
    frames[t, p, y, x] = 1  # binary: Loihi's input port carries spikes, not counts
    return frames


def recordings(data: str, root: str | os.PathLike[str], split: str) -> list[tuple[Path, int]]:
    """``(path, label)`` of a dataset folder's recordings: ``train``, ``test`` or ``all`` of them.

    Raises:
        DataError: the folder does not hold the dataset.
    """
    from neuromoco.data.sources import index_dataset

    index = index_dataset(data, str(root), 0)
    refs = {"train": list(index.train), "test": list(index.test), "all": [*index.train, *index.test]}[split]
    return [(Path(r.path), int(r.label)) for r in refs]


def batch_frames(items: list[tuple[Path, int]], input_shape: tuple[int, ...], window_us: int) -> npt.NDArray[np.int32]:
    """Recordings as one zero-padded batch ``(B, T, *input_shape)``."""
    frames = [event_frames(p, input_shape, window_us) for p, _ in items]
    steps = max(f.shape[0] for f in frames)
    out = np.zeros((len(frames), steps, *input_shape), dtype=np.int32)
    for i, f in enumerate(frames):
        out[i, : f.shape[0]] = f
    return out


# ----------------------------------------------------------------------------- import + calibration


def _latency(net: Any) -> int:
    return sum(1 for layer in net.layers if layer.synaptic)


def layer_delays(net: Any) -> list[int]:
    """Steps of synaptic delay between the input and each layer's spikes (one per synaptic layer, Lava timing)."""
    delays, d = [], 0
    for layer in net.layers:
        d += int(layer.synaptic)
        delays.append(d)
    return delays


def fixed_counts(net: Any, frames: npt.NDArray[np.int32]) -> tuple[list[npt.NDArray[np.int64]], float]:
    """The native run's spike counts per layer over the window the reference runs, shifted by each layer's delay.

    The reference (no synaptic delay) runs ``T + L`` steps (``L``: the network's latency) and the
    native simulator ``T + 2L``, so each layer's counts cover the same ``T + L`` steps of its own
    activity in both: equal counts mean equal spikes, not just equal totals so far.

    Returns:
        Per layer ``(B, *shape)`` int64 counts, and the simulator's wall seconds.
    """
    from sims.native import simulate

    steps = reference_steps(net, frames)
    result = simulate(net, frames, steps + _latency(net))
    counts = [s[:, d : d + steps].sum(axis=1, dtype=np.int64) for s, d in zip(result.spikes, layer_delays(net))]
    return counts, result.wall_s


def reference_steps(net: Any, frames: npt.NDArray[Any]) -> int:
    """Steps the reference runs: the input's T plus the network's latency, so activity after the input counts."""
    return int(frames.shape[1]) + _latency(net)


def layer_rates(imported: NirImport, fixed: list[npt.NDArray[np.int64]], reference: dict[str, Any],
                steps: int) -> list[tuple[str, float, float, float, float]]:
    """Per neuron layer: name, float rate, fixed rate, mean |rate difference|, correlation of counts.

    Args:
        imported: the import (which NIR node each layer stands for).
        fixed: :func:`fixed_counts`' per-layer counts.
        reference: the reference's counts per NIR neuron node.
        steps: the window both counted (:func:`reference_steps`); rates are spikes per neuron per step.
    """
    rows = []
    for i, rep in enumerate(imported.layers):
        if rep.neuron_node is None:
            continue
        n = fixed[i].shape[0]
        q = fixed[i].reshape(n, -1) / steps
        f = np.asarray(reference[rep.neuron_node]).reshape(n, -1) / steps
        corr = float(np.corrcoef(f.ravel(), q.ravel())[0, 1]) if f.std() > 0 and q.std() > 0 else float("nan")
        rows.append((rep.name, float(f.mean()), float(q.mean()), float(np.abs(f - q).mean()), corr))
    return rows


def calibrate(graph: Any, options: ImportOptions, frames: npt.NDArray[np.int32]) -> ImportOptions:
    """Pick each layer's mantissa-scale factor, in chain order, that best matches the float rates on ``frames``.

    Greedy: layer by layer, each factor of :data:`CALIBRATION_FACTORS` is tried with the
    earlier layers' choices kept; the one with the smallest mean |rate difference| to the
    Norse reference at that layer wins (ties: the smaller factor).
    """
    from export.nir_import import import_graph
    from sims.nir_reference import run_reference

    base = import_graph(graph, options)
    nodes = [r.neuron_node for r in base.layers if r.neuron_node is not None]
    steps = reference_steps(base.network, frames)
    reference = run_reference(graph, frames, steps, nodes, options.dt).counts
    chosen: dict[str, float] = {}
    for rep in base.layers:
        if rep.neuron_node is None or rep.kind == "input" or rep.scale == 1.0 and rep.weight_error == 0.0:
            continue
        scores = []
        for factor in CALIBRATION_FACTORS:
            opts = replace(options, scale_factors=tuple({**chosen, rep.name: factor}.items()))
            trial = import_graph(graph, opts)
            rows = dict((r[0], r[3]) for r in layer_rates(trial, fixed_counts(trial.network, frames)[0], reference,
                                                           steps))
            scores.append((rows[rep.name], factor))
        chosen[rep.name] = min(scores)[1]
    return replace(options, scale_factors=tuple(chosen.items()))


def import_nir_file(src: str | os.PathLike[str], options: NirOptions, weight_bits: int,
                    weight_exp_max: int) -> tuple[Any, NirImport]:
    """Read and quantize a NIR file (calibrated when ``options.calibrate`` is set).

    Returns:
        The ``nir.NIRGraph`` and its import.

    Raises:
        ExportError: unreadable file, or a node Loihi cannot run.
        DataError: an unreadable calibration folder.
    """
    from export.nir import read_nir
    from export.nir_import import ImportOptions, import_graph

    graph = read_nir(src)
    opts = ImportOptions(dt=options.dt, weight_bits=weight_bits, weight_exp_max=weight_exp_max)
    imported = import_graph(graph, opts)
    if options.calibrate is not None:
        items = recordings(options.data, options.calibrate, "all")[:CALIBRATION_SAMPLES]
        frames = batch_frames(items, imported.network.input_shape, options.window_us)
        imported = import_graph(graph, calibrate(graph, opts, frames))
    return graph, imported


# ----------------------------------------------------------------------------- export


def export_nir_graph(src: str | os.PathLike[str], target: str, outputs: ExportOutputs,
                     options: NirOptions | None = None) -> ExportResult:
    """``nmoco export MODEL.nir``: import, quantize, check against ``target``, write netx (and NIR).

    Everything that can refuse runs before anything is written.

    Raises:
        ConfigError: unknown target, an output that cannot be written, ``--onnx`` (a NIR graph has no
            float torch model to export).
        ExportError: unreadable or unsupported graph (names the node and field).
        TargetLimitError: the quantized network does not fit the target.
    """
    from export.check import check_network
    from export.resources import estimate_resources
    from hw_targets import get_target
    from hw_targets.base import UnknownTargetError
    from hw_targets.errors import ConfigError
    from neuromoco.pipeline.deploy import ExportResult, _sha256, _write_netx, _write_nir

    opts = options or NirOptions()
    try:
        hw = get_target(target)
    except UnknownTargetError as exc:
        raise ConfigError(f"--target: {exc}") from None
    if outputs.onnx is not None:
        raise ConfigError(f"--onnx {outputs.onnx}: a NIR graph carries no float torch model to export as ONNX")
    for flag, out in outputs.named():
        check_writable(out, flag)
    graph, imported = import_nir_file(src, opts, hw.formats.weight_bits, hw.formats.weight_exp_max)
    net = imported.network
    check_network(net, hw)
    resources = estimate_resources(net, hw)
    print(imported.format_table())
    sidecar = {
        "source_nir": str(Path(src).resolve()),
        "source_sha256": _sha256(Path(src)),
        "dt": opts.dt,
        "discretization": "forward Euler, current first (export/nir_import.py)",
        "calibrated_on": None if opts.calibrate is None else str(opts.calibrate),
        "latency_steps": _latency(net),
        "input_shape": list(net.input_shape),
        "input_encoding": "binary spikes, one frame per step into the first synapse",
        "readout": "argmax of output spike counts",
        "quantization": [vars(r) for r in imported.layers],
        "target": hw.name,
        "resources": resources.to_dict(),
    }
    paths = [_write_netx(net, outputs.netx, sidecar, hw.name)]
    if outputs.nir is not None:
        paths.append(_write_nir(net, outputs.nir, sidecar))
    print(resources.format_table())
    return ExportResult(network=net, resources=resources, paths=tuple(paths))


# ----------------------------------------------------------------------------- validate


@dataclass
class NirValidation:
    """What ``nmoco validate MODEL.nir`` measured.

    Attributes:
        samples: recordings validated.
        labels: their labels.
        preds: predicted labels per backend: ``float`` (Norse, NIR semantics), ``float_sinabs``, ``native``,
            ``lava`` (the first ``lava_samples`` only).
        layers: per neuron layer (name, float rate, fixed rate, mean |diff|, correlation), NIR semantics.
        layers_sinabs: the same against the Sinabs-semantics reference.
        lava_samples: recordings also run in Lava.
        first_lava_difference: where native and Lava first differ (None: equal, or Lava not run).
        timings_s: seconds per backend.
    """

    samples: int
    labels: list[int]
    preds: dict[str, list[int]] = field(default_factory=dict)
    layers: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    layers_sinabs: list[tuple[str, float, float, float, float]] = field(default_factory=list)
    lava_samples: int = 0
    first_lava_difference: str | None = None
    timings_s: dict[str, float] = field(default_factory=dict)

    def accuracy(self, backend: str) -> float:
        got = self.preds.get(backend, [])
        return float(np.mean(np.array(got) == np.array(self.labels[: len(got)]))) if got else float("nan")

    def agreement(self, a: str = "float", b: str = "native") -> float:
        x, y = self.preds.get(a, []), self.preds.get(b, [])
        n = min(len(x), len(y))
        return float(np.mean(np.array(x[:n]) == np.array(y[:n]))) if n else float("nan")

    def format(self) -> str:
        """The report as text: accuracy, agreement, native vs Lava, per-layer rates."""
        lines = [f"samples                 {self.samples}"]
        for backend in ("float", "float_sinabs", "native", "lava"):
            if self.preds.get(backend):
                lines.append(f"accuracy {backend:<15}{self.accuracy(backend):.2%} ({len(self.preds[backend])} samples)")
        lines.append(f"agreement float/native  {self.agreement():.2%}")
        lines.append(f"agreement sinabs/native {self.agreement('float_sinabs'):.2%}")
        if self.lava_samples:
            verdict = self.first_lava_difference or "equal at every layer and step"
            lines.append(f"native vs Lava          {verdict} ({self.lava_samples} samples)")
        lines.append(f"{'layer':<14}{'float':>9}{'fixed':>9}{'|diff|':>9}{'corr':>8}"
                     f"{'sinabs':>9}{'|diff|':>9}{'corr':>8}")
        for (name, f, q, d, c), (_, fs, _, ds, cs) in zip(self.layers, self.layers_sinabs):
            lines.append(f"{name:<14}{f:>9.4f}{q:>9.4f}{d:>9.4f}{c:>8.4f}{fs:>9.4f}{ds:>9.4f}{cs:>8.4f}")
        lines.append("rates: spikes per neuron per step (aligned windows of T + latency steps); "
                     "float = Norse with NIR's IF, sinabs = Norse with Sinabs' IF (subtractive reset, floor)")
        return "\n".join(lines)


def validate_nir(src: str | os.PathLike[str], data_root: str | os.PathLike[str], options: NirOptions | None = None,
                 split: str = "test", samples: int | None = None, lava_samples: int = 1,
                 batch_size: int = 16) -> NirValidation:
    """Import ``src`` and compare Norse (float), the native simulator and Lava on event recordings.

    Raises:
        ConfigError: the graph does not take event frames.
        DataError: no readable recordings in ``data_root``.
        ExportError: the graph does not import.
        SimulationError: a simulator failed, or no recordings to validate on.
    """
    from hw_targets import get_target
    from hw_targets.errors import SimulationError

    opts = options or NirOptions()
    hw = get_target("loihi2")
    graph, imported = import_nir_file(src, opts, hw.formats.weight_bits, hw.formats.weight_exp_max)
    items = recordings(opts.data, data_root, split)
    items = items if samples is None else items[:samples]
    if not items:
        raise SimulationError(f"{data_root}: no {split} recordings to validate on")
    report = NirValidation(samples=len(items), labels=[lbl for _, lbl in items],
                           preds={"float": [], "float_sinabs": [], "native": []},
                           timings_s={"float": 0.0, "native": 0.0, "lava": 0.0})
    counts: dict[str, list[Any]] = {"nir": [], "sinabs": [], "fixed": []}
    for start in range(0, len(items), batch_size):
        frames = batch_frames(items[start : start + batch_size], imported.network.input_shape, opts.window_us)
        _validate_batch(graph, imported, frames, report, counts, opts.dt)
    _summarize_layers(imported, report, counts)
    if lava_samples > 0:
        _validate_lava(imported, items[:lava_samples], opts, report)
    return report


def _validate_batch(graph: Any, imported: NirImport, frames: npt.NDArray[np.int32], report: NirValidation,
                    counts: dict[str, list[Any]], dt: float) -> None:
    from sims.nir_reference import run_reference

    nodes = [r.neuron_node for r in imported.layers if r.neuron_node is not None]
    steps = reference_steps(imported.network, frames)
    t0 = time.perf_counter()
    ref = run_reference(graph, frames, steps, nodes, dt)
    sinabs = run_reference(graph, frames, steps, nodes, dt, semantics="sinabs")
    report.timings_s["float"] += time.perf_counter() - t0
    fixed, wall_s = fixed_counts(imported.network, frames)
    report.timings_s["native"] += wall_s
    report.preds["float"] += ref.output.reshape(len(frames), -1).argmax(1).tolist()
    report.preds["float_sinabs"] += sinabs.output.reshape(len(frames), -1).argmax(1).tolist()
    report.preds["native"] += fixed[-1].reshape(len(frames), -1).argmax(1).tolist()
    counts["nir"].append((ref.counts, steps))
    counts["sinabs"].append((sinabs.counts, steps))
    counts["fixed"].append(fixed)


def _summarize_layers(imported: NirImport, report: NirValidation, counts: dict[str, list[Any]]) -> None:
    """Per-layer rates over all batches (each batch normalized by its own input steps)."""
    for key, target in (("nir", report.layers), ("sinabs", report.layers_sinabs)):
        per_batch = [layer_rates(imported, fixed, ref, steps)
                     for fixed, (ref, steps) in zip(counts["fixed"], counts[key])]
        weights = np.array([len(f[0]) for f in counts["fixed"]], dtype=np.float64)
        for rows in zip(*per_batch):
            vals = np.array([r[1:] for r in rows], dtype=np.float64)
            mean = (vals * weights[:, None]).sum(0) / weights.sum()
            target.append((rows[0][0], float(mean[0]), float(mean[1]), float(mean[2]), float(mean[3])))


def _validate_lava(imported: NirImport, items: list[tuple[Path, int]], opts: NirOptions, report: NirValidation) -> None:
    """Lava on the first recordings, compared with the native simulator at every layer and step."""
    from export.netx import write_netx
    from sims.lava import run_lava
    from sims.native import simulate
    from sims.result import first_difference

    net = imported.network
    frames = batch_frames(items, net.input_shape, opts.window_us)
    steps = frames.shape[1] + _latency(net)
    with tempfile.TemporaryDirectory(prefix="nmoco-nir-") as tmp:
        path = write_netx(net, Path(tmp) / "model.net")
        t0 = time.perf_counter()
        lava = run_lava(path, frames, steps, net=net)
        report.timings_s["lava"] = time.perf_counter() - t0
    native = simulate(net, frames, steps)
    report.lava_samples = len(items)
    report.first_lava_difference = first_difference(native, lava)
    report.preds["lava"] = lava.out_spikes.sum(axis=1).reshape(len(items), -1).argmax(1).tolist()
