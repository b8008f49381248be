"""How fast the data path delivers SSL batches, against the training step it feeds.

On ``ndigits`` (T=8, 34x34) with the default worker count, in interleaved rounds
(the CPU is shared, so each figure is the median over rounds):

- ``cold``: one epoch through a fresh frame cache: events -> frames (tonic) ->
  two augmented views, framing inside the DataLoader workers (as every dataset's
  first epoch does; ``ndigits`` itself frames at build time);
- ``warm``: the next epoch: cached frames -> two augmented views;
- ``train``: forward + backward + SGD step of the small deployable model
  (``loihinet_s``), batch 64, float32, same CPU.

Target: the data path delivers at least 5x the samples per second the training
step consumes. A *frame* is one ``(2, H, W)`` time bin of one sample (a sample is
``T`` frames, delivered as two views). The last line is
``frames_per_s=<cold>``: loading + framing + two-view augmentation.

Run: ``.venv/bin/python benchmarks/data_speed.py [--rounds 3] [--batch 64]``.
Uses a fresh temporary cache (removed at the end) unless ``NMOCO_CACHE`` is set.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 5.0


def _loader_epochs(dataset, batch: int, workers: int) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Samples/s of the first and the second epoch of a new loader."""
    from neuromoco.data import make_loader

    loader = make_loader(dataset, batch, shuffle=True, seed=0, num_workers=workers, drop_last=True)
    rates = []
    for epoch in range(2):
        dataset.set_epoch(epoch)
        start, count = time.perf_counter(), 0
        for _, labels in loader:
            count += len(labels)
        rates.append(count / (time.perf_counter() - start))
    return rates[0], rates[1]


def _trainer(batch: int, shape: tuple[int, int, int, int], classes: int):  # type: ignore[no-untyped-def]
    """A function timing ``steps`` training steps of ``loihinet_s`` (samples/s), or None."""
    import torch

    try:
        from neuromoco.models import ModelConfig, build_model
    except ImportError as exc:  # the models package is developed alongside
        print(f"train: skipped, neuromoco.models unavailable ({exc})")
        return None
    try:
        from spikingjelly.activation_based import functional

        reset = functional.reset_net
    except ImportError:
        reset = None
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="loihinet_s"), shape[1:], classes)
    optimiser = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = (torch.rand(shape[0], batch, *shape[1:]) < 0.05).float()  # (T, B, 2, H, W)
    y = torch.randint(0, classes, (batch,))

    def step() -> None:
        optimiser.zero_grad()
        logits = model(x).sum(0)  # (B, classes): spike counts
        torch.nn.functional.cross_entropy(logits, y).backward()
        optimiser.step()
        if reset is not None:
            reset(model)

    def rate(steps: int) -> float:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        return steps * batch / (time.perf_counter() - start)

    step()  # warm-up
    return rate


def main() -> int:
    """Parse the flags and run in a temporary cache unless NMOCO_CACHE is set."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()
    if "NMOCO_CACHE" in os.environ:
        return run(args)
    with tempfile.TemporaryDirectory(prefix="nmoco_bench_") as cache:
        os.environ["NMOCO_CACHE"] = cache
        return run(args)


def run(args: argparse.Namespace) -> int:
    """Measure and print; the cache folder is ``$NMOCO_CACHE``."""
    import torch

    from neuromoco.data import AugmentConfig, DataConfig, TwoViewDataset, build_dataset, dataset_info, make_augment
    from neuromoco.data import ndigits
    from neuromoco.data.cache import cache_dir
    from neuromoco.data.framing import FramedDataset
    from neuromoco.data.registry import event_source, frame_spec

    cfg = DataConfig()
    workers = cfg.resolved_num_workers
    info = dataset_info(cfg)
    steps = cfg.n_time_bins
    print(f"cpu cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, workers {workers}, "
          f"batch {args.batch}, T={steps}, input {info.input_shape}, rounds {args.rounds}")
    start = time.perf_counter()
    ndigits.load(cfg.seed)
    print(f"ndigits events ready (generated or cached): {time.perf_counter() - start:.1f} s")
    start = time.perf_counter()
    build_dataset(cfg, "train")
    print(f"ndigits train split framed at build: {time.perf_counter() - start:.1f} s")

    augment = make_augment(AugmentConfig(), info)
    source = event_source(cfg, "train")
    spec = frame_spec(cfg, source.sensor_size)
    train_rate = _trainer(args.batch, (steps, *info.input_shape), info.num_classes)
    cold, warm, train = [], [], []
    for round_ in range(args.rounds):
        fresh = FramedDataset(source, spec, cfg.frame_mode, cache_dir("frames", "bench", f"{time.time_ns()}"))
        first, second = _loader_epochs(TwoViewDataset(fresh, augment, seed=round_), args.batch, workers)
        cold.append(first)
        warm.append(second)
        if train_rate is not None:
            train.append(train_rate(args.train_steps))
    c, w = statistics.median(cold), statistics.median(warm)
    print(f"cold  (events -> frames -> 2 views, in workers): {c:7.0f} samples/s = {c * steps:7.0f} frames/s")
    print(f"warm  (cached frames -> 2 views):               {w:7.0f} samples/s = {w * steps:7.0f} frames/s")
    if train:
        t = statistics.median(train)
        print(f"train (loihinet_s fwd+bwd+step, same CPU):      {t:7.0f} samples/s")
        verdict = "meets" if c / t >= TARGET_RATIO else "MISSES"
        print(f"data/train: {c / t:.1f}x cold, {w / t:.1f}x warm; {verdict} the {TARGET_RATIO:.0f}x target")
    print(f"frames_per_s={c * steps:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
