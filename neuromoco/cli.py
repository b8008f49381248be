"""The ``nmoco`` command line: the one module that wires all four packages.

Every subcommand imports its heavy dependencies (torch, h5py, Lava) inside the
function that runs it, so ``nmoco --help`` is instant. Errors the project
raises on purpose (:class:`NmocoError`) print one line and exit with code 2;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, NoReturn, Sequence

from hw_targets.errors import NmocoError

EXIT_BAD_INPUT = 2

#: Subcommands defined next to the code they drive: module with ``add_parser(sub)`` and ``run(args)``.
_PLUGGED = (
    "neuromoco.data.command",
    "neuromoco.train.command",
)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (exit code 2), like every other bad-input error."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def check_writable(out: Path, flag: str) -> None:
    """Refuse, before any work, an output whose folder cannot take a new file.

    The probe creates and removes a temporary file, so it sees what permission
    bits alone do not (read-only or immutable folders, /proc, a full disk).

    Raises:
        ConfigError: naming the flag, the path and the reason.
    """
    import tempfile

    from hw_targets.errors import ConfigError

    if not out.parent.is_dir():
        raise ConfigError(f"{flag} {out}: folder {out.parent} does not exist")
    if out.is_dir():
        raise ConfigError(f"{flag} {out}: is a folder; give a file name")
    try:
        with tempfile.TemporaryFile(dir=out.parent):
            pass
    except OSError as exc:
        raise ConfigError(f"{flag} {out}: cannot write into {out.parent} ({exc.strerror or exc})") from None


def positive_int(text: str) -> int:
    """argparse ``type`` for counts: an int > 0, else a one-line usage error."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def _cmd_simulate(args: argparse.Namespace) -> int:
    import numpy as np

    from export.netx import read_netx
    from hw_targets.errors import SimulationError

    check_writable(Path(args.out), "--out")
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
    from hw_targets.errors import ConfigError

    try:
        target = get_target(args.target)
    except UnknownTargetError as exc:
        raise ConfigError(f"--target: {exc}") from None
    outs = [(flag, Path(p)) for flag, p in (("--out", args.out), ("--onnx", args.onnx), ("--nir", args.nir)) if p]
    for flag, out in outs:
        check_writable(out, flag)
    model, info = _load_run(args.run)
    input_shape = tuple(int(s) for s in info["input_shape"])
    float_model = _float_reference(model, info) if args.onnx else model
    # Everything that can refuse runs before anything is written.
    net = lower(model, input_shape)  # type: ignore[arg-type]
    input_encoding = _input_encoding(info)
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
        "input_encoding": input_encoding,
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

        onnx_path = export_onnx(float_model, input_shape, steps, Path(args.onnx))  # type: ignore[arg-type]
        _write_json(onnx_path.with_name(onnx_path.name + ".json"), {**sidecar, "format": "onnx"})
        print(f"wrote {onnx_path} (float model unrolled over {steps} steps)")
    if args.nir:
        from export.nir import write_nir

        nir_path = write_nir(net, Path(args.nir))
        _write_json(nir_path.with_name(nir_path.name + ".json"), {**sidecar, "format": "nir"})
        print(f"wrote {nir_path} (NIR graph of the integer network)")
    print(resources.format_table())
    return 0


def _input_encoding(info: dict[str, Any]) -> str:
    """What the exported network's input port receives, for the sidecar.

    Raises:
        TargetLimitError: A static-image run with direct coding: its input is the analog
            image at every step, which a binary netx input port cannot carry.
    """
    from hw_targets.errors import TargetLimitError
    from neuromoco.data.registry import is_static

    data_cfg = info.get("data_cfg")
    encoding = str((info.get("model_cfg") or {}).get("encoding", "direct"))
    if isinstance(data_cfg, dict) and is_static(str(data_cfg.get("name", ""))) and encoding == "direct":
        raise TargetLimitError(
            f"{info['path']}: input coding 'direct' feeds the analog image of dataset {data_cfg['name']!r} at every "
            "step, but the netx input here carries binary spikes into the first synapse; train with --encoding latency"
        )
    if encoding == "latency":
        return ("binary spikes: the latency code of each image (one spike per lit pixel, at step "
                "round((1 - x) * (T - 1)); neuromoco.models.encoding.latency_code), one frame per step")
    return "binary spikes: frame > 0, one frame per step into the first synapse"


