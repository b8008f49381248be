"""``simulate_file``: a netx file on a spike array, natively or in Lava, with an optional energy estimate.

Loads no training code: the native path needs only the netx reader, the
simulator, its result type and the energy tables (torch and Lava stay out).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuromoco.cli_args import check_writable

if TYPE_CHECKING:
    from sims.energy import EnergyReport
    from sims.result import SimResult


@dataclass(frozen=True)
class SimulateOptions:
    """How ``simulate_file`` runs (the ``nmoco simulate`` flags besides the files).

    Attributes:
        backend: ``native`` or ``lava``.
        steps: Steps to run. The simulator's step count is the input's T plus the
            network's synaptic latency by default, not the data's T, hence its own name.
        reset_interval: Lava ``LIFReset`` interval, or None for no periodic reset.
        reset_offset: Lava ``LIFReset`` offset.
        energy: Energy table (``loihi``, ``cmos45nm`` or a TABLE.toml), or None for no estimate.
        input_shape: (C, H, W) or (N,) for a netx file without an input layer that starts with a
            conv layer (as lava-dl writes them); None takes it from the input array's trailing axes.
    """

    backend: str = "native"
    steps: int | None = None
    reset_interval: int | None = None
    reset_offset: int = 0
    energy: str | None = None
    input_shape: tuple[int, ...] | None = None


def simulate_file(model: str | Path, spikes_file: str | Path, out: str | Path, options: SimulateOptions) -> Path:
    """Run ``model`` on the spikes in ``spikes_file``, write the result to ``out`` and print a per-layer table.

    Args:
        model: netx ``.net`` file.
        spikes_file: ``.npy`` array ``(T, *input_shape)`` or ``(B, T, *input_shape)``, integer or bool.
        out: ``RESULT.npz`` (see :meth:`sims.result.SimResult.to_npz`), plus the energy arrays with ``energy``.
        options: Backend, steps, Lava reset and energy table.

    Returns:
        The path written.

    Raises:
        ConfigError: ``out`` cannot be written, or a bad energy table.
        SimulationError: A missing or unreadable input, or input the network cannot take (names the file).
        ExportError: An unreadable netx file.
    """
    import numpy as np

    from export.netx import read_netx
    from hw_targets.errors import InputShapeError, SimulationError

    out = Path(out)
    check_writable(out, "--out")
    table = None
    if options.energy:
        from hw_targets.energy_tables import resolve_energy_table

        table = resolve_energy_table(options.energy)
    try:
        net = read_netx(model, options.input_shape)
        shape_needed = None
    except InputShapeError as exc:
        net, shape_needed = None, exc
    path = Path(spikes_file)
    if not path.is_file():
        raise SimulationError(f"{path}: no such input file")
    try:
        spikes = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise SimulationError(f"{path}: not a readable .npy array ({exc})") from None
    if net is None:  # a conv-first file: the input's trailing (C, H, W), as Lava takes input_shape
        if spikes.ndim not in (4, 5):
            assert shape_needed is not None
            raise shape_needed from None
        net = read_netx(model, tuple(int(s) for s in spikes.shape[-3:]))
    if not out.parent.is_dir():
        raise SimulationError(f"{out}: folder {out.parent} does not exist")
    try:
        result = _run(model, net, spikes, options)
    except SimulationError as exc:
        raise SimulationError(f"{path}: {exc}") from None
    extra: dict[str, Any] = {}
    report = None
    if table is not None:
        from sims.energy import estimate_energy

        report = estimate_energy(net, result.layer_spike_counts, result.synops, result.out_spikes.shape[1], table,
                                 messages=result.spikes if result.graded else None)
        extra = {"energy_uj_per_layer": np.array([layer.total_uj for layer in report.layers]),
                 "energy_uj_total": np.array(report.total_uj)}
    result.to_npz(out, extra)
    _print_summary(result, options.backend, report)
    print(f"wrote {out}")
    return out


def _run(model: str | Path, net: Any, spikes: Any, options: SimulateOptions) -> SimResult:
    kwargs: dict[str, Any] = dict(reset_interval=options.reset_interval, reset_offset=options.reset_offset)
    if options.backend == "native":
        from sims.native import simulate

        return simulate(net, spikes, options.steps, **kwargs)
    from sims.lava import run_lava

    return run_lava(model, spikes, options.steps, net=net, **kwargs)


def _print_summary(result: SimResult, backend: str, report: EnergyReport | None) -> None:
    counts = result.layer_spike_counts
    print(f"{backend}: {counts.shape[0]} sample(s) x {result.out_spikes.shape[1]} steps in {result.wall_s:.3f} s")
    unit = "messages/sample" if result.graded else "spikes/sample"
    print(f"{'layer':<12}{'shape':>18}{unit:>16}{'synops/sample':>16}")
    for i, name in enumerate(result.layer_names):
        shape = "x".join(str(s) for s in result.spikes[i].shape[2:])
        print(f"{name:<12}{shape:>18}{counts[:, i].mean():>16.1f}{result.synops[:, i].mean():>16.1f}")
    if report is not None:
        print(report.format_table())
