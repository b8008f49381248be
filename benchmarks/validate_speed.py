"""Samples validated per second: native simulator vs Lava, measured in the same run.

Validation runs each test sample through the deployed network; per sample Lava
builds, compiles and runs a fresh network (that is what ``run_lava`` does, and
what a user validating N samples pays), the native simulator runs the whole
batch at once. The network is a ``loihinet_s`` lowered from a trained run
(``--run``) or, without one, from the untrained model with its random
initialisation; inputs are ndigits test samples (binary frames).

Last line: ``validate_speedup=<x>``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="trained run folder or checkpoint (default: untrained loihinet_s)")
    parser.add_argument("--samples", type=int, default=256, help="samples for the native simulator")
    parser.add_argument("--lava-samples", type=int, default=3, help="samples for Lava")
    args = parser.parse_args()

    import torch

    from export.lower import lower
    from export.netx import write_netx
    from neuromoco.data import DataConfig, build_dataset
    from neuromoco.models.registry import ModelConfig, build_model
    from sims.lava import run_lava
    from sims.native import simulate

    if args.run:
        from neuromoco.train.checkpoint import load_model_from_run

        model, info = load_model_from_run(args.run)
        data_cfg = DataConfig(**info["data_cfg"])
        shape = tuple(info["input_shape"])
    else:
        torch.manual_seed(0)
        data_cfg = DataConfig()
        shape = (2, 34, 34)
        model = build_model(ModelConfig(name="loihinet_s"), shape, 10).eval()
    net = lower(model, shape)  # type: ignore[arg-type]
    path = write_netx(net, Path(tempfile.mkdtemp(prefix="nmoco-bench-")) / "model.net")
    test = build_dataset(data_cfg, "test")
    n = min(args.samples, len(test))
    frames = np.stack([np.asarray(test[i][0]) for i in range(n)])
    binary = (frames > 0).astype(np.int32)  # (B, T, C, H, W)
    steps = binary.shape[1] + sum(layer.kind in ("dense", "conv") for layer in net.layers)

    simulate(net, binary[:1], steps)  # load the compiled kernels
    t0 = time.perf_counter()
    native = simulate(net, binary, steps)
    native_rate = n / (time.perf_counter() - t0)
    k = min(args.lava_samples, n)
    t0 = time.perf_counter()
    lava = run_lava(path, binary[:k], steps, net=net)
    lava_rate = k / (time.perf_counter() - t0)
    same = all(np.array_equal(a[:k], b) for a, b in zip(native.spikes, lava.spikes))
    print(f"network: {len(net.layers)} layers, input {net.input_shape}, {steps} steps per sample")
    print(f"native: {n} samples at {native_rate:,.1f} samples/s")
    print(f"Lava:   {k} samples at {lava_rate:,.3f} samples/s (build + run per sample; run alone {lava.wall_s:.2f} s)")
    print(f"native == Lava on those {k} samples: {same}")
    print(f"against Lava's stepping alone (build and readout excluded): {native_rate / (k / lava.wall_s):,.0f}x")
    print(f"validate_speedup={native_rate / lava_rate:.0f}")


if __name__ == "__main__":
    main()
