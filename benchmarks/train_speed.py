"""Training throughput of one NeuroMoCo pre-training step (loihinet_s, synthetic ndigits-shaped batches).

Measures forward of both encoders, MixInfoNCE, backward, optimizer step and
queue update, without data loading. Runs on the CPU, and on CUDA too when
present. The last line is ``train_samples_per_s=<x>`` (CUDA when available,
else CPU).

    python benchmarks/train_speed.py [--model loihinet_s] [--batch-size 64] [--steps 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from neuromoco.data import DataConfig, dataset_info
from neuromoco.models import ModelConfig, build_model
from neuromoco.ssl.config import MoCoConfig
from neuromoco.ssl.moco import MoCo
from neuromoco.ssl.split_bn import convert_split_bn
from neuromoco.train.config import OptimConfig, TrainConfig
from neuromoco.train.trainer import make_optimizer


def measure(device: torch.device, model_name: str, batch_size: int, steps: int, warmup: int) -> float:
    """Samples per second of the pre-training step on ``device``."""
    torch.manual_seed(0)
    info = dataset_info(DataConfig())
    cfg = TrainConfig(model=ModelConfig(name=model_name), optim=OptimConfig(batch_size=batch_size))
    backbone = convert_split_bn(build_model(cfg.model, info.input_shape, info.num_classes), cfg.moco.bn_splits)
    backbone.classifier.requires_grad_(False)
    moco = MoCo(backbone, MoCoConfig(), info.n_time_bins).to(device)
    optimizer = make_optimizer([p for p in moco.parameters() if p.requires_grad], cfg)
    amp = device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    gen = torch.Generator().manual_seed(0)
    shape = (info.n_time_bins, batch_size, *info.input_shape)
    # ndigits count frames: sparse, small integer counts.
    views = [((torch.rand(shape, generator=gen) < 0.05).float() * 2).to(device) for _ in range(2)]

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = moco(*views)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=ModelConfig().name)
    parser.add_argument("--batch-size", type=int, default=OptimConfig().batch_size)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    rate = 0.0
    for device in devices:
        rate = measure(device, args.model, args.batch_size, args.steps, args.warmup)
        print(f"{device.type}: {args.model} pre-training step, batch {args.batch_size}, "
              f"torch threads {torch.get_num_threads()}: {rate:.1f} samples/s")
    print(f"train_samples_per_s={rate:.1f}")


if __name__ == "__main__":
    main()
