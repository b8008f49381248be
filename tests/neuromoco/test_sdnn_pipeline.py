"""``loihinet_sdnn_s`` through the pipeline: train, QAT, validate (QAT == native), export, the demo's settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from export.netx import read_netx
from neuromoco.pipeline.demo import SDNN_STAGES, STAGES, DemoConfig, RECIPES
from neuromoco.quant.sdnn import QuantSdnnNet
from neuromoco.train.checkpoint import load_model_from_run
from neuromoco.train.config import config_from_dict
from neuromoco.train.trainer import run_training
from sims.validate import validate


def _train(tmp_path: Path, stage: str, init: str = "") -> Path:
    out = tmp_path / stage
    cfg = config_from_dict({
        # Static digit images, 3 steps of the analog image: the Delta input layer takes graded input.
        "data": {"name": "digits", "n_time_bins": 3, "size": [16, 16], "ndigits_count": 100},
        "model": {"name": "loihinet_sdnn_s"},
        "train": {"stage": stage, "epochs": 1, "out": str(out), "init": init, "progress": False,
                  "tensorboard": False, "seed": 0},
    })
    run_training(cfg)
    return out


@pytest.fixture(scope="module")
def qat_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("sdnn")
    return _train(tmp, "qat", init=str(_train(tmp, "finetune")))


def test_qat_run_validates_exactly(qat_run: Path, tmp_path: Path) -> None:
    model, info = load_model_from_run(qat_run)
    assert isinstance(model, QuantSdnnNet) and info["stage"] == "qat"
    report = validate(qat_run, samples=20, lava_samples=0, out_dir=tmp_path, progress=False)
    assert report.qat_equals_native
    assert report.accuracy["qat"] == report.accuracy["native"]
    assert "float" in report.accuracy and 0.0 <= report.agreement_float_fixed <= 1.0
    assert report.latency == model.latency and report.time_steps == 3
    assert [layer.name for layer in report.layers][0] == "input"
    net = read_netx(tmp_path / "model.net")
    assert net.family == "SDNN"


def test_export_run_writes_the_sigma_delta_network(qat_run: Path, tmp_path: Path) -> None:
    import export.check

    if not hasattr(export.check, "graded_spikes"):
        pytest.skip("needs the sigma-delta target rules of export/check.py (branch sdnn-energy)")
    from neuromoco.pipeline.deploy import ExportOutputs, export_run

    result = export_run(qat_run, "loihi2", ExportOutputs(netx=tmp_path / "m.net"))
    assert result.network.family == "SDNN"
    sidecar = (tmp_path / "m.net.json").read_text()
    assert "Delta input layer" in sidecar and "Sigma read-out" in sidecar


def test_demo_runs_the_sigma_delta_chain_without_pretraining() -> None:
    demo = dataclasses.replace(DemoConfig(), model="loihinet_sdnn_s")
    assert demo.sigma_delta and demo.stages == SDNN_STAGES and demo.frames == "count"
    assert DemoConfig().stages == STAGES and DemoConfig().frames == "binary"
    for stage in demo.stages:
        assert (RECIPES / f"{demo.data}_{demo.model}_{stage}.toml").is_file()
