"""The ``nmoco`` command line: parses the flags and hands them to the pipeline functions.

The work lives in :mod:`neuromoco.pipeline` (export, simulate, demo),
:mod:`sims.validate` and the plugged subcommands (``data``, ``train``). This
module imports none of them at the top: each subcommand imports its heavy
dependencies (torch, h5py, Lava) when it runs, and a plugged subcommand's
module is imported only when it is the one given, so ``nmoco --help`` and
``nmoco CMD --help`` are instant. Errors the project raises on purpose
(:class:`NmocoError`) print one line and exit with code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Callable, NoReturn, Sequence

from hw_targets.errors import NmocoError
from neuromoco.cli_args import EXIT_BAD_INPUT, PLUGGED, check_writable, non_negative_int, positive_int

if TYPE_CHECKING:
    from neuromoco.pipeline.nir_import import NirOptions

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]

#: Subcommands that load no training code, hence neither tonic nor spikingjelly and none of their
#: import-time noise: there is nothing to quiet, and importing them to quiet them would cost seconds.
_LIGHT_COMMANDS = frozenset({"simulate"})


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (exit code 2), like every other bad-input error."""

    def error(self, message: str) -> NoReturn:
        text = " ".join(message.split())
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {text} (see {self.prog} --help)\n")


def _cmd_simulate(args: argparse.Namespace) -> int:
    from neuromoco.pipeline.simulate import SimulateOptions, simulate_file

    options = SimulateOptions(backend=args.backend, steps=args.steps, reset_interval=args.reset_interval,
                              reset_offset=args.reset_offset, energy=args.energy,
                              input_shape=None if args.input_shape is None else tuple(args.input_shape))
    simulate_file(args.model, args.input, args.out, options)
    return 0


def _nir_options(args: argparse.Namespace) -> "NirOptions":
    from neuromoco.pipeline.nir_import import NirOptions

    given = {"dt": args.dt, "data": args.data, "window_us": args.window_us,
             "calibrate": Path(args.calibrate) if args.calibrate else None}
    return NirOptions(**{k: v for k, v in given.items() if v is not None})  # unset flags: the dataclass defaults


def _cmd_export(args: argparse.Namespace) -> int:
    from neuromoco.pipeline.deploy import ExportOutputs, export_run
    from neuromoco.pipeline.nir_import import export_nir_graph, is_nir_path

    outputs = ExportOutputs(netx=Path(args.out), onnx=Path(args.onnx) if args.onnx else None,
                            nir=Path(args.nir) if args.nir else None)
    if is_nir_path(args.run):
        export_nir_graph(args.run, args.target, outputs, _nir_options(args))
    else:
        export_run(args.run, args.target, outputs)
    return 0


