"""``run_demo``: the whole chain on the built-in data, as ``nmoco demo`` runs it.

Pre-train, fine-tune, QAT, export (netx, ONNX, NIR), validate (float, QAT,
native, Lava), energy, and one summary table. With a sigma-delta model
(``nmoco demo --model loihinet_sdnn_s``) the chain trains from scratch on graded
frames (event counts) instead of pre-training, and exports the netx file only.
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
#: The stages of a sigma-delta demo: supervised training from scratch, then QAT.
SDNN_STAGES = ("finetune", "qat")

#: The recipes in configs/ (one per stage) that the demo follows, overriding only what DemoConfig sets.
RECIPES = Path(__file__).resolve().parents[2] / "configs"


@dataclass(frozen=True)
class DemoConfig:
    """What ``nmoco demo`` runs: every training default comes from the training dataclasses;
    only the stage lengths and the deployment settings of the demo live here."""

    data: str = "ndigits"
    model: str = "loihinet_s"
    # Loihi receives what the chip will see: binary spikes (CUBA-LIF), or graded event counts into a
    # sigma-delta network's Delta input layer.
    frame_mode: str = "binary"
    sdnn_frame_mode: str = "count"
    pretrain_epochs: int = 5
    finetune_epochs: int = 6
    qat_epochs: int = 3
    lava_samples: int = 3
    target: str = "loihi2"
    seed: int = 0

    @property
    def sigma_delta(self) -> bool:
        """Whether the model is a sigma-delta (``loihinet_sdnn``) network."""
        from neuromoco.models.loihinet_sdnn import SDNN_SPECS

        return self.model in SDNN_SPECS

    @property
    def stages(self) -> tuple[str, ...]:
        """The training stages this demo runs: :data:`SDNN_STAGES` for a sigma-delta model, else :data:`STAGES`."""
        return SDNN_STAGES if self.sigma_delta else STAGES

    @property
    def frames(self) -> str:
        """The ``[data] frame_mode`` the model trains on."""
        return self.sdnn_frame_mode if self.sigma_delta else self.frame_mode

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
    total = len(demo.stages) + 3
    for i, stage in enumerate(demo.stages, start=1):
        print(f"[{i}/{total}] {stage}: {demo.model} on {demo.data}, {demo.epochs(stage)} epoch(s)", flush=True)
        summaries[stage] = demo_stage(demo, out, stage, init)
        init = out / stage

    step = len(demo.stages) + 1
    files = "netx" if demo.sigma_delta else "netx, ONNX, NIR"
    print(f"[{step}/{total}] export for {demo.target}: {files}", flush=True)
    export_dir = out / "export"
    export_dir.mkdir(exist_ok=True)
    exported = _export(demo, out / "qat", export_dir)

    print(f"[{step + 1}/{total}] validate: float, QAT, native on the whole test split, Lava on {demo.lava_samples}",
          flush=True)
    report = validate(out / "qat", lava_samples=demo.lava_samples, out_dir=export_dir / "validate")
    plots = write_plots(report, out)
    write_markdown(report, out, plots, f"nmoco demo ({demo.model} on {demo.data})")

    print(f"[{total}/{total}] summary", flush=True)
    rows = summary_rows(summaries.get("pretrain"), report, exported, summaries.get("finetune"))
    rows.append(("wall time", f"{time.perf_counter() - clock:.0f} s"))
    width = max(len(r[0]) for r in rows) + 2
    print("-" * (width + 40))
    for label, value in rows:
        print(f"{label:<{width}}{value}")
    print("-" * (width + 40))
    print(f"report: {out / 'report.md'}; runs: {', '.join(f'{out}/{s}' for s in demo.stages)}; exports: {export_dir}")
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
    for stage in STAGES:  # every stage any demo writes (SDNN_STAGES is a subset)
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
        "data": {"name": demo.data, "frame_mode": demo.frames},
        "model": {"name": demo.model},
        "train": {"stage": stage, "epochs": demo.epochs(stage), "out": str(out / stage), "init": str(init or ""),
                  "seed": demo.seed, "tensorboard": False},
    }
    cfg = load_config(recipe if recipe.is_file() else None, sections=settings)
    summary: dict[str, Any] = run_training(cfg)
    return summary


def _export(demo: DemoConfig, run: Path, export_dir: Path) -> ExportResult:
    from neuromoco.pipeline.deploy import ExportOutputs, export_run

    if demo.sigma_delta:  # the ONNX and NIR writers know CUBA-LIF networks only
        outputs = ExportOutputs(netx=export_dir / "model.net")
    else:
        outputs = ExportOutputs(netx=export_dir / "model.net", onnx=export_dir / "model.onnx",
                                nir=export_dir / "model.nir")
    return export_run(run, demo.target, outputs)


def summary_rows(pretrain: dict[str, Any] | None, report: ValidationReport, exported: ExportResult,
                 finetune: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """The demo's summary table (wall time aside): pre-training (or the float training of a demo
    without it), top-1 of each stage, agreement, energy, cores."""
    acc = report.accuracy
    rows = []
    if pretrain is not None:
        rows.append(("pre-training (MixInfoNCE)", f"{pretrain['train_time_s']:.0f} s, final loss "
                                                  f"{pretrain['final'].get('loss', float('nan')):.3f}"))
    elif finetune is not None:
        rows.append(("float training (from scratch)", f"{finetune['train_time_s']:.0f} s, final loss "
                                                      f"{finetune['final'].get('loss', float('nan')):.3f}"))
    rows += [
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
