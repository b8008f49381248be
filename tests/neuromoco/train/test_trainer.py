"""The training stages end to end on synthetic data: run folder, resume equality, init, linear probe."""

from __future__ import annotations

import csv
import json

import pytest
import torch

from hw_targets.errors import ConfigError
from neuromoco.train.checkpoint import load_checkpoint, load_model_from_run
from neuromoco.train.trainer import CONFIG_NAME, SUMMARY_NAME, Trainer, lr_factor, resolved_config_of, run_training
from train_helpers import replace_train, stage_data, tiny_config


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    out = tmp_path_factory.mktemp("pre")
    summary = run_training(tiny_config(out), stage_data())
    return out, summary


def test_pretrain_run_folder(pretrained):
    out, summary = pretrained
    assert (out / CONFIG_NAME).is_file() and (out / "checkpoints" / "last.pt").is_file()
    assert json.loads((out / SUMMARY_NAME).read_text()) == summary
    assert 0.0 <= summary["final"]["knn_top1"] <= 1.0 and summary["epochs"] == 1
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert {r["split"] for r in rows} == {"train", "knn", "epoch"}
    assert resolved_config_of(out) == tiny_config(out)
    state = load_checkpoint(out)
    assert state["stage"] == "pretrain" and state["epoch"] == 1
    assert not any(k.startswith("query_encoder.") for k in state["moco"])
    assert state["moco"]["queue"].shape == (12, 3, 8)
    model, info = load_model_from_run(out)
    assert info["model_name"] == "loihinet_s" and model.num_classes == 4


def test_resume_continues_exactly(tmp_path, monkeypatch):
    straight = tmp_path / "straight"
    run_training(tiny_config(straight, epochs=2), stage_data())
    split = tmp_path / "split"
    real_epoch = Trainer.train_epoch

    def crash_in_second_epoch(self):
        if self.epoch == 1:
            raise KeyboardInterrupt  # the run dies after epoch 1 was checkpointed
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", crash_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        run_training(tiny_config(split, epochs=2), stage_data())
    monkeypatch.undo()
    assert load_checkpoint(split)["epoch"] == 1
    run_training(tiny_config(split, epochs=2, resume=True), stage_data())
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["epoch"] == b["epoch"] == 2 and a["global_step"] == b["global_step"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in a["moco"]:
        assert torch.equal(a["moco"][key], b["moco"][key]), key
    timing = {"samples_per_s"}
    assert {k: v for k, v in a["metrics"].items() if k not in timing} == {
        k: v for k, v in b["metrics"].items() if k not in timing
    }


def test_run_folder_is_not_overwritten_and_resume_checks_config(pretrained, tmp_path):
    out, _ = pretrained
    with pytest.raises(ConfigError, match="--resume"):
        run_training(tiny_config(out), stage_data())
    changed = tiny_config(out, epochs=2, resume=True)
    changed = changed.__class__(**{**changed.__dict__, "optim": changed.optim.__class__(batch_size=4, lr=0.5)})
    with pytest.raises(ConfigError, match="lr"):
        run_training(changed, stage_data())
    with pytest.raises(ConfigError, match="does not exist"):
        run_training(tiny_config(tmp_path / "none", resume=True), stage_data())


def test_finetune_from_pretrain_with_label_fraction(pretrained, tmp_path):
    pre, _ = pretrained
    cfg = tiny_config(tmp_path / "ft", stage="finetune", init=str(pre), label_fraction=0.5)
    summary = run_training(cfg, stage_data())
    assert summary["labelled_samples"] == 8 and 0.0 <= summary["final"]["test_top1"] <= 1.0
    assert load_checkpoint(tmp_path / "ft")["stage"] == "finetune"


def test_linear_probe_trains_only_the_classifier(pretrained, tmp_path):
    pre, _ = pretrained
    start = load_checkpoint(pre)["model"]
    run_training(tiny_config(tmp_path / "lin", stage="linear", init=str(pre)), stage_data())
    end = load_checkpoint(tmp_path / "lin")["model"]
    changed = {k for k in start if not torch.equal(start[k], end[k])}
    assert changed and all(k.startswith("blocks.4.") for k in changed), changed


def test_init_must_match_the_model(pretrained, tmp_path):
    pre, _ = pretrained
    cfg = tiny_config(tmp_path / "m", stage="finetune", init=str(pre))
    cfg = cfg.__class__(**{**cfg.__dict__, "model": cfg.model.__class__(name="loihinet_m")})
    with pytest.raises(ConfigError, match="loihinet_s"):
        run_training(cfg, stage_data())


def test_lr_schedule():
    assert lr_factor(0, 4, 20, "cosine") == pytest.approx(0.25)
    assert lr_factor(4, 4, 20, "cosine") == pytest.approx(1.0)
    assert lr_factor(19, 4, 20, "cosine") < 0.02
    assert lr_factor(10, 0, 20, "constant") == 1.0
    assert replace_train(tiny_config("x"), seed=5).train.seed == 5
