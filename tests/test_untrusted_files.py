"""Files from elsewhere are data, never code: checkpoints, netx files, arrays, and names shown in reports.

- checkpoints load with ``weights_only=True``: a ``.pt`` that pickles a custom
  class or a ``__reduce__`` payload is refused with one ``ConfigError`` line and
  runs nothing;
- every ``torch.load`` / ``np.load`` in the project refuses pickles (a source scan);
- a netx file is HDF5 read through h5py: see ``tests/export/test_netx_fuzz.py``
  (``test_python_code_in_a_file_is_never_run``);
- names that come from files or folders (class names of an ImageFolder dataset,
  layer names, the run path) are escaped in ``report.md`` and shown literally in plots.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from hw_targets.errors import ConfigError
from neuromoco.train.checkpoint import FORMAT, FORMAT_VERSION, load_checkpoint, load_model_from_run

REPO = Path(__file__).resolve().parents[1]


class Gadget:
    """A custom class: pickling stores a reference to it, which weights_only refuses to import."""

    def __init__(self) -> None:
        self.value = 1


class Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("make", ["custom class", "reduce payload"])
def test_checkpoint_with_pickled_code_is_refused(make: str, tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    obj: Any = Gadget() if make == "custom class" else Payload(marker)
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "model": {}, "extra": obj}, path)
    for load in (load_checkpoint, load_model_from_run):
        with pytest.raises(ConfigError, match=r"evil\.pt: not a readable checkpoint \(UnpicklingError") as info:
            load(path)
        assert "\n" not in str(info.value)
    assert not marker.exists()


def test_every_loader_in_the_project_refuses_pickles() -> None:
    offenders = []
    for folder in ("neuromoco", "export", "sims", "hw_targets"):
        for source in (REPO / folder).rglob("*.py"):
            text = source.read_text()
            for match in re.finditer(r"torch\.load\((.*)", text):
                if "weights_only=True" not in match.group(1):
                    offenders.append(f"{source}: torch.load without weights_only=True")
            for match in re.finditer(r"np\.load\((.*)", text):
                if "allow_pickle=False" not in match.group(1):
                    offenders.append(f"{source}: np.load without allow_pickle=False")
            for call in ("pickle.load", "eval(", "exec(", "yaml.load("):
                if re.search(rf"(?<![\w.]){re.escape(call)}", text):
                    offenders.append(f"{source}: {call}")
    assert offenders == []


# ----------------------------------------------------------------------------- names in reports

EVIL = '<img src=x onerror=alert(1)>| **bold** [link](http://x) `code` $x^2$'


def _report(tmp_path: Path) -> Any:
    from sims.validate import LayerComparison, ValidationReport

    return ValidationReport(
        samples=4, lava_samples=1, time_steps=8, latency=2, accuracy={"float": 0.5, "native": 0.5},
        agreement_float_fixed=1.0, qat_equals_native=True, lava_equals_native=False,
        first_lava_difference=f"layer {EVIL} step 3",
        layers=[LayerComparison(name=f"conv{EVIL}", float_rate=0.1, fixed_rate=0.1, correlation=1.0, mean_abs_rate_diff=0.0)],
        confusion=np.eye(2, dtype=np.int64) * 2, class_names=[EVIL, "</td><script>x()</script>"],
        raster=[np.zeros((3, 2), bool)], raster_names=[f"conv{EVIL}"],
    )


def test_names_are_escaped_in_report_md(tmp_path: Path) -> None:
    from sims.report import write_markdown

    path = write_markdown(_report(tmp_path), tmp_path, [], f"runs/{EVIL}")
    text = path.read_text()
    for raw in ("<img", "<script", "</td>", "| **bold**"):
        assert raw not in text, raw
    assert "&lt;img src=x onerror=alert(1)&gt;&#124; **bold**" in text  # the name is still readable
    # every table row keeps its column count: a '|' in a name cannot add a column
    for line in text.splitlines():
        if line.startswith("| conv"):
            assert line.count("|") == 6, line


def test_names_are_literal_in_plots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Matplotlib would render ``$x^2$`` as math; plot labels escape the dollar signs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.axes

    from sims.report import write_plots

    labels: list[str] = []
    original = matplotlib.axes.Axes.set_xticks

    def record(self: Any, ticks: Any, labels_: Any = None, **kwargs: Any) -> Any:
        labels.extend(str(label) for label in (labels_ or []))
        return original(self, ticks, labels_, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "set_xticks", record)
    paths = write_plots(_report(tmp_path), tmp_path)
    assert paths and all(p.is_file() for p in paths)
    assert any("\\$x^2\\$" in label for label in labels)
    assert not any(re.search(r"(?<!\\)\$", label) for label in labels)
