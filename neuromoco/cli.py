"""The ``nmoco`` command line: the one module that wires all four packages.

Every subcommand imports its heavy dependencies (torch, h5py, Lava) inside the
function that runs it, so ``nmoco --help`` is instant. Errors the project
raises on purpose (:class:`NmocoError`) print one line and exit with code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Callable, Sequence

from hw_targets.errors import NmocoError

EXIT_BAD_INPUT = 2

#: Subcommands defined next to the code they drive: module with ``add_parser(sub)`` and ``run(args)``.
_PLUGGED = (
    "neuromoco.data.command",
    "neuromoco.train.command",
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from export.netx import read_netx
    from hw_targets.errors import SimulationError

    table = None
    if args.energy:
        from hw_targets.energy_tables import resolve_energy_table

        table = resolve_energy_table(args.energy)
    net = read_netx(args.model)
    path = Path(args.input)
    if not path.is_file():
        raise SimulationError(f"{path}: no such input file")
    try:
        spikes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{path}: not a readable .npy array ({exc})") from None
    out = Path(args.out)
    if not out.parent.is_dir():
        raise SimulationError(f"{out}: folder {out.parent} does not exist")
    kwargs = dict(reset_interval=args.reset_interval, reset_offset=args.reset_offset)
    try:
        if args.backend == "native":
            from sims.native import simulate

            result = simulate(net, spikes, args.steps, **kwargs)  # type: ignore[arg-type]
        else:
            from sims.lava import run_lava

            result = run_lava(args.model, spikes, args.steps, net=net, **kwargs)  # type: ignore[arg-type]
    except SimulationError as exc:
        raise SimulationError(f"{path}: {exc}") from None
    extra = {}
    if table is not None:
        from sims.energy import estimate_energy

        report = estimate_energy(net, result.layer_spike_counts, result.synops, result.out_spikes.shape[1], table)
        extra = {"energy_uj_per_layer": np.array([layer.total_uj for layer in report.layers]),
                 "energy_uj_total": np.array(report.total_uj)}
    result.to_npz(out, extra)
    counts = result.layer_spike_counts
    print(f"{args.backend}: {counts.shape[0]} sample(s) x {result.out_spikes.shape[1]} steps in {result.wall_s:.3f} s")
    print(f"{'layer':<12}{'shape':>18}{'spikes/sample':>16}{'synops/sample':>16}")
    for i, name in enumerate(result.layer_names):
        shape = "x".join(str(s) for s in result.spikes[i].shape[2:])
        print(f"{name:<12}{shape:>18}{counts[:, i].mean():>16.1f}{result.synops[:, i].mean():>16.1f}")
    if table is not None:
        print(report.format_table())
    print(f"wrote {out}")
    return 0


def _sha256(path: Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_json(path: Path, payload: dict[str, object]) -> None:
    import json
    import os
    import tempfile

    fd, tmp = tempfile.mkstemp(prefix=".sidecar-", suffix=".json", dir=path.parent)
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=2, default=str)
    os.replace(tmp, path)


def _cmd_export(args: argparse.Namespace) -> int:
    from export.check import check_network, estimate_resources
    from export.lower import lower
    from hw_targets import get_target
    from hw_targets.base import UnknownTargetError
    from hw_targets.errors import ConfigError, ExportError

    try:
        target = get_target(args.target)
    except UnknownTargetError as exc:
        raise ConfigError(f"--target: {exc}") from None
    outs = [Path(p) for p in (args.out, args.onnx, args.nir) if p]
    for out in outs:
        if not out.parent.is_dir():
            raise ExportError(f"{out}: folder {out.parent} does not exist")
    model, info = _load_run(args.run)
    input_shape = tuple(int(s) for s in info["input_shape"])
    # Everything that can refuse runs before anything is written.
    net = lower(model, input_shape)  # type: ignore[arg-type]
    check_network(net, target)
    resources = estimate_resources(net, target)
    steps = int(info.get("n_time_bins") or 0)
    latency = sum(layer.kind in ("dense", "conv") for layer in net.layers)
    sidecar = {
        "source_checkpoint": info["path"],
        "source_sha256": _sha256(Path(info["path"])),
        "stage": info.get("stage"),
        "model_name": info.get("model_name"),
        "time_steps": steps,
        "latency_steps": latency,
        "input_shape": list(input_shape),
        "input_encoding": "binary spikes: frame > 0, one frame per step into the first synapse",
        "class_names": _class_names(info),
        "readout": (f"argmax of output spike counts over {steps} input steps + {latency} steps of synaptic latency"),
        "target": target.name,
        "resources": resources.to_dict(),
    }
    from export.netx import write_netx

    path = write_netx(net, Path(args.out))
    _write_json(path.with_name(path.name + ".json"), {**sidecar, "format": "netx"})
    print(f"wrote {path} ({len(net.layers)} layers, target {target.name})")
    if args.onnx:
        from export.onnx import export_onnx

        onnx_path = export_onnx(model, input_shape, steps, Path(args.onnx))  # type: ignore[arg-type]
        _write_json(onnx_path.with_name(onnx_path.name + ".json"), {**sidecar, "format": "onnx"})
        print(f"wrote {onnx_path} (float model unrolled over {steps} steps)")
    if args.nir:
        from export.nir import write_nir

        nir_path = write_nir(net, Path(args.nir))
        _write_json(nir_path.with_name(nir_path.name + ".json"), {**sidecar, "format": "nir"})
        print(f"wrote {nir_path} (NIR graph of the integer network)")
    print(resources.format_table())
    return 0


def _load_run(run: str) -> tuple[object, dict[str, object]]:
    from neuromoco.train.checkpoint import load_model_from_run

    return load_model_from_run(run)  # type: ignore[return-value]


def _class_names(info: dict[str, object]) -> list[str] | None:
    from neuromoco.data import DataConfig, dataset_info

    data_cfg = info.get("data_cfg")
    if not isinstance(data_cfg, dict):
        return None
    try:
        return list(dataset_info(DataConfig(**data_cfg)).class_names)
    except Exception:  # the data may be absent on the exporting machine; names are optional
        return None


def _cmd_validate(args: argparse.Namespace) -> int:
    from hw_targets.errors import SimulationError
    from sims.report import summary_rows, write_markdown, write_plots
    from sims.validate import validate

    run = Path(args.run)
    report = validate(run, samples=args.samples, lava_samples=args.lava_samples, backend=args.backend)
    folder = run if run.is_dir() else run.parent
    plots = write_plots(report, folder)
    md = write_markdown(report, folder, plots, str(run))
    for label, value in summary_rows(report):
        print(f"{label:<34}{value}")
    print(f"wrote {md} and {len(plots)} plots")
    if report.lava_equals_native is False:
        raise SimulationError(f"native != Lava: {report.first_lava_difference}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """Deployment check on what the repository makes itself: a small conv network, native vs Lava."""
    import numpy as np

    from export.examples import random_spikes, small_conv_network
    from export.netx import write_netx
    from sims.verify import compare_backends

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    net = small_conv_network(seed=0)
    path = write_netx(net, out / "demo_conv.net")
    print(f"wrote {path}: {len(net.layers)} layers, input {net.input_shape}")
    for i, layer in enumerate(net.layers):
        print(f"  {net.describe(i)} -> {layer.out_shape}")
    spikes = random_spikes(1, (args.samples, 16, *net.input_shape), 0.1)
    np.save(out / "demo_input.npy", spikes)
    print(f"simulating {args.samples} samples x 16 input steps natively, {args.lava_samples} in Lava (fixed_pt) ...")
    comparison, native = compare_backends(path, net, spikes, args.lava_samples)
    native.to_npz(out / "demo_native.npz")
    print(comparison.verdict())
    print(f"native: {comparison.native_rate:,.0f} sample-steps/s; Lava: {comparison.lava_rate:,.1f} steps/s "
          f"(build {comparison.lava_build_s:.1f} s excluded); speed ratio {comparison.speedup:,.0f}x")
    return 0 if comparison.equal else 1


def build_parser(plugged: Sequence[object] = ()) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nmoco", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="run a netx file on spike input (native or Lava)")
    p.add_argument("model", help="netx .net file")
    p.add_argument("--input", required=True, help="SPIKES.npy, (T, *input_shape) or (B, T, *input_shape)")
    p.add_argument("--steps", type=_positive_int, default=None, help="steps to run (default: T + one per layer)")
    p.add_argument("--backend", choices=("native", "lava"), default="native")
    p.add_argument("--out", required=True, help="RESULT.npz")
    p.add_argument("--reset-interval", type=_positive_int, default=None, help="Lava LIFReset interval")
    p.add_argument("--reset-offset", type=int, default=0, help="Lava LIFReset offset")
    p.add_argument("--energy", default=None, help="energy table: loihi, cmos45nm, or a TABLE.toml")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("export", help="lower a trained run to a Loihi 2 netx file (and ONNX, NIR)")
    p.add_argument("run", help="run folder or checkpoint file (RUN_OR_CKPT)")
    p.add_argument("--target", default="loihi2", help="hardware target (loihi2, loihi1)")
    p.add_argument("--out", required=True, help="MODEL.net")
    p.add_argument("--onnx", default=None, help="also write the float model as ONNX")
    p.add_argument("--nir", default=None, help="also write the integer network as NIR")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("validate", help="float vs fixed point vs Lava on the test split, report and plots")
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("--samples", type=_positive_int, default=None, help="test samples (default: all)")
    p.add_argument("--backend", choices=("native", "lava"), default="native",
                   help="native: all samples natively, --lava-samples in Lava; lava: all in both")
    p.add_argument("--lava-samples", type=int, default=2, help="samples also run in Lava")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("demo", help="the whole chain on the built-in data")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--samples", type=_positive_int, default=64, help="samples simulated natively")
    p.add_argument("--lava-samples", type=_positive_int, default=2, help="samples also run in Lava")
    p.set_defaults(func=_cmd_demo)

    for module in plugged:
        module.add_parser(sub)  # type: ignore[attr-defined]
    return parser


def _load_plugged() -> list[object]:
    modules = []
    for name in _PLUGGED:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name is None or not name.startswith(exc.name):
                raise
    return modules


def _quiet_third_party() -> None:
    """Keep import-time noise of the libraries we build on out of the user's output.

    tonic prints a Prophesee-toolbox notice on import, spikingjelly's cupy probe
    logs about CUDA, and torch.jit warns about its own deprecation.
    """
    import contextlib
    import io
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    warnings.filterwarnings("ignore", message=".*TensorBoard logging needs.*")
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for name in ("tonic", "spikingjelly.activation_based.neuron"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    _quiet_third_party()
    parser = build_parser(_load_plugged())
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except NmocoError as exc:
        if args.debug:
            raise
        print(f"nmoco {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("nmoco: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
