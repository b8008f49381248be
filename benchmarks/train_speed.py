"""Training throughput of every registered backbone: NeuroMoCo pre-training step vs a plain supervised step.

For each backbone (``loihinet_s``, ``loihinet_m``, ``sew_resnet18``,
``spikformer_2_256`` by default), at one fixed input size ``C x H x W``, ``T``
steps and batch size, two training steps are timed in the same run, on
synthetic ndigits-like count frames (no data loading):

- **supervised**: the plain spikingjelly backbone (ordinary batch-norm),
  forward, the trainer's classification loss (rate-MSE for spike-count
  read-outs, cross-entropy otherwise: ``trainer.supervised_loss``), backward,
  optimizer step, neuron reset;
- **ssl**: the NeuroMoCo pre-training step the trainer runs: split-BN backbone
  wrapped in :class:`~neuromoco.ssl.moco.MoCo` (momentum update, query encoder
  with gradient, key encoder under ``no_grad`` with shuffle-BN, MixInfoNCE
  against the queue, enqueue), backward, optimizer step.

Both use the trainer's optimizer (``make_optimizer`` with the ``[optim]``
defaults), the trainer's float16 autocast and grad scaler on CUDA, and plain
float32 on the CPU. Samples/s counts samples (one pair of views is one SSL
sample). Each mode gets ``--warmup`` untimed steps, then ``--repeats`` timed
rounds of ``--steps`` steps, supervised and SSL alternating so that load from
other processes hits both alike; the median round is reported. On CUDA every
round is bracketed by ``torch.cuda.synchronize()``.

The issue's target is an SSL step costing at most 2.2x a supervised one
(one extra key-encoder forward, no more). The last line is
``ssl_over_supervised=<x>``: the **largest** (worst) ratio
``supervised samples/s / SSL samples/s`` over the backbones measured.

    python benchmarks/train_speed.py [--device auto|cpu|cuda] [--models NAME ...]
        [--input-shape 2 34 34] [--time-steps 8] [--batch-size 64] [--steps N] [--repeats N] [--warmup N]

The default input is ndigits' (2x34x34, T = 8) and the default batch is the
``[optim]`` batch size. Rounds default to 20 steps, 5 rounds and 10 warm-up
steps on CUDA (shorter rounds there were not repeatable) and to 5, 3 and 3 on
the CPU (where a step is slow enough).
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable

import torch
from spikingjelly.activation_based import functional

from neuromoco.data import DataConfig
from neuromoco.models import ModelConfig, build_model
from neuromoco.models.registry import list_models
from neuromoco.ssl.config import MoCoConfig
from neuromoco.ssl.moco import MoCo
from neuromoco.ssl.split_bn import convert_split_bn
from neuromoco.train.config import OptimConfig, TrainConfig
from neuromoco.train.trainer import make_optimizer, supervised_loss

NUM_CLASSES = 10
#: Fraction of pixels with events in a synthetic frame, and their count (ndigits frames are sparse counts).
EVENT_DENSITY = 0.05
EVENT_COUNT = 2.0


@dataclass(frozen=True)
class Setting:
    """What every measurement of one run shares."""

    device: torch.device
    input_shape: tuple[int, int, int]
    time_steps: int
    batch_size: int
    steps: int
    repeats: int
    warmup: int

    @property
    def amp(self) -> bool:
        """The trainer's rule: float16 autocast on CUDA (``[train] amp`` defaults to on)."""
        return self.device.type == "cuda" and TrainConfig().train.amp

    def autocast(self) -> AbstractContextManager[Any]:
        """The trainer's autocast."""
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()


def _frames(s: Setting, gen: torch.Generator) -> torch.Tensor:
    shape = (s.time_steps, s.batch_size, *s.input_shape)
    return ((torch.rand(shape, generator=gen) < EVENT_DENSITY).float() * EVENT_COUNT).to(s.device)


def _train_cfg(name: str, s: Setting) -> TrainConfig:
    return TrainConfig(model=ModelConfig(name=name), optim=OptimConfig(batch_size=s.batch_size))


