"""Native simulator vs Lava's fixed_pt simulator, both measured in this run.

Networks: PilotNet LIF (Intel's file when ../shared is present, else the same
shapes with random weights), Intel's PilotNet SDNN (graded spikes; skipped
without ../shared), a 784-128-64-10 dense network and a SEW residual graph
(``residual``: ``export.examples.small_residual_network`` at 2x34x34 with 16 and
32 channels, the shape of ``loihinet_sew_s``; Lava runs it as built by
``sims.lava.build_lava_graph``, one synapse process per source of a merge). The native
simulator runs batch 1 and batch 64; Lava runs one sample, its steady state
timed apart from its build. Speed is samples x steps per second; the ratio is
native / Lava. The last line is machine-readable:
``pilotnet_b1=<x> pilotnet_b64=<x> dense_b64=<x> residual_b64=<x> pilotnet_sdnn_b1=<x> pilotnet_sdnn_b64=<x>``.

PilotNet SDNN input: Intel's input.npy frame panned by one pixel per step (a
camera turning), so that every layer sends messages at every step. A held frame
(lava-dl's test protocol) goes quiet after the first steps, which the native
simulator skips; that flatters it, and the table shows it apart.

Usage: .venv/bin/python benchmarks/sim_speed.py [--steps N] [--lava-steps N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from export.examples import dense_network, pilotnet_shaped_network, small_residual_network  # noqa: E402
from export.ir import InputLayer, Network  # noqa: E402
from export.netx import read_netx, write_netx  # noqa: E402
from sims.lava_compat import import_netx  # noqa: E402
from sims.native import simulate  # noqa: E402

SHARED_PILOTNET = REPO.parent / "shared" / "data" / "lava_netx" / "pilotnet_lif"
SHARED_PILOTNET_SDNN = REPO.parent / "shared" / "data" / "lava_netx" / "pilotnet_sdnn"


def lava_steady_steps_per_s(
    path: Path, frames: np.ndarray, net: Network, warmup: int, steps: int, input_bias: np.ndarray | None
) -> tuple[float, float]:
    """(build seconds, steady-state steps/s) of one Lava run with a single output sink."""
    netx = import_netx()
    from lava.proc import io

    t0 = time.perf_counter()
    kwargs = {"spike_exp": net.spike_exp} if net.family == "SDNN" else {}
    lava_net = netx.hdf5.Network(net_config=str(path), **kwargs)
    data = np.transpose(frames, tuple(range(frames.ndim - 1, -1, -1)))  # (T, C, H, W) -> (W, H, C, T)
    source = io.source.RingBuffer(data=np.ascontiguousarray(data))
    first = net.layers[0]
    if isinstance(first, InputLayer) and first.neuron is not None:
        source.s_out.connect(lava_net.in_layer.neuron.a_in)
        if input_bias is not None:
            lava_net.in_layer.neuron.bias_mant.init = np.ascontiguousarray(input_bias.transpose(2, 1, 0))
    else:
        source.s_out.connect(lava_net.inp)
    sink = io.sink.RingBuffer(shape=lava_net.out.shape, buffer=warmup + steps)
    lava_net.out.connect(sink.a_in)
    return _timed_run(lava_net, t0, warmup, steps)


def lava_graph_steady_steps_per_s(net: Network, frames: np.ndarray, warmup: int, steps: int) -> tuple[float, float]:
    """(build seconds, steady-state steps/s) of a residual graph in Lava, built by ``build_lava_graph``."""
    from lava.proc import io

    from sims.lava import build_lava_graph

    t0 = time.perf_counter()
    data = np.transpose(frames, tuple(range(frames.ndim - 1, -1, -1)))  # (T, C, H, W) -> (W, H, C, T)
    source = io.source.RingBuffer(data=np.ascontiguousarray(data))
    graph = build_lava_graph(net, source.s_out)
    out = graph.blocks[len(net.layers) - 1].out
    sink = io.sink.RingBuffer(shape=out.shape, buffer=warmup + steps)
    out.connect(sink.a_in)
    return _timed_run(source, t0, warmup, steps)


def _timed_run(process: object, t0: float, warmup: int, steps: int) -> tuple[float, float]:
    """Compile and run ``warmup`` steps (build time counted from ``t0``), then time ``steps`` more:
    (build seconds, steady-state steps/s)."""
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    try:
        process.create_runtime(run_cfg=cfg)  # type: ignore[attr-defined]
        process.run(condition=RunSteps(num_steps=warmup), run_cfg=cfg)  # type: ignore[attr-defined]
        build = time.perf_counter() - t0
        t1 = time.perf_counter()
        process.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)  # type: ignore[attr-defined]
        return build, steps / (time.perf_counter() - t1)
    finally:
        process.stop()  # type: ignore[attr-defined]


def native_rate(
    net: Network, frames: np.ndarray, batch: int, steps: int, input_bias: np.ndarray | None, seconds: float = 1.0
) -> float:
    """Samples x steps per second of the native simulator: the mean over back-to-back calls for at
    least ``seconds`` (and 3 calls), after one warm-up call, so that, like Lava's timed run, it
    averages over the machine's noise instead of picking its quietest moment."""
    x = np.ascontiguousarray(np.broadcast_to(frames, (batch, *frames.shape)))  # a real batch, as users pass
    options = {} if input_bias is None else {"input_bias": input_bias}
    simulate(net, x, steps, **options)  # compiles the kernels, builds the plans
    calls = 0
    t0 = time.perf_counter()
    while calls < 3 or time.perf_counter() - t0 < seconds:
        simulate(net, x, steps, **options)
        calls += 1
    return calls * batch * steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=16, help="steps per sample for the native runs")
    parser.add_argument("--lava-steps", type=int, default=16, help="timed Lava steps (after 2 warm-up steps)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nmoco-bench-"))
    rng = np.random.default_rng(0)

    if (SHARED_PILOTNET / "network.net").exists():
        pilot_path = SHARED_PILOTNET / "network.net"
        pilot = read_netx(pilot_path)
        # As lava-dl's Loihi 2 test drives it: the image is the input neuron's bias, no input spikes.
        pilot_bias = np.load(SHARED_PILOTNET / "image.npy").transpose(2, 1, 0)  # W,H,C -> C,H,W
        pilot_frames = np.zeros((args.steps, *pilot.input_shape), dtype=np.int32)
        source = "Intel's PilotNet LIF file, image.npy as the input neuron's bias (as lava-dl's hardware test)"
    else:
        pilot = pilotnet_shaped_network(0)
        pilot_path = write_netx(pilot, tmp / "pilotnet.net")
        pilot_frames = (rng.random((args.steps, *pilot.input_shape)) < 0.1).astype(np.int32)
        pilot_bias = None
        source = "PilotNet shapes with random weights (../shared absent)"
    dense = dense_network(0)
    dense_path = write_netx(dense, tmp / "dense.net")
    dense_frames = (rng.random((args.steps, 784)) < 0.1).astype(np.int32)

    rows = []
    ratios = {}
    cases = [("pilotnet", pilot, pilot_path, pilot_frames, pilot_bias), ("dense", dense, dense_path, dense_frames, None)]
    if (SHARED_PILOTNET_SDNN / "network.net").exists():
        sdnn_path = SHARED_PILOTNET_SDNN / "network.net"
        sdnn = read_netx(sdnn_path)
        frame = np.load(SHARED_PILOTNET_SDNN / "input.npy")[..., 0].transpose(2, 1, 0)  # W,H,C -> C,H,W
        panned = np.stack([np.roll(frame, t, axis=2) for t in range(args.steps)]).astype(np.int32)
        held = np.ascontiguousarray(np.broadcast_to(frame, (args.steps, *frame.shape))).astype(np.int32)
        cases += [("pilotnet_sdnn", sdnn, sdnn_path, panned, None), ("sdnn_held", sdnn, sdnn_path, held, None)]
    residual = small_residual_network(0, input_shape=(2, 34, 34), channels=(16, 32))
    residual_frames = (rng.random((args.steps, *residual.input_shape)) < 0.1).astype(np.int32)
    cases.insert(2, ("residual", residual, None, residual_frames, None))
    for label, net, path, frames, bias in cases:
        if path is None:
            build, lava_rate = lava_graph_steady_steps_per_s(net, frames, warmup=2, steps=args.lava_steps)
        else:
            build, lava_rate = lava_steady_steps_per_s(path, frames, net, warmup=2, steps=args.lava_steps,
                                                       input_bias=bias)
        for batch in (1, 64):
            rate = native_rate(net, frames, batch, args.steps, bias)
            ratios[f"{label}_b{batch}"] = rate / lava_rate
            rows.append((label, batch, rate, lava_rate, build, rate / lava_rate))
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"PilotNet: {source}")
    print(f"{'network':<14}{'batch':>6}{'native steps/s':>16}{'Lava steps/s':>14}{'Lava build s':>14}{'speedup':>10}")
    for label, batch, rate, lava_rate, build, ratio in rows:
        print(f"{label:<14}{batch:>6}{rate:>16.0f}{lava_rate:>14.1f}{build:>14.2f}{ratio:>9.0f}x")
    print(f"peak RSS of this process: {peak_gib:.2f} GiB (includes Lava and torch)")
    sdnn_line = ""
    if "pilotnet_sdnn_b1" in ratios:
        print("pilotnet_sdnn: Intel's PilotNet SDNN, its frame panned 1 px per step; sdnn_held: the frame held "
              "(lava-dl's test protocol)")
        sdnn_line = f" pilotnet_sdnn_b1={ratios['pilotnet_sdnn_b1']:.0f} pilotnet_sdnn_b64={ratios['pilotnet_sdnn_b64']:.0f}"
    print(f"pilotnet_b1={ratios['pilotnet_b1']:.0f} pilotnet_b64={ratios['pilotnet_b64']:.0f} "
          f"dense_b64={ratios['dense_b64']:.0f} residual_b64={ratios['residual_b64']:.0f}{sdnn_line}")


if __name__ == "__main__":
    main()
