"""Checkpoint format: atomic writes, weights_only loading, load_model_from_run, RNG round trip."""

from __future__ import annotations

import random
from dataclasses import asdict

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional

from hw_targets.errors import ConfigError
from neuromoco.models import ModelConfig, build_model
from neuromoco.train.checkpoint import (
    checkpoint_path,
    load_checkpoint,
    load_model_from_run,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

INPUT_SHAPE = (2, 16, 16)


def model_state(name="loihinet_s"):
    torch.manual_seed(0)
    cfg = ModelConfig(name=name, threshold=0.75)
    model = build_model(cfg, INPUT_SHAPE, 5)
    state = {
        "model": model.state_dict(),
        "model_name": name,
        "model_cfg": asdict(cfg),
        "input_shape": list(INPUT_SHAPE),
        "num_classes": 5,
        "n_time_bins": 3,
        "data_cfg": {"name": "ndigits"},
        "stage": "finetune",
        "epoch": 2,
        "rng": rng_state(),
        "metrics": {"test_top1": 0.5},
    }
    return model, state


def test_round_trip_through_run_folder(tmp_path):
    model, state = model_state()
    save_checkpoint(state, checkpoint_path(tmp_path))
    assert [p.name for p in (tmp_path / "checkpoints").iterdir()] == ["last.pt"], "no temporary file may be left"
    loaded, info = load_model_from_run(tmp_path)
    assert not loaded.training
    assert info["model_name"] == "loihinet_s" and info["epoch"] == 2 and info["stage"] == "finetune"
    assert "model" not in info and "rng" not in info
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    x = (torch.rand(3, 2, *INPUT_SHAPE) < 0.3).float()
    model.eval()
    with torch.no_grad():
        expected = model(x)
        functional.reset_net(model)
        assert torch.equal(loaded(x), expected)
    assert loaded.blocks[0].neuron.threshold == 0.75


def test_file_path_and_weights_only(tmp_path):
    _, state = model_state()
    path = tmp_path / "a.pt"
    save_checkpoint(state, path)
    assert torch.load(path, weights_only=True)["format_version"] == 1
    assert load_checkpoint(path)["num_classes"] == 5


def test_overwrite_is_atomic(tmp_path, monkeypatch):
    _, state = model_state()
    path = tmp_path / "last.pt"
    save_checkpoint(state, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        save_checkpoint({**state, "epoch": 3}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_bad_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no checkpoint"):
        load_model_from_run(tmp_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="bad.pt"):
        load_checkpoint(bad)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ConfigError, match="not a neuromoco checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")


def test_rng_state_round_trip(tmp_path):
    torch.manual_seed(3), np.random.seed(3), random.seed(3)
    saved = rng_state()
    torch.save(saved, tmp_path / "rng.pt")
    expected = (torch.rand(2), np.random.rand(2), random.random())
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]