def _float_reference(model: object, info: dict[str, Any]) -> object:
    """The float model behind a run: itself, or for a QAT run the run it was initialised from."""
    from hw_targets.errors import ExportError
    from neuromoco.quant.layers import QuantLoihiNet

    if not isinstance(model, QuantLoihiNet):
        return model
    init = str(info.get("config", {}).get("train", {}).get("init", ""))
    if not init:
        raise ExportError(f"{info['path']}: --onnx exports the float model, but this QAT run names no [train] init")
    return _load_run(init)[0]


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
    folder = run if run.is_dir() else run.parent
    if run.exists():
        check_writable(folder / "report.md", "the report folder")
    report = validate(run, samples=args.samples, lava_samples=args.lava_samples, backend=args.backend)
    plots = write_plots(report, folder)
    md = write_markdown(report, folder, plots, str(run))
    for label, value in summary_rows(report):
        print(f"{label:<34}{value}")
    print(f"wrote {md} and {len(plots)} plots")
    if report.lava_equals_native is False:
        raise SimulationError(f"native != Lava: {report.first_lava_difference}")
    return 0


@dataclass(frozen=True)
class DemoConfig:
    """What ``nmoco demo`` runs: every training default comes from the training dataclasses;
    only the stage lengths and the deployment settings of the demo live here."""

    data: str = "ndigits"
    model: str = "loihinet_s"
    frame_mode: str = "binary"  # Loihi receives binary spikes: train on what the chip will see
    pretrain_epochs: int = 5
    finetune_epochs: int = 6
    qat_epochs: int = 3
    lava_samples: int = 3
    target: str = "loihi2"
    seed: int = 0


#: The recipes in configs/ (one per stage) that the demo follows, overriding only what DemoConfig sets.
_RECIPES = Path(__file__).resolve().parents[1] / "configs"


def _demo_stage(demo: DemoConfig, out: Path, stage: str, epochs: int, init: Path | None) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # Python 3.10: the same parser from PyPI
        import tomli as tomllib

    from neuromoco.train.config import config_from_dict
    from neuromoco.train.trainer import run_training

    recipe = _RECIPES / f"{demo.data}_{demo.model}_{stage}.toml"
    tables: dict[str, dict[str, Any]] = {}
    if recipe.is_file():
        with recipe.open("rb") as f:
            tables = tomllib.load(f)
    tables.setdefault("data", {}).update(name=demo.data, frame_mode=demo.frame_mode)
    tables.setdefault("model", {}).update(name=demo.model)
    tables.setdefault("train", {}).update(stage=stage, epochs=epochs, out=str(out / stage), init=str(init or ""),
                                          seed=demo.seed, tensorboard=False)
    summary: dict[str, Any] = run_training(config_from_dict(tables))
    return summary