def _cmd_validate_nir(args: argparse.Namespace) -> int:
    from hw_targets.errors import ConfigError, SimulationError
    from neuromoco.pipeline.nir_import import validate_nir

    if args.data_root is None:
        raise ConfigError(f"{args.run}: validating a NIR graph needs --data-root (event recordings, e.g. N-MNIST)")
    report = validate_nir(args.run, args.data_root, _nir_options(args), split=args.split, samples=args.samples,
                          lava_samples=args.lava_samples)
    print(report.format())
    if report.first_lava_difference is not None:
        raise SimulationError(f"native != Lava: {report.first_lava_difference}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from hw_targets.errors import SimulationError
    from sims.report import summary_rows, write_markdown, write_plots
    from sims.validate import validate

    from neuromoco.pipeline.nir_import import is_nir_path

    if is_nir_path(args.run):
        return _cmd_validate_nir(args)
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


def _cmd_demo(args: argparse.Namespace) -> int:
    """The whole chain on ndigits: pre-train, fine-tune, QAT, export, validate, energy, one summary table."""
    import dataclasses

    from neuromoco.pipeline.demo import DemoConfig, run_demo

    demo = DemoConfig().quick() if args.quick else DemoConfig()
    if args.model is not None:
        demo = dataclasses.replace(demo, model=args.model)
    return run_demo(Path(args.out), demo)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _add_nir_flags(p: argparse.ArgumentParser) -> None:
    """Flags of a NIR graph's import: time step, data layout, event binning."""
    p.add_argument("--calibrate", default=None, metavar="DATA",
                   help="MODEL.nir only: event recordings (a --data folder) that pick the per-layer scales")
    p.add_argument("--dt", type=_positive_float, default=None,
                   help="MODEL.nir only: forward-Euler time step in the graph's time unit (default: one unit)")
    p.add_argument("--data", default=None, help="MODEL.nir only: dataset layout of the event folders (nmnist, ...)")
    p.add_argument("--window-us", type=positive_int, default=None,
                   help="MODEL.nir only: microseconds of events per input step (default: N-MNIST's 1 ms)")


def _add_builtin(sub: argparse._SubParsersAction[_Parser]) -> None:
    """The subcommands defined here: simulate, export, validate, demo."""
    p = sub.add_parser("simulate", help="run a netx file on spike input (native or Lava)")
    p.add_argument("model", help="netx .net file")
    p.add_argument("--input", required=True, help="SPIKES.npy, (T, *input_shape) or (B, T, *input_shape)")
    p.add_argument("--steps", type=positive_int, default=None, help="steps to run (default: T + one per layer)")
    p.add_argument("--backend", choices=("native", "lava"), default="native")
    p.add_argument("--out", required=True, help="RESULT.npz")
    p.add_argument("--reset-interval", type=positive_int, default=None, help="Lava LIFReset interval")
    p.add_argument("--reset-offset", type=int, default=0, help="Lava LIFReset offset")
    p.add_argument("--energy", default=None, help="energy table: loihi, cmos45nm, or a TABLE.toml")
    p.add_argument("--input-shape", type=positive_int, nargs="+", default=None, metavar="DIM",
                   help="C H W (or N) for a netx file that starts with a conv layer and has no input layer "
                        "(default: the input array's trailing axes)")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("export", help="lower a trained run to a Loihi 2 netx file (and ONNX, NIR)")
    p.add_argument("run", help="run folder, checkpoint file (RUN_OR_CKPT), or a NIR graph (MODEL.nir)")
    p.add_argument("--target", default="loihi2", help="hardware target (loihi2, loihi1)")
    p.add_argument("--out", required=True, help="MODEL.net")
    p.add_argument("--onnx", default=None, help="also write the float model as ONNX")
    p.add_argument("--nir", default=None, help="also write the integer network as NIR")
    _add_nir_flags(p)
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("validate", help="float vs fixed point vs Lava on the test split, report and plots")
    p.add_argument("run", help="run folder or checkpoint file")
    p.add_argument("--samples", type=positive_int, default=None, help="test samples (default: all)")
    p.add_argument("--backend", choices=("native", "lava"), default="native",
                   help="native: all samples natively, --lava-samples in Lava; lava: all in both")
    p.add_argument("--lava-samples", type=non_negative_int, default=2, help="samples also run in Lava")
    p.add_argument("--data-root", default=None, help="MODEL.nir only: the event recordings to validate on")
    p.add_argument("--split", choices=("test", "train", "all"), default="test",
                   help="MODEL.nir only: which recordings of --data-root")
    _add_nir_flags(p)
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("demo", help="the whole chain on the built-in data")
    p.add_argument("--out", default="runs/demo", help="output folder")
    p.add_argument("--quick", action="store_true", help="one epoch per stage (a smoke run)")
    p.add_argument("--model", choices=("loihinet_s", "loihinet_m", "loihinet_sew_s", "sew_resnet18_loihi",
                                        "loihinet_sdnn_s"), default=None,
                   help="the deployable backbone: loihinet_* (CUBA-LIF, binary spikes), loihinet_sew_s and "
                        "sew_resnet18_loihi (the same with SEW residual blocks, exported as a graph; "
                        "sew_resnet18_loihi takes about 10 minutes per epoch on 2 cores: use --quick) or "
                        "loihinet_sdnn_s (sigma-delta, graded spikes; trains from scratch, no pre-training)")
    p.set_defaults(func=_cmd_demo)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The ``nmoco`` parser.

    Args:
        command: The subcommand given, if known: a plugged subcommand gets its full arguments
            (importing its module) only when it is this one; the others are listed by name and help.
    """
    parser = _Parser(
        prog="nmoco",
        description="neuromoco: spiking networks from NeuroMoCo training to a bit-exact Loihi 2 deployment",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_builtin(sub)
    for name, plugged in PLUGGED.items():
        if name == command:
            importlib.import_module(plugged.module).add_parser(sub)
        else:
            sub.add_parser(name, help=plugged.help)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv``: the first word that is not an option (``nmoco`` takes no option values)."""
    return next((word for word in argv if not word.startswith("-")), None)


def _quiet_third_party(preload: bool) -> None:
    """Keep import-time noise of the libraries we build on out of the user's output.

    tonic prints a Prophesee-toolbox notice on import, spikingjelly's cupy probe
    logs about CUDA, and torch.jit warns about its own deprecation. With
    ``preload``, tonic and spikingjelly are imported here, their output dropped.
    """
    import contextlib
    import io
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    warnings.filterwarnings("ignore", message=".*TensorBoard logging needs.*")
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    if not preload:
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        for name in ("tonic", "spikingjelly.activation_based.neuron"):
            try:
                importlib.import_module(name)
            except ImportError:
                pass


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``nmoco`` with ``argv`` (default: ``sys.argv[1:]``).

    Returns:
        The exit code: 0 on success, 2 on bad input (one line on stderr), 130 on Ctrl-C;
        a subcommand may return 1 for a failed check (``demo``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_command_in(argv)).parse_args(argv)
    _quiet_third_party(preload=args.command not in _LIGHT_COMMANDS)
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
