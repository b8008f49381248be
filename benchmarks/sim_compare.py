"""Native simulator speed of two source trees, measured alternately in one run.

For a refactor that must not slow the simulator down: each round runs the base
tree and then this tree, each in a fresh process (``PYTHONPATH`` set to the
tree), on the networks of ``benchmarks/sim_speed.py`` (Intel's PilotNet LIF
file where ../shared has it, else the same shapes with random weights, and a
784-128-64-10 dense network). Rates are samples x steps per second after a
warm-up call. The medians of the rounds are printed per tree, with the ratio
this / base; the last line is machine-readable:
``pilotnet_b1=<ratio> pilotnet_b64=<ratio> dense_b64=<ratio>``.

Usage::

    git worktree add /tmp/nmoco-base <previous commit>
    .venv/bin/python benchmarks/sim_compare.py --base /tmp/nmoco-base [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CASES = ("pilotnet_b1", "pilotnet_b64", "dense_b64")


def _worker(steps: int, seconds: float) -> None:
    """Runs inside a tree given by PYTHONPATH: print the native rates as one JSON line."""
    import numpy as np

    from export.examples import dense_network, pilotnet_shaped_network
    from export.netx import read_netx, write_netx
    from sims.native import simulate

    shared = REPO.parent / "shared" / "data" / "lava_netx" / "pilotnet_lif"
    if (shared / "network.net").exists():
        pilot = read_netx(shared / "network.net")
        bias = np.load(shared / "image.npy").transpose(2, 1, 0)
        pilot_frames = np.zeros((steps, *pilot.input_shape), dtype=np.int32)
    else:
        pilot = pilotnet_shaped_network(0)
        bias = None
        pilot_frames = (np.random.default_rng(0).random((steps, *pilot.input_shape)) < 0.1).astype(np.int32)
    dense = read_netx(write_netx(dense_network(0), Path(tempfile.mkdtemp()) / "dense.net"))
    dense_frames = (np.random.default_rng(1).random((steps, 784)) < 0.1).astype(np.int32)
    rates = {}
    for label, net, frames, b, batch in (("pilotnet_b1", pilot, pilot_frames, bias, 1),
                                         ("pilotnet_b64", pilot, pilot_frames, bias, 64),
                                         ("dense_b64", dense, dense_frames, None, 64)):
        x = np.ascontiguousarray(np.broadcast_to(frames, (batch, *frames.shape)))
        simulate(net, x, steps, input_bias=b)  # compile, build the plans
        calls, t0 = 0, time.perf_counter()
        while calls < 3 or time.perf_counter() - t0 < seconds:
            simulate(net, x, steps, input_bias=b)
            calls += 1
        rates[label] = calls * batch * steps / (time.perf_counter() - t0)
    print(json.dumps(rates))


def _measure(tree: Path, steps: int, seconds: float) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(tree))
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", "--steps", str(steps),
                          "--seconds", str(seconds)], env=env, cwd=tree, capture_output=True, text=True, check=True)
    rates: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, help="the base tree (a checkout of the previous commit)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=1.0, help="timed seconds per case and run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        _worker(args.steps, args.seconds)
        return
    if args.base is None or not (args.base / "sims" / "native.py").exists():
        parser.error("--base must be a checkout of this project (with sims/native.py)")
    runs: dict[str, list[dict[str, float]]] = {"base": [], "this": []}
    for r in range(args.rounds):
        for name, tree in (("base", args.base.resolve()), ("this", REPO)):
            runs[name].append(_measure(tree, args.steps, args.seconds))
            print(f"round {r + 1} {name}: " + " ".join(f"{k}={v:.0f}" for k, v in runs[name][-1].items()), flush=True)
    print(f"{'case':<14}{'base median':>14}{'this median':>14}{'this/base':>11}   (samples x steps / s; "
          f"{args.rounds} alternating rounds)")
    ratios = {}
    for case in CASES:
        base = statistics.median(run[case] for run in runs["base"])
        this = statistics.median(run[case] for run in runs["this"])
        ratios[case] = this / base
        print(f"{case:<14}{base:>14.0f}{this:>14.0f}{ratios[case]:>11.3f}")
    print(" ".join(f"{case}={ratios[case]:.3f}" for case in CASES))


if __name__ == "__main__":
    main()
