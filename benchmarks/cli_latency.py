"""Cold-start latency of the command line: how long until `nmoco` has done its job.

Each case runs in a fresh process, 5 times; the median and the spread (min-max)
are printed. Cases: ``python -c "import numpy"`` (for scale), ``nmoco --help``,
``nmoco simulate --backend native`` on Intel's 784-128-64-10 MNIST file (5
steps of random input spikes) and on Intel's PilotNet LIF file (one sample,
its 24 steps of ``input.npy``). The netx files come from ../shared; without it
the script says so and times the same shapes with random weights.

Targets on the project's 2-core machine: ``--help`` <= 0.5 s, MNIST simulate
<= 1.5 s, PilotNet simulate <= 3 s. The last line is machine-readable:
``help_s=<median> mnist_s=<median> pilotnet_s=<median>``.

Usage: .venv/bin/python benchmarks/cli_latency.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "lava_netx"
_SCRIPT = Path(sys.executable).parent / "nmoco"  # the console script users run
NMOCO = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-c", "from neuromoco.cli import main; main()"]


def _files(tmp: Path) -> tuple[Path, Path, Path, Path, str]:
    """(mnist net, mnist input, pilotnet net, pilotnet input, where they come from)."""
    from export.examples import dense_network, pilotnet_shaped_network
    from export.netx import write_netx

    rng = np.random.default_rng(0)
    mnist = SHARED / "mnist" / "trained_mnist_network.net"
    pilot = SHARED / "pilotnet_lif" / "network.net"
    if mnist.exists() and pilot.exists():
        source = "Intel's files in ../shared"
        frames = np.load(SHARED / "pilotnet_lif" / "input.npy")  # (W, H, C, T) bool
        pilot_x = np.ascontiguousarray(frames.transpose(3, 2, 1, 0)).astype(np.int32)  # (T, C, H, W)
    else:
        source = "same shapes, random weights (../shared absent)"
        mnist = write_netx(dense_network(0), tmp / "mnist.net")
        pilot = write_netx(pilotnet_shaped_network(0), tmp / "pilotnet.net")
        pilot_x = (rng.random((24, 3, 66, 200)) < 0.1).astype(np.int32)
    np.save(tmp / "mnist_in.npy", (rng.random((5, 784)) < 0.2).astype(np.int32))
    np.save(tmp / "pilot_in.npy", pilot_x)
    return mnist, tmp / "mnist_in.npy", pilot, tmp / "pilot_in.npy", source


def _time(cmd: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd[-6:])} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nmoco-latency-"))
    mnist, mnist_in, pilot, pilot_in, source = _files(tmp)
    cases = {
        "numpy": [sys.executable, "-c", "import numpy"],
        "help": [*NMOCO, "--help"],
        "mnist": [*NMOCO, "simulate", str(mnist), "--input", str(mnist_in), "--backend", "native",
                  "--out", str(tmp / "mnist.npz")],
        "pilotnet": [*NMOCO, "simulate", str(pilot), "--input", str(pilot_in), "--backend", "native",
                     "--out", str(tmp / "pilot.npz")],
    }
    medians = {}
    print(f"netx files: {source}; {args.runs} cold runs each (fresh process)")
    print(f"{'case':<10}{'median s':>10}{'min s':>8}{'max s':>8}")
    for name, cmd in cases.items():
        times = _time(cmd, args.runs)
        medians[name] = statistics.median(times)
        print(f"{name:<10}{medians[name]:>10.2f}{min(times):>8.2f}{max(times):>8.2f}", flush=True)
    print(f"help_s={medians['help']:.2f} mnist_s={medians['mnist']:.2f} pilotnet_s={medians['pilotnet']:.2f}")


if __name__ == "__main__":
    main()
