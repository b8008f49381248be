"""``sims.validate`` on a real (tiny) trained run: the float column is the model the run reports on."""

from __future__ import annotations

from pathlib import Path

import pytest

from neuromoco.train.config import config_from_dict
from neuromoco.train.trainer import run_training
from sims.validate import validate


def test_static_image_run_validates_on_its_code(tmp_path: Path) -> None:
    """A loihinet trained on static digits with latency coding: validation feeds every backend the code of
    each image (not the thresholded image), so the float top-1 is the run's own test top-1."""
    cfg = config_from_dict({
        "data": {"name": "digits"},
        "model": {"name": "loihinet_s", "encoding": "latency"},
        "train": {"stage": "finetune", "epochs": 1, "out": str(tmp_path / "run"), "progress": False,
                  "tensorboard": False, "seed": 0},
    })
    summary = run_training(cfg)
    report = validate(tmp_path / "run", lava_samples=0, progress=False)
    assert report.samples == 359
    assert report.accuracy["float"] == pytest.approx(summary["final"]["test_top1"], abs=1e-9)
    assert report.qat_equals_native
    assert report.accuracy["qat"] == report.accuracy["native"]
