"""`nmoco export`: lowering a checkpoint to netx (+ sidecar, resources), ONNX and NIR; refusals."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.netx import read_netx
from neuromoco.cli import main
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.train.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint


def _checkpoint(tmp_path: Path, name: str = "loihinet_s", shape: tuple[int, int, int] = (2, 34, 34)) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig(name=name)
    model = build_model(cfg, shape, 10).eval()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        {
            "format": FORMAT, "format_version": FORMAT_VERSION, "model": model.state_dict(), "model_name": name,
            "model_cfg": dataclasses.asdict(cfg), "input_shape": list(shape), "num_classes": 10, "n_time_bins": 8,
            "data_cfg": None, "stage": "finetune", "epoch": 1,
        },
        path,
    )
    return path


def test_export_writes_netx_sidecar_and_resources(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path)
    out = tmp_path / "m.net"
    assert main(["export", str(ckpt), "--target", "loihi2", "--out", str(out)]) == 0
    net = read_netx(out)
    assert [layer.kind for layer in net.layers] == ["conv", "conv", "flatten", "dense", "dense"]
    for layer in net.layers:
        w = getattr(layer, "weight", None)
        if w is not None:
            assert np.abs(w).max() <= 127  # signed 8-bit mantissas
    side = json.loads((tmp_path / "m.net.json").read_text())
    assert side["target"] == "loihi2" and side["input_shape"] == [2, 34, 34] and side["latency_steps"] == 4
    assert side["resources"]["totals"]["cores"] >= 1 and len(side["source_sha256"]) == 64
    printed = capsys.readouterr().out
    assert "cores" in printed and "conv0" in printed


@pytest.mark.parametrize("name", ["sew_resnet18", "spikformer_2_256"])
def test_export_refuses_non_deployable_before_writing(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path, name, (2, 32, 32))
    out = tmp_path / "m.net"
    assert main(["export", str(ckpt), "--target", "loihi2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot run on loihi2" in err and "layer '" in err
    assert not out.exists()


def test_export_bad_target_and_missing_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _checkpoint(tmp_path)
    assert main(["export", str(ckpt), "--target", "truenorth", "--out", str(tmp_path / "m.net")]) == 2
    assert "unknown target 'truenorth'" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nope"), "--out", str(tmp_path / "m.net")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
    assert main(["export", str(ckpt), "--out", str(tmp_path / "no" / "m.net")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_export_onnx_and_nir(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("nir")
    ckpt = _checkpoint(tmp_path)
    args = ["export", str(ckpt), "--out", str(tmp_path / "m.net"), "--onnx", str(tmp_path / "m.onnx"),
            "--nir", str(tmp_path / "m.nir")]
    assert main(args) == 0
    for name in ("m.onnx", "m.nir", "m.onnx.json", "m.nir.json"):
        assert (tmp_path / name).is_file()
