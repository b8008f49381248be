"""Static images through training: --neuron/--encoding flags, config checks, a tiny run, reload, export refusal."""

from __future__ import annotations

import argparse
import json

import pytest
import torch

from hw_targets.errors import ConfigError
from neuromoco.cli import main
from neuromoco.data import DataConfig
from neuromoco.models import ModelConfig
from neuromoco.models.adaptive import AdaptiveLIFNode
from neuromoco.models.encoding import HybridEncoder
from neuromoco.train import command
from neuromoco.train.checkpoint import load_model_from_run
from neuromoco.train.config import OptimConfig, RunConfig, TrainConfig, load_config
from neuromoco.train.trainer import run_training


def static_config(tmp_path, neuron: str, encoding: str, **data) -> TrainConfig:
    return TrainConfig(
        data=DataConfig(name="digits", n_time_bins=3, size=(16, 16), num_workers=0, ndigits_count=40, **data),
        model=ModelConfig(name="loihinet_s", neuron=neuron, encoding=encoding),
        optim=OptimConfig(batch_size=8, warmup_epochs=0.0),
        train=RunConfig(stage="finetune", epochs=1, out=str(tmp_path / "run"), progress=False, tensorboard=False),
    )


def test_flags_set_neuron_and_encoding():
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    args = parser.parse_args(["train", "--data", "digits", "--neuron", "adaptive", "--encoding", "hybrid"])
    cfg = load_config(None, {"data": args.data, "neuron": args.neuron, "encoding": args.encoding})
    assert (cfg.model.neuron, cfg.model.encoding) == ("adaptive", "hybrid")
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--encoding", "rate"])


@pytest.mark.parametrize(
    "tables, match",
    [
        ({"model": {"encoding": "latency"}}, r"encoding='latency'.*'ndigits' gives event frames"),
        ({"data": {"name": "digits", "n_time_bins": 1}, "model": {"encoding": "hybrid"}}, "n_time_bins >= 2"),
        ({"model": {"neuron": "adaptive"}, "train": {"stage": "qat"}}, r"stage='qat'.*neuron='lif'"),
        ({"data": {"name": "digits"}, "model": {"encoding": "hybrid"}, "train": {"stage": "qat"}}, "stage='qat'"),
        ({"model": {"neuron": "plif"}}, r"\[model\] neuron='plif'"),
    ],
)
def test_config_checks(tables, match):
    from neuromoco.train.config import config_from_dict

    with pytest.raises(ConfigError, match=match):
        config_from_dict(tables)


def test_adaptive_hybrid_run_reloads_and_export_refuses(tmp_path, capsys):
    torch.manual_seed(0)
    summary = run_training(static_config(tmp_path, "adaptive", "hybrid"))
    assert 0.0 <= summary["final"]["test_top1"] <= 1.0
    model, info = load_model_from_run(tmp_path / "run")
    nodes = [m for m in model.modules() if isinstance(m, AdaptiveLIFNode)]
    steps = 3 + model.latency  # loihinet in hardware timing: the deepest neurons run T + L steps
    assert len(nodes) == 4 and all(n.time_steps == steps for n in nodes)
    assert any(not torch.equal(n.gain.detach(), torch.full((steps,), 0.5)) for n in nodes), "gains were trained"
    assert isinstance(model._modules["input_encoder"], HybridEncoder) and info["input_shape"] == [1, 16, 16]
    out = tmp_path / "m.net"
    assert main(["export", str(tmp_path / "run"), "--target", "loihi2", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "per-time-step" in err and "--neuron lif" in err
    assert not out.exists()


def test_lif_hybrid_export_refuses_the_analog_step(tmp_path, capsys):
    run_training(static_config(tmp_path, "lif", "hybrid"))
    assert main(["export", str(tmp_path / "run"), "--target", "loihi2", "--out", str(tmp_path / "m.net")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'input_encoder'" in err and "binary spikes" in err and "--encoding latency" in err


def test_latency_lif_run_exports_and_direct_images_are_refused(tmp_path, capsys):
    run_training(static_config(tmp_path, "lif", "latency"))
    out = tmp_path / "m.net"
    assert main(["export", str(tmp_path / "run"), "--target", "loihi2", "--out", str(out)]) == 0
    assert "latency code" in json.loads((tmp_path / "m.net.json").read_text())["input_encoding"]
    direct = tmp_path / "direct"
    direct.mkdir()
    run_training(static_config(direct, "lif", "direct"))
    capsys.readouterr()
    assert main(["export", str(direct / "run"), "--target", "loihi2", "--out", str(direct / "m.net")]) == 2
    err = capsys.readouterr().err.strip()
    assert "'direct'" in err and "analog image" in err and "--encoding latency" in err
    assert not (direct / "m.net").exists()