def _cmd_demo(args: argparse.Namespace) -> int:
    """The whole chain on ndigits: pre-train, fine-tune, QAT, export, validate, energy, one summary table."""
    import shutil
    import time

    from export.check import check_network, estimate_resources
    from export.lower import lower
    from export.netx import write_netx
    from hw_targets import get_target
    from hw_targets.errors import ConfigError
    from neuromoco.train.checkpoint import load_model_from_run
    from sims.report import write_markdown, write_plots
    from sims.validate import validate

    demo = DemoConfig()
    if args.quick:
        demo = dataclasses.replace(demo, pretrain_epochs=1, finetune_epochs=1, qat_epochs=1, lava_samples=1)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    check_writable(out / "report.md", "--out")
    for stage in ("pretrain", "finetune", "qat"):
        if (out / stage).exists():
            shutil.rmtree(out / stage)  # a demo run starts fresh; --out elsewhere keeps earlier runs
    clock = time.perf_counter()
    steps = [("pretrain", demo.pretrain_epochs, None), ("finetune", demo.finetune_epochs, out / "pretrain"),
             ("qat", demo.qat_epochs, out / "finetune")]
    summaries = {}
    for i, (stage, epochs, init) in enumerate(steps, start=1):
        print(f"[{i}/6] {stage}: {demo.model} on {demo.data}, {epochs} epoch(s)", flush=True)
        summaries[stage] = _demo_stage(demo, out, stage, epochs, init)

    print("[4/6] export for loihi2: netx, ONNX, NIR", flush=True)
    export_dir = out / "export"
    export_dir.mkdir(exist_ok=True)
    qmodel, info = load_model_from_run(out / "qat")
    target = get_target(demo.target)
    net = lower(qmodel, tuple(info["input_shape"]))  # type: ignore[arg-type]
    check_network(net, target)
    resources = estimate_resources(net, target)
    export_args = argparse.Namespace(run=str(out / "qat"), target=demo.target, out=str(export_dir / "model.net"),
                                     onnx=str(export_dir / "model.onnx"), nir=str(export_dir / "model.nir"))
    _cmd_export(export_args)

    print(f"[5/6] validate: float, QAT, native on the whole test split, Lava on {demo.lava_samples}", flush=True)
    report = validate(out / "qat", lava_samples=demo.lava_samples, out_dir=export_dir / "validate")
    plots = write_plots(report, out)
    write_markdown(report, out, plots, f"nmoco demo ({demo.model} on {demo.data})")

    print("[6/6] summary", flush=True)
    acc = report.accuracy
    rows = [
        ("pre-training (MixInfoNCE)", f"{summaries['pretrain']['train_time_s']:.0f} s, final loss "
                                      f"{summaries['pretrain']['final'].get('loss', float('nan')):.3f}"),
        ("top-1 float (fine-tuned)", f"{100 * acc.get('float', float('nan')):.2f} %"),
        ("top-1 QAT", f"{100 * acc['qat']:.2f} %"),
        ("top-1 native (exported netx)", f"{100 * acc['native']:.2f} %  ({report.samples} test samples)"),
        (f"top-1 Lava ({report.lava_samples} samples)", f"{100 * acc.get('lava', float('nan')):.2f} %"),
        ("agreement float / fixed", f"{100 * report.agreement_float_fixed:.2f} %"),
        ("QAT == native (every layer, step)", str(report.qat_equals_native)),
        ("native == Lava (every layer, step)", str(report.lava_equals_native)),
    ]
    for table, energy in report.energy.items():
        rows.append((f"energy / inference ({table})", f"{energy.total_uj:.3f} uJ"))
        if energy.ann_uj is not None:
            rows.append((f"  equivalent ANN ({table})", f"{energy.ann_uj:.3f} uJ"))
    rows.append(("Loihi 2 resources", f"{resources.cores} cores on {resources.chips} chip(s)"))
    rows.append(("wall time", f"{time.perf_counter() - clock:.0f} s"))
    width = max(len(r[0]) for r in rows) + 2
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("-" * (width + 40))
    print(f"report: {out / 'report.md'}; runs: {out}/pretrain, finetune, qat; exports: {export_dir}")
    return 0 if report.lava_equals_native is not False and report.qat_equals_native else 1


def build_parser(plugged: Sequence[object] = ()) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nmoco",
        description="neuromoco: spiking networks from NeuroMoCo training to a bit-exact Loihi 2 deployment",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("simulate", help="run a netx file on spike input (native or Lava)")
    p.add_argument("model", help="netx .net file")
    p.add_argument("--input", required=True, help="SPIKES.npy, (T, *input_shape) or (B, T, *input_shape)")
    p.add_argument("--steps", type=positive_int, default=None, help="steps to run (default: T + one per layer)")
    p.add_argument("--backend", choices=("native", "lava"), default="native")
    p.add_argument("--out", required=True, help="RESULT.npz")
    p.add_argument("--reset-interval", type=positive_int, default=None, help="Lava LIFReset interval")
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
    p.add_argument("--samples", type=positive_int, default=None, help="test samples (default: all)")
    p.add_argument("--backend", choices=("native", "lava"), default="native",
                   help="native: all samples natively, --lava-samples in Lava; lava: all in both")
    p.add_argument("--lava-samples", type=_non_negative_int, default=2, help="samples also run in Lava")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("demo", help="the whole chain on the built-in data")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--quick", action="store_true", help="one epoch per stage (a smoke run)")
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
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())  # one line, always
        print(f"nmoco {args.command}: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("nmoco: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
