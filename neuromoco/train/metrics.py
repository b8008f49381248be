"""Run metrics: ``metrics.csv`` always, TensorBoard events when the package is installed."""

from __future__ import annotations

import csv
import math
import warnings
from pathlib import Path
from typing import Any

from hw_targets.errors import MissingDependencyError

CSV_NAME = "metrics.csv"
TENSORBOARD_DIR = "tensorboard"
#: Columns of ``metrics.csv``; a row leaves the ones it does not measure empty.
COLUMNS = (
    "epoch",
    "step",
    "split",
    "loss",
    "lr",
    "samples_per_s",
    "knn_top1",
    "train_top1",
    "test_top1",
    "elapsed_s",
)


class MetricsLogger:
    """Append rows to ``<run>/metrics.csv`` and mirror them as TensorBoard scalars.

    On resume the CSV is appended to, so the file covers the whole run.
    """

    def __init__(self, run_dir: Path, tensorboard: bool, enabled: bool = True) -> None:
        """Open the logs.

        Args:
            run_dir: The run folder.
            tensorboard: Write TensorBoard events under ``<run>/tensorboard``.
            enabled: False on non-zero DDP ranks: nothing is written.
        """
        self.enabled = enabled
        self._writer: Any = None
        if not enabled:
            return
        self.path = run_dir / CSV_NAME
        fresh = not self.path.exists()
        self._file = self.path.open("a", newline="")
        self._csv = csv.DictWriter(self._file, fieldnames=COLUMNS)
        if fresh:
            self._csv.writeheader()
        if tensorboard:
            try:
                self._writer = _summary_writer(run_dir / TENSORBOARD_DIR)
            except MissingDependencyError as exc:
                warnings.warn(f"{exc}; writing {CSV_NAME} only")

    def log(self, split: str, epoch: int, step: int, **values: float) -> None:
        """Write one row.

        Args:
            split: ``"train"``, ``"test"`` or ``"knn"``: what the values were measured on.
            epoch: Epoch (1-based) the row belongs to.
            step: Global optimizer step.
            **values: Columns of :data:`COLUMNS`.
        """
        if not self.enabled:
            return
        row = {"epoch": epoch, "step": step, "split": split}
        row.update({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in values.items()})
        self._csv.writerow(row)
        self._file.flush()
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value) and key != "elapsed_s":
                    self._writer.add_scalar(f"{split}/{key}", value, step)

    def close(self) -> None:
        """Flush and close the files."""
        if not self.enabled:
            return
        self._file.close()
        if self._writer is not None:
            self._writer.close()


def _summary_writer(folder: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise MissingDependencyError(
            "TensorBoard logging needs the 'tensorboard' package (pip install tensorboard)"
        ) from None
    return SummaryWriter(log_dir=str(folder))
