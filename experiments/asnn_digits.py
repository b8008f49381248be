"""ASNN on ``digits``: direct vs latency vs hybrid coding, LIF vs adaptive neurons, T in {2, 4, 6}.

Every cell fine-tunes ``loihinet_s`` from scratch on the static ``digits``
images (resized to 16x16) for a small, fixed budget and reports the test
top-1 of the last epoch, mean ± sample std over the seeds. The budget is
sized so the whole default grid (3 x 3 x 2 x 3 = 54 runs) finishes in about
25 minutes on 2 CPU cores; it compares codes and neurons at equal cost, it
does not train any of them to convergence.

Run from the repository root::

    .venv/bin/python experiments/asnn_digits.py

Each finished run is appended to ``experiments/results/asnn_digits.csv``;
a rerun skips the runs already there (``--fresh`` starts over). The table
goes to ``experiments/results/asnn_digits.md``.
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"
ENCODINGS = ("direct", "latency", "hybrid")
NEURONS = ("lif", "adaptive")
FIELDS = ("steps", "encoding", "neuron", "seed", "test_top1", "train_top1", "train_time_s")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, nargs="+", default=[2, 4, 6], help="time steps T")
    p.add_argument("--encodings", nargs="+", default=list(ENCODINGS), choices=ENCODINGS)
    p.add_argument("--neurons", nargs="+", default=list(NEURONS), choices=NEURONS)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="loihinet_s")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--size", type=int, default=16, help="images are resized to size x size")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--out", type=Path, default=RESULTS / "asnn_digits.md")
    p.add_argument("--fresh", action="store_true", help="ignore runs already in the CSV")
    return p.parse_args(argv)


def run_one(args: argparse.Namespace, steps: int, encoding: str, neuron: str, seed: int) -> dict[str, Any]:
    """Fine-tune one model; returns a CSV row."""
    from neuromoco.train.config import config_from_dict
    from neuromoco.train.trainer import run_training

    with tempfile.TemporaryDirectory(prefix="asnn-") as out:
        cfg = config_from_dict({
            "data": {"name": "digits", "n_time_bins": steps, "size": [args.size, args.size], "num_workers": 0},
            "model": {"name": args.model, "neuron": neuron, "encoding": encoding},
            "optim": {"batch_size": args.batch_size, "lr": args.lr, "warmup_epochs": 0.5},
            "train": {"stage": "finetune", "epochs": args.epochs, "seed": seed, "out": out, "augment": False,
                      "eval_every": 0, "tensorboard": False, "progress": False},
        })
        summary = run_training(cfg)
    final = summary["final"]
    return {"steps": steps, "encoding": encoding, "neuron": neuron, "seed": seed,
            "test_top1": final["test_top1"], "train_top1": final["train_top1"], "train_time_s": summary["train_time_s"]}


def read_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{**row, "steps": int(row["steps"]), "seed": int(row["seed"]), "test_top1": float(row["test_top1"])}
                for row in csv.DictReader(handle)]


def table(rows: list[dict[str, Any]], args: argparse.Namespace, command: str) -> str:
    """The markdown table: one row per (encoding, neuron), one column per T; test top-1 in %."""
    lines = [
        f"Test top-1 (%) on `digits` ({args.size}x{args.size}), `{args.model}` fine-tuned from scratch for "
        f"{args.epochs} epochs (batch {args.batch_size}, AdamW lr {args.lr:g}, no augmentation); "
        f"mean ± sample std over seeds {', '.join(map(str, args.seeds))}.",
        "",
        "| encoding | neuron | " + " | ".join(f"T = {t}" for t in args.steps) + " |",
        "|---|---|" + "---:|" * len(args.steps),
    ]
    for encoding in args.encodings:
        for neuron in args.neurons:
            cells = []
            for steps in args.steps:
                acc = [100 * r["test_top1"] for r in rows
                       if (r["steps"], r["encoding"], r["neuron"]) == (steps, encoding, neuron) and r["seed"] in args.seeds]
                if not acc:
                    cells.append("–")
                elif len(acc) == 1:
                    cells.append(f"{acc[0]:.1f} (n=1)")
                else:
                    cells.append(f"{np.mean(acc):.1f} ± {np.std(acc, ddof=1):.1f}" + ("" if len(acc) == len(args.seeds)
                                                                                      else f" (n={len(acc)})"))
            lines.append(f"| {encoding} | {neuron} | " + " | ".join(cells) + " |")
    lines += ["", f"Command: `{command}`", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = " ".join([".venv/bin/python", "experiments/asnn_digits.py", *(argv if argv is not None else sys.argv[1:])])
    csv_path = args.out.with_suffix(".csv")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = [] if args.fresh else read_rows(csv_path)
    if args.fresh and csv_path.exists():
        csv_path.unlink()
    done = {(r["steps"], r["encoding"], r["neuron"], r["seed"]) for r in rows}
    grid = [(t, e, n, s) for t in args.steps for e in args.encodings for n in args.neurons for s in args.seeds]
    todo = [key for key in grid if key not in done]
    print(f"{len(grid)} runs, {len(grid) - len(todo)} already in {csv_path}", flush=True)
    start = time.perf_counter()
    for i, (steps, encoding, neuron, seed) in enumerate(todo, 1):
        row = run_one(args, steps, encoding, neuron, seed)
        new_file = not csv_path.exists()
        with csv_path.open("a", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=FIELDS)
            if new_file:
                writer.writeheader()
            writer.writerow(row)
        rows.append(row)
        elapsed = time.perf_counter() - start
        print(f"[{i}/{len(todo)}] T={steps} {encoding} {neuron} seed {seed}: test top-1 {100 * row['test_top1']:.1f} % "
              f"({elapsed:.0f} s elapsed)", flush=True)
    text = table(rows, args, command)
    args.out.write_text(text)
    print(text)
    print(f"wrote {args.out} and {csv_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
