"""The pipeline functions behind ``nmoco``: export_run, the float reference of a run, config sections."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from export.netx import read_netx
from hw_targets.errors import ConfigError
from neuromoco.cli import _command_in
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.pipeline.deploy import ExportOutputs, export_run
from neuromoco.pipeline.runs import float_reference
from neuromoco.quant.convert import to_quant
from neuromoco.train.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint
from neuromoco.train.config import load_config

SHAPE = (2, 34, 34)


def _checkpoint(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig(name="loihinet_s")
    model = build_model(cfg, SHAPE, 10).eval()
    path = tmp_path / "ckpt.pt"
    save_checkpoint(
        {
            "format": FORMAT, "format_version": FORMAT_VERSION, "model": model.state_dict(),
            "model_name": "loihinet_s", "model_cfg": dataclasses.asdict(cfg), "input_shape": list(SHAPE),
            "num_classes": 10, "n_time_bins": 8, "data_cfg": None, "stage": "finetune", "epoch": 1,
        },
        path,
    )
    return path


def test_export_run_returns_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    result = export_run(_checkpoint(tmp_path), "loihi2", ExportOutputs(netx=tmp_path / "m.net"))
    assert result.paths == (tmp_path / "m.net",)
    assert [layer.name for layer in read_netx(tmp_path / "m.net").layers] == [
        layer.name for layer in result.network.layers]
    assert result.resources.cores >= 1
    assert f"wrote {tmp_path / 'm.net'}" in capsys.readouterr().out


def test_export_run_refuses_unwritable_output_by_its_flag(tmp_path: Path) -> None:
    outputs = ExportOutputs(netx=tmp_path / "m.net", nir=tmp_path / "missing" / "m.nir")
    assert [flag for flag, _ in outputs.named()] == ["--out", "--nir"]
    with pytest.raises(ConfigError, match="--nir .*does not exist"):
        export_run(tmp_path / "no-run-needed", "loihi2", outputs)
    assert not (tmp_path / "m.net").exists()


def test_float_reference_of_float_and_qat_runs() -> None:
    model = build_model(ModelConfig(name="loihinet_s"), SHAPE, 10).eval()
    assert float_reference(model, {"path": "x"}) is model
    qat = to_quant(model, SHAPE)
    assert float_reference(qat, {"path": "x", "config": {"train": {"init": ""}}}) is None
    with pytest.raises(ConfigError):
        float_reference(qat, {"path": "x", "config": {"train": {"init": "/nonexistent/run"}}})


def test_load_config_sections_sit_between_file_and_flags(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[train]\nepochs = 7\nseed = 3\n[model]\nname = "loihinet_m"\n')
    cfg = load_config(path, {"seed": 5}, sections={"train": {"epochs": 2, "seed": 4}, "data": {"frame_mode": "binary"}})
    assert (cfg.train.epochs, cfg.train.seed, cfg.model.name, cfg.data.frame_mode) == (2, 5, "loihinet_m", "binary")
    with pytest.raises(ConfigError, match="unknown key 'epoch' in section \\[train\\]"):
        load_config(None, sections={"train": {"epoch": 2}})


def test_command_is_the_first_word_that_is_not_an_option() -> None:
    assert _command_in(["--debug", "train", "--out", "x"]) == "train"
    assert _command_in(["--help"]) is None
