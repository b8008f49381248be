"""``report.md`` and PNG plots of a validation: what a person reads before trusting a deployment."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np

from sims.validate import ValidationReport


def _esc(text: object) -> str:
    """Names from files and datasets are untrusted: escape them for markdown/HTML."""
    return html.escape(str(text)).replace("|", "&#124;")


def write_plots(report: ValidationReport, folder: Path) -> list[Path]:
    """Per-layer rates, a spike raster, the confusion matrix and the energy breakdown, as PNGs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths: list[Path] = []
    if report.layers:
        fig, ax = plt.subplots(figsize=(7, 3.5))
        names = [c.name for c in report.layers]
        x = np.arange(len(names))
        ax.bar(x - 0.2, [c.float_rate for c in report.layers], 0.4, label="float model")
        ax.bar(x + 0.2, [c.fixed_rate for c in report.layers], 0.4, label="fixed point (native = Lava)")
        ax.set_xticks(x, [_plain(n) for n in names], rotation=30, ha="right")
        # The whole run's spikes over the T input frames: a deep network's layers fire in its L extra steps
        # too (T + L in all), so a rate can pass 1.
        ax.set_ylabel("spikes per neuron per input frame")
        ax.set_title("Firing rate per layer (spikes of the whole run / T)")
        ax.legend()
        fig.tight_layout()
        paths.append(folder / "firing_rates.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    if report.raster:
        layers = [(n, s) for n, s in zip(report.raster_names, report.raster) if not n.startswith("flatten")]
        fig, axes = plt.subplots(len(layers), 1, figsize=(7, 1.4 * len(layers) + 0.6), sharex=True)
        axes = np.atleast_1d(axes)
        for ax, (name, spikes) in zip(axes, layers):
            flat = spikes.reshape(spikes.shape[0], -1)  # (steps, neurons)
            t, j = np.nonzero(flat)
            ax.scatter(t, j, s=1.5, marker="|", color="black")
            ax.set_ylabel(_plain(name), rotation=0, ha="right", va="center", fontsize=8)
            ax.set_ylim(-1, flat.shape[1])
            ax.set_yticks([])
        axes[-1].set_xlabel("step")
        fig.suptitle("Spike raster of test sample 0 (native simulator)")
        fig.tight_layout()
        paths.append(folder / "raster.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(report.confusion, cmap="Blues")
    k = len(report.class_names)
    ax.set_xticks(range(k), [_plain(c) for c in report.class_names], rotation=90, fontsize=7)
    ax.set_yticks(range(k), [_plain(c) for c in report.class_names], fontsize=7)
    ax.set_xlabel("predicted (fixed point)")
    ax.set_ylabel("true")
    peak = int(report.confusion.max())
    for row in range(k):
        for col in range(k):
            count = int(report.confusion[row, col])
            if count:
                ax.text(col, row, str(count), ha="center", va="center", fontsize=6,
                        color="white" if count > peak / 2 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046)
    ax.set_title("Confusion matrix (deployed network)")
    fig.tight_layout()
    paths.append(folder / "confusion.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    if report.energy:
        fig, axes = plt.subplots(1, len(report.energy), figsize=(4 * len(report.energy), 3.4))
        axes = np.atleast_1d(axes)
        for ax, (table, energy) in zip(axes, report.energy.items()):
            names = [layer.name for layer in energy.layers]
            ax.bar(range(len(names)), [layer.total_uj for layer in energy.layers], color="tab:orange")
            ax.set_xticks(range(len(names)), [_plain(n) for n in names], rotation=30, ha="right", fontsize=8)
            ax.set_ylabel("µJ per inference")
            ax.set_title(f"Energy per layer ({table})")
        fig.tight_layout()
        paths.append(folder / "energy.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def _plain(text: object) -> str:
    """Matplotlib interprets $...$; names are shown literally."""
    return str(text).replace("$", r"\$")


def write_markdown(report: ValidationReport, folder: Path, plots: list[Path], title: str) -> Path:
    """``report.md`` with the summary, per-layer table, energy and the plots."""
    lines = [f"# Validation: {_esc(title)}", ""]
    lines += ["| | top-1 |", "|---|---|"]
    for key, acc in report.accuracy.items():
        count = report.lava_samples if key == "lava" else report.samples
        lines.append(f"| {key} ({count} samples) | {100 * acc:.2f} % |")
    lines += [
        "",
        f"- top-1 agreement float vs fixed point: {100 * report.agreement_float_fixed:.2f} %",
        f"- QAT model (hardware timing) == native simulator, every layer and step: {report.qat_equals_native}",
        f"- native == Lava on {report.lava_samples} sample(s), every layer and step: {report.lava_equals_native}"
        + (f" — first difference: {_esc(report.first_lava_difference)}" if report.first_lava_difference else ""),
        f"- {report.time_steps} input steps + {report.latency} steps of synaptic latency",
    ]
    worst = report.most_divergent
    if worst is not None:
        lines.append(f"- layer where float and fixed diverge most: `{_esc(worst.name)}` "
                     f"(mean |rate difference| {worst.mean_abs_rate_diff:.4f})")
    if report.layers:
        lines += ["", "Rates are a neuron's spikes over the whole run divided by the T input frames.", "",
                  "| layer | float rate | fixed rate | correlation of spike counts | mean abs rate diff |",
                  "|---|---|---|---|---|"]
        for c in report.layers:
            lines.append(f"| {_esc(c.name)} | {c.float_rate:.4f} | {c.fixed_rate:.4f} | {c.correlation:.3f} | "
                         f"{c.mean_abs_rate_diff:.4f} |")
    for table, energy in report.energy.items():
        lines += ["", f"## Energy per inference ({table})", "", "```", energy.format_table(), "```"]
    lines += ["", "## Timings", ""] + [f"- {k}: {v:.2f} s" for k, v in report.timings_s.items()]
    lines += [""] + [f"![{p.stem}]({p.name})" for p in plots]
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def summary_rows(report: ValidationReport) -> list[tuple[str, Any]]:
    """(label, value) pairs for a one-screen summary."""
    rows: list[tuple[str, Any]] = [(f"top-1 {k}", f"{100 * v:.2f} %") for k, v in report.accuracy.items()]
    rows.append(("agreement float/fixed", f"{100 * report.agreement_float_fixed:.2f} %"))
    rows.append(("QAT == native", report.qat_equals_native))
    rows.append((f"native == Lava ({report.lava_samples} samples)", report.lava_equals_native))
    for table, energy in report.energy.items():
        rows.append((f"energy/inference {table}", f"{energy.total_uj:.3f} µJ"))
        if energy.ann_uj is not None:
            rows.append((f"equivalent ANN ({table})", f"{energy.ann_uj:.3f} µJ"))
    graded = [e for e in report.energy.values() if e.family == "SDNN"][:1]
    for energy in graded:  # the counts are the table's own: once is enough
        rows.append(("activation sparsity (NeuroBench)", f"{energy.activation_sparsity:.4f}"))
        rows.append(("graded messages / inference", f"{sum(l.spikes for l in energy.layers):,.1f}"))
    return rows
