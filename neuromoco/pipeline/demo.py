"""``run_demo``: the whole chain on the built-in data, as ``nmoco demo`` runs it.

Pre-train, fine-tune, QAT, export (netx, ONNX, NIR), validate (float, QAT,
native, Lava), energy, and one summary table.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from neuromoco.cli_args import check_writable

if TYPE_CHECKING:
    from neuromoco.pipeline.deploy import ExportResult
    from sims.validate import ValidationReport

#: The training stages of the demo, in order; each starts from the one before.
STAGES = ("pretrain", "finetune", "qat")

#: The recipes in configs/ (one per stage) that the demo follows, overriding only what DemoConfig sets.
RECIPES = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class DemoConfig:
    """What ``nmoco demo`` runs: every training default comes from the training dataclasses;
    only the stage lengths and the deployment settings of the demo live here."""

    data: str = "ndigits"
    model: str = "loihinet_s"
    frame_mode: str = "binary"  # Loihi receives binary spikes: train on what the chip will see
    pretrain_epochs: int = 5
    finetune_epochs: int = 6
    qat_epochs: int = 3
    lava_samples: int = 3
    target: str = "loihi2"
    seed: int = 0

    def quick(self) -> DemoConfig:
        """One epoch per stage and one Lava sample: a smoke run of the whole chain."""
        return dataclasses.replace(self, pretrain_epochs=1, finetune_epochs=1, qat_epochs=1, lava_samples=1)

    def epochs(self, stage: str) -> int:
        """Epochs of one of :data:`STAGES`."""
        return {"pretrain": self.pretrain_epochs, "finetune": self.finetune_epochs, "qat": self.qat_epochs}[stage]


def run_demo(out: Path, demo: DemoConfig | None = None) -> int:
    """Run the chain into ``out``: ``pretrain/``, ``finetune/``, ``qat/`` runs, ``export/`` files, ``report.md``.

    Args:
        out: Output folder; created if missing. Earlier stage runs in it are replaced.
        demo: What to run (default: :class:`DemoConfig`).

    Returns:
        0 when QAT equals native and native equals Lava on every layer and step, else 1.

    Raises:
        ConfigError: ``out`` is a file or cannot be written, or a bad recipe.
    """
    from sims.report import write_markdown, write_plots
    from sims.validate import validate

    demo = demo or DemoConfig()
    _prepare_out(out)
    clock = time.perf_counter()
    summaries = {}
    init: Path | None = None
    for i, stage in enumerate(STAGES, start=1):
        print(f"[{i}/6] {stage}: {demo.model} on {demo.data}, {demo.epochs(stage)} epoch(s)", flush=True)
        summaries[stage] = demo_stage(demo, out, stage, init)
        init = out / stage

    print("[4/6] export for loihi2: netx, ONNX, NIR", flush=True)
    export_dir = out / "export"
    export_dir.mkdir(exist_ok=True)
    exported = _export(demo, out / "qat", export_dir)

    print(f"[5/6] validate: float, QAT, native on the whole test split, Lava on {demo.lava_samples}", flush=True)
    report = validate(out / "qat", lava_samples=demo.lava_samples, out_dir=export_dir / "validate")
    plots = write_plots(report, out)
    write_markdown(report, out, plots, f"nmoco demo ({demo.model} on {demo.data})")

    print("[6/6] summary", flush=True)
    rows = summary_rows(summaries["pretrain"], report, exported)
    rows.append(("wall time", f"{time.perf_counter() - clock:.0f} s"))
    width = max(len(r[0]) for r in rows) + 2
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("-" * (width + 40))
    print(f"report: {out / 'report.md'}; runs: {out}/pretrain, finetune, qat; exports: {export_dir}")
    return 0 if report.lava_equals_native is not False and report.qat_equals_native else 1


def _prepare_out(out: Path) -> None:
    """Create ``out`` (or refuse it) and clear the stage runs of an earlier demo in it.

    Raises:
        ConfigError: ``out`` is a file, cannot be created or takes no new files.
    """
    from hw_targets.errors import ConfigError

    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is a file, not a folder")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror or exc})") from None
    check_writable(out / "report.md", "--out")
    for stage in STAGES:
        if (out / stage).exists():
            shutil.rmtree(out / stage)  # a demo run starts fresh; --out elsewhere keeps earlier runs


def demo_stage(demo: DemoConfig, out: Path, stage: str, init: Path | None) -> dict[str, Any]:
    """Train one stage into ``out/<stage>``: the recipe ``configs/<data>_<model>_<stage>.toml`` under the demo's settings.

    Returns:
        The training summary (:func:`neuromoco.train.trainer.run_training`).

    Raises:
        ConfigError: A bad recipe.
    """
    from neuromoco.train.config import load_config
    from neuromoco.train.trainer import run_training

    recipe = RECIPES / f"{demo.data}_{demo.model}_{stage}.toml"
    settings: dict[str, dict[str, Any]] = {
        "data": {"name": demo.data, "frame_mode": demo.frame_mode},
        "model": {"name": demo.model},
        "train": {"stage": stage, "epochs": demo.epochs(stage), "out": str(out / stage), "init": str(init or ""),
                  "seed": demo.seed, "tensorboard": False},
    }
    cfg = load_config(recipe if recipe.is_file() else None, sections=settings)
    summary: dict[str, Any] = run_training(cfg)
    return summary


def _export(demo: DemoConfig, run: Path, export_dir: Path) -> ExportResult:
    from neuromoco.pipeline.deploy import ExportOutputs, export_run

    outputs = ExportOutputs(netx=export_dir / "model.net", onnx=export_dir / "model.onnx",
                            nir=export_dir / "model.nir")
    return export_run(run, demo.target, outputs)


def summary_rows(pretrain: dict[str, Any], report: ValidationReport, exported: ExportResult) -> list[tuple[str, str]]:
    """The demo's summary table (wall time aside): pre-training, top-1 of each stage, agreement, energy, cores."""
    acc = report.accuracy
    rows = [
        ("pre-training (MixInfoNCE)", f"{pretrain['train_time_s']:.0f} s, final loss "
                                      f"{pretrain['final'].get('loss', float('nan')):.3f}"),
        ("top-1 float (fine-tuned)", f"{100 * acc.get('float', float('nan')):.2f} %"),
        ("top-1 QAT", f"{100 * acc['qat']:.2f} %"),
        ("top-1 native (exported netx)", f"{100 * acc['native']:.2f} %  ({report.samples} test samples)"),
        (f"top-1 Lava ({report.lava_samples} samples)", f"{100 * acc.get('lava', float('nan')):.2f} %"),
        ("agreement float / fixed", f"{100 * report.agreement_float_fixed:.2f} %"),
        ("QAT == native (every layer, step)", str(report.qat_equals_native)),
        ("native == Lava (every layer, step)", str(report.lava_equals_native)),
    ]
    for table, energy in report.energy.items():
        rows.append((f"energy / inference ({table})", f"{energy.total_uj:.3f} uJ"))
        if energy.ann_uj is not None:
            rows.append((f"  equivalent ANN ({table})", f"{energy.ann_uj:.3f} uJ"))
    resources = exported.resources
    rows.append(("Loihi 2 resources", f"{resources.cores} cores on {resources.chips} chip(s)"))
    return rows
