"""``nmoco train`` through the real CLI entry point (synthetic data in place of ndigits)."""

from __future__ import annotations

import json

import pytest

from neuromoco import cli
from neuromoco.train import trainer
from train_helpers import stage_data

TINY_TOML = """
[data]
num_workers = 0

[moco]
dim = 8
hidden_dim = 16
queue_size = 12
bn_splits = 2

[optim]
batch_size = 4

[train]
progress = false
tensorboard = false
knn_every = 1
"""


@pytest.fixture()
def synthetic(monkeypatch):
    monkeypatch.setattr(trainer, "build_stage_data", lambda cfg: stage_data())


def test_pretrain_then_finetune(tmp_path, synthetic, capsys):
    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    pre = tmp_path / "pre"
    assert cli.main(["train", "--config", str(config), "--out", str(pre), "--epochs", "1", "--seed", "1"]) == 0
    assert json.loads((pre / "summary.json").read_text())["seed"] == 1
    ft = tmp_path / "ft"
    argv = ["train", "--config", str(config), "--stage", "finetune", "--init", str(pre), "--out", str(ft),
            "--label-fraction", "0.5", "--epochs", "1"]
    assert cli.main(argv) == 0
    summary = json.loads((ft / "summary.json").read_text())
    assert summary["stage"] == "finetune" and summary["init"] == str(pre) and "test_top1" in summary["final"]
    assert "run folder" in capsys.readouterr().out


def test_unknown_key_is_a_one_line_error(tmp_path, synthetic, capsys):
    config = tmp_path / "bad.toml"
    config.write_text("[moco]\nqueue = 5\n")
    assert cli.main(["train", "--config", str(config), "--out", str(tmp_path / "x")]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'queue'" in err and "[moco]" in err


def test_bad_flag_value_is_rejected(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--label-fraction", "1.5"])
    assert "label-fraction" in capsys.readouterr().err
