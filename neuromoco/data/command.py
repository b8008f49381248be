"""``nmoco data NAME``: what a dataset holds, and a PNG grid of framed samples for a quick look."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hw_targets.errors import ConfigError, DataError
from neuromoco.cli_args import PLUGGED, check_writable

if TYPE_CHECKING:
    from numpy.typing import NDArray


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``data`` subcommand to the ``nmoco`` subparsers."""
    p = sub.add_parser("data", help=PLUGGED["data"].help)
    p.add_argument("name", help="ndigits, digits, nmnist, ncaltech101, dvs_cifar10 or dvs_gesture")
    p.add_argument("--data-root", default=None, help="folder holding a real dataset's files")
    p.add_argument("--show", type=int, default=None, metavar="N", help="draw N framed training samples (needs --out)")
    p.add_argument("--out", default=None, help="PNG file for --show")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="read only the first N samples of each split for the event statistics")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the dataset summary; with ``--show N --out FILE`` also write the grid.

    Raises:
        ConfigError: Bad flags (``--show`` without ``--out``, non-positive counts).
        DataError: Missing or unreadable data.
    """
    from neuromoco.data.config import DataConfig
    from neuromoco.data.registry import canonical_name, dataset_info, is_static

    if (args.show is None) != (args.out is None):
        raise ConfigError("--show N and --out FILE.png go together")
    if args.show is not None and args.show <= 0:
        raise ConfigError(f"--show {args.show}: must be a positive number of samples")
    if args.limit is not None and args.limit <= 0:
        raise ConfigError(f"--limit {args.limit}: must be a positive number of samples")
    if args.out is not None:
        check_writable(Path(args.out), "--out")
    cfg = DataConfig(name=canonical_name(args.name), data_root=args.data_root)
    info = dataset_info(cfg)
    width, height, channels = info.sensor_size
    print(f"dataset      {info.name}" + (f"  ({info.data_root})" if info.data_root else ""))
    print(f"samples      {info.train_size + info.test_size}  (train {info.train_size}, test {info.test_size})")
    print(f"classes      {info.num_classes}: {', '.join(info.class_names)}")
    print(f"sensor       {width}x{height} (W x H), {channels} channel(s)")
    print(f"model input  T={info.n_time_bins} x {'x'.join(str(s) for s in info.input_shape)} (C, H, W)")
    if info.skipped_files:
        print(f"skipped      {info.skipped_files} corrupt or truncated file(s) (named in the warnings)")
    if not is_static(info.name):
        counts = _event_counts(cfg, args.limit)
        note = f" (first {args.limit} per split)" if args.limit else ""
        if len(counts):
            print(f"events/sample mean {counts.mean():.0f}, min {counts.min()}, max {counts.max()}{note}")
    if args.show is not None:
        out = _draw(cfg, info, args.show, Path(args.out))
        print(f"wrote {out}")
    return 0


def _event_counts(cfg: Any, limit: int | None) -> NDArray[Any]:
    import numpy as np

    from neuromoco.data.registry import event_source

    counts: list[int] = []
    for split in ("train", "test"):
        source = event_source(cfg, split)
        n = len(source) if limit is None else min(limit, len(source))
        counts.extend(len(source.events(i)) for i in range(n))
    return np.array(counts, dtype=np.int64)


def _draw(cfg: Any, info: Any, count: int, out: Path) -> Path:
    """Training samples spread over the split: one row per sample, one column per time bin
    (ON events red, OFF blue); ``digits`` images in a square grid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from neuromoco.data.registry import build_dataset, is_static

    if not out.parent.is_dir():
        raise DataError(f"{out}: folder {out.parent} does not exist")
    dataset: Any = build_dataset(cfg, "train")  # a map-style torch Dataset: len() and [i]
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(count, len(dataset))).round().astype(int))
    if is_static(info.name):
        cols = int(np.ceil(np.sqrt(len(picks))))
        rows = int(np.ceil(len(picks) / cols))
    else:
        rows, cols = len(picks), info.n_time_bins
    fig, axes = plt.subplots(rows, cols, figsize=(0.9 * cols + 0.6, 0.9 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_frame_on(False)
    for n, index in enumerate(picks):
        sample, label = dataset[int(index)]
        name = info.class_names[label][:12]
        if is_static(info.name):  # (C, H, W) image, C = 1 or 3
            ax = axes.flat[n]
            ax.imshow(sample.permute(1, 2, 0).squeeze(2).numpy(), cmap="gray", vmin=0.0, vmax=1.0)
            ax.set_title(name, fontsize=7)
            continue
        frames = sample.numpy()  # (T, P, H, W), P = [OFF, ON]
        scale = max(float(frames.max()), 1.0)
        for step in range(frames.shape[0]):
            rgb = np.zeros((*frames.shape[2:], 3), dtype=np.float32)
            rgb[..., 0] = frames[step, -1] / scale
            rgb[..., 2] = frames[step, 0] / scale
            axes[n, step].imshow(np.clip(rgb * 1.5, 0.0, 1.0), interpolation="nearest")
            if n == 0:
                axes[n, step].set_title(f"t{step}", fontsize=7)
        axes[n, 0].set_ylabel(name, fontsize=7)
    kind = "images" if is_static(info.name) else "rows: samples, columns: time bins; ON red, OFF blue"
    fig.suptitle(f"{info.name}: {len(picks)} training samples ({kind})", fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