def supervised_step(name: str, s: Setting) -> Callable[[], None]:
    """One supervised training step of the plain backbone, as a closure over its model and batch."""
    torch.manual_seed(0)
    cfg = _train_cfg(name, s)
    model = build_model(cfg.model, s.input_shape, NUM_CLASSES, time_steps=s.time_steps).to(s.device).train()
    optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=s.amp)
    gen = torch.Generator().manual_seed(0)
    x = _frames(s, gen)
    labels = torch.randint(0, NUM_CLASSES, (s.batch_size,), generator=gen).to(s.device)

    def step() -> None:
        try:
            with s.autocast():
                loss, _ = supervised_loss(model, model(x).float(), labels)
        finally:
            functional.reset_net(model)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def ssl_step(name: str, s: Setting) -> Callable[[], None]:
    """One NeuroMoCo pre-training step, built as the trainer builds it (split-BN, frozen classifier)."""
    torch.manual_seed(0)
    cfg = _train_cfg(name, s)
    if s.batch_size % cfg.moco.bn_splits:
        raise SystemExit(f"--batch-size {s.batch_size} must be a multiple of [moco] bn_splits={cfg.moco.bn_splits}")
    backbone = build_model(cfg.model, s.input_shape, NUM_CLASSES, time_steps=s.time_steps)
    backbone.classifier.requires_grad_(False)
    convert_split_bn(backbone, cfg.moco.bn_splits)
    moco = MoCo(backbone, cfg.moco, s.time_steps).to(s.device).train()
    optimizer = make_optimizer([p for p in moco.parameters() if p.requires_grad], cfg)
    scaler = torch.amp.GradScaler("cuda", enabled=s.amp)
    gen = torch.Generator().manual_seed(1)
    view_1, view_2 = _frames(s, gen), _frames(s, gen)

    def step() -> None:
        with s.autocast():
            loss = moco(view_1, view_2)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    return step


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _round(step: Callable[[], None], s: Setting) -> float:
    """Samples/s of ``s.steps`` consecutive steps."""
    _sync(s.device)
    start = time.perf_counter()
    for _ in range(s.steps):
        step()
    _sync(s.device)
    return s.steps * s.batch_size / (time.perf_counter() - start)


def measure(name: str, s: Setting) -> tuple[float, float]:
    """Median samples/s of the supervised and the SSL step of backbone ``name``."""
    steps = {"supervised": supervised_step(name, s), "ssl": ssl_step(name, s)}
    for step in steps.values():
        for _ in range(s.warmup):
            step()
    rates: dict[str, list[float]] = {mode: [] for mode in steps}
    for _ in range(s.repeats):
        for mode, step in steps.items():
            rates[mode].append(_round(step, s))
    del steps
    if s.device.type == "cuda":
        torch.cuda.empty_cache()
    return statistics.median(rates["supervised"]), statistics.median(rates["ssl"])


def main() -> None:
    data = DataConfig()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto: CUDA when present")
    parser.add_argument("--models", nargs="+", default=list_models(), choices=list_models())
    parser.add_argument("--input-shape", type=int, nargs=3, default=[2, 34, 34], metavar=("C", "H", "W"),
                        help="one frame (default: ndigits' 2 34 34)")
    parser.add_argument("--time-steps", type=int, default=data.n_time_bins, help="T (default: [data] n_time_bins)")
    parser.add_argument("--batch-size", type=int, default=OptimConfig().batch_size,
                        help="samples per step (default: [optim] batch_size)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default: CUDA 20, CPU 5)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds per mode, median reported (default: CUDA 5, CPU 3)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed steps per mode (default: CUDA 10, CPU 3)")
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    # On an H100 rounds of 5 steps (about 0.15-0.7 s) gave a worst ratio of 2.21 in one run and 1.54 in the
    # next: launch-bound steps of that length are at the mercy of the host. Longer rounds are cheap there.
    for name, (gpu, cpu) in {"steps": (20, 5), "repeats": (5, 3), "warmup": (10, 3)}.items():
        if getattr(args, name) is None:
            setattr(args, name, gpu if use_cuda else cpu)
    device = torch.device("cuda" if use_cuda else "cpu")
    s = Setting(device, tuple(args.input_shape), args.time_steps, args.batch_size, args.steps, args.repeats,
                args.warmup)
    m, mc = MoCoConfig(), ModelConfig()
    where = torch.cuda.get_device_name(device) if use_cuda else f"CPU, {torch.get_num_threads()} torch threads"
    print(f"device {device.type} ({where}), torch {torch.__version__}, "
          f"{'float16 autocast' if s.amp else 'float32'}; input {'x'.join(map(str, s.input_shape))}, "
          f"T={s.time_steps}, batch {s.batch_size}; {s.warmup} warm-up steps, median of {s.repeats} rounds "
          f"of {s.steps} steps; MoCo loss {m.loss}, queue {m.queue_size}, bn_splits {m.bn_splits}, "
          f"shuffle_bn {m.shuffle_bn}, symmetric {m.symmetric}; loihinet current_decay {mc.current_decay}, "
          f"hw_timing {mc.hw_timing}", flush=True)
    print("| backbone | device | supervised samples/s | SSL samples/s | SSL step / supervised step |")
    print("|---|---|---:|---:|---:|")
    worst = 0.0
    for name in args.models:
        sup, ssl = measure(name, s)
        ratio = sup / ssl
        worst = max(worst, ratio)
        print(f"| {name} | {device.type} | {sup:.1f} | {ssl:.1f} | {ratio:.2f} |", flush=True)
    print(f"ssl_over_supervised={worst:.2f}")


if __name__ == "__main__":
    main()
