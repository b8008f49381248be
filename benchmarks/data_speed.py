"""How fast the data path delivers SSL batches, against the training step it feeds.

Measures on ``ndigits`` (T=8, 34x34), with the default worker count:

- ``cold``: one epoch of events -> frames (tonic) -> two augmented views, framing
  inside the DataLoader workers (what every real dataset does in its first epoch);
- ``warm``: the next epochs, which read framed tensors from the cache;
- ``packed``: ``build_dataset``'s own ``ndigits`` path (frames packed once, memory-mapped);
- ``train``: forward + backward + SGD step of the small deployable model
  (``loihinet_s``) on the same CPU, batch 64, float32.

The target: the data path delivers at least 5x the samples per second the
training step consumes. A *frame* below is one ``(2, H, W)`` time bin of one
sample (a sample is ``T`` frames, delivered as two views); the last line is
``frames_per_s=<cold rate>``, the slowest path (loading + framing + two views).

Run: ``.venv/bin/python benchmarks/data_speed.py [--epochs 3] [--batch 64]``.
Uses a fresh temporary cache unless ``NMOCO_CACHE`` is set.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_RATIO = 5.0


def _loader_rate(dataset, batch: int, epochs: int, workers: int) -> list[float]:  # type: ignore[no-untyped-def]
    from neuromoco.data import make_loader

    loader = make_loader(dataset, batch, shuffle=True, seed=0, num_workers=workers, drop_last=True)
    rates = []
    for epoch in range(epochs):
        dataset.set_epoch(epoch)
        start, count = time.perf_counter(), 0
        for (view1, _), labels in loader:
            count += len(labels)
        rates.append(count / (time.perf_counter() - start))
    return rates


def _train_rate(batch: int, steps: int, shape: tuple[int, int, int, int], classes: int) -> float | None:
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

    step()  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="loader epochs per measurement")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=20)
    args = parser.parse_args()
    if "NMOCO_CACHE" not in os.environ:
        os.environ["NMOCO_CACHE"] = tempfile.mkdtemp(prefix="nmoco_bench_")

    import torch

    from neuromoco.data import AugmentConfig, DataConfig, TwoViewDataset, build_dataset, dataset_info, make_augment
    from neuromoco.data import ndigits
    from neuromoco.data.cache import cache_dir
    from neuromoco.data.framing import FramedDataset
    from neuromoco.data.registry import event_source, frame_spec

    cfg = DataConfig()
    workers = cfg.resolved_num_workers
    info = dataset_info(cfg)
    print(f"cpu cores {os.cpu_count()}, torch threads {torch.get_num_threads()}, workers {workers}, "
          f"batch {args.batch}, T={cfg.n_time_bins}, input {info.input_shape}")

    start = time.perf_counter()
    ndigits.load(cfg.seed)
    print(f"ndigits events ready (generated or cached): {time.perf_counter() - start:.1f} s")

    augment = make_augment(AugmentConfig(), info)
    source = event_source(cfg, "train")
    lazy = FramedDataset(source, frame_spec(cfg, source.sensor_size), cfg.frame_mode,
                         cache_dir("frames", "bench", str(time.time_ns())))
    rates = _loader_rate(TwoViewDataset(lazy, augment, seed=0), args.batch, args.epochs, workers)
    cold, warm = rates[0], max(rates[1:]) if len(rates) > 1 else rates[0]
    start = time.perf_counter()
    packed = build_dataset(cfg, "train")
    pack_s = time.perf_counter() - start
    packed_rate = max(_loader_rate(TwoViewDataset(packed, augment, seed=0), args.batch, args.epochs, workers))
    steps = cfg.n_time_bins
    print(f"cold   (events -> frames -> 2 views, in workers): {cold:8.0f} samples/s = {cold * steps:9.0f} frames/s")
    print(f"warm   (cached frames -> 2 views):               {warm:8.0f} samples/s = {warm * steps:9.0f} frames/s")
    print(f"packed (build_dataset ndigits, framed in {pack_s:.1f} s): {packed_rate:8.0f} samples/s")

    train = _train_rate(args.batch, args.train_steps, (steps, *info.input_shape), info.num_classes)
    if train is not None:
        print(f"train  (loihinet_s fwd+bwd+step, same CPU):      {train:8.0f} samples/s")
        ratio = cold / train
        verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
        print(f"data/train ratio {ratio:.1f}x (cold), {warm / train:.1f}x (warm): {verdict} the {TARGET_RATIO:.0f}x target")
    print(f"frames_per_s={cold * steps:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
