"""TrainConfig: TOML sections and keys map 1:1 to fields, unknown keys are errors, the resolved TOML round-trips."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from hw_targets.errors import ConfigError
from neuromoco.train import command
from neuromoco.train.config import FLAG_FIELDS, TrainConfig, config_from_dict, dump_toml, load_config


def write(tmp_path, text):
    path = tmp_path / "cfg.toml"
    path.write_text(text)
    return path


def test_defaults_come_from_the_dataclasses():
    assert load_config(None) == TrainConfig()


def test_unknown_key_names_key_and_section(tmp_path):
    path = write(tmp_path, "[optim]\nlr = 0.1\nlearning_rate = 0.2\n")
    with pytest.raises(ConfigError, match=r"learning_rate.*\[optim\]"):
        load_config(path)


def test_unknown_section(tmp_path):
    with pytest.raises(ConfigError, match=r"\[optimizer\]"):
        load_config(write(tmp_path, "[optimizer]\nlr = 0.1\n"))


def test_wrong_type_names_the_field(tmp_path):
    with pytest.raises(ConfigError, match=r"\[train\] epochs"):
        load_config(write(tmp_path, '[train]\nepochs = "ten"\n'))
    with pytest.raises(ConfigError, match=r"\[moco\] symmetric"):
        load_config(write(tmp_path, "[moco]\nsymmetric = 1\n"))


def test_invalid_value_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="mix_lambda"):
        load_config(write(tmp_path, "[moco]\nmix_lambda = 1.5\n"))
    with pytest.raises(ConfigError, match="bn_splits"):
        load_config(write(tmp_path, "[optim]\nbatch_size = 10\n"))
    with pytest.raises(ConfigError, match="cfg.toml"):
        load_config(write(tmp_path, "[train\n"))


def test_flags_override_toml_and_unset_flags_do_not(tmp_path):
    path = write(tmp_path, '[train]\nepochs = 7\nseed = 3\n[model]\nname = "loihinet_m"\n')
    cfg = load_config(path, {"epochs": 2, "seed": None, "model": None, "data_root": "/x", "label_fraction": 0.1})
    assert (cfg.train.epochs, cfg.train.seed, cfg.model.name) == (2, 3, "loihinet_m")
    assert (cfg.data.data_root, cfg.train.label_fraction) == ("/x", 0.1)


def test_every_cli_flag_maps_to_one_field():
    parser = argparse.ArgumentParser()
    command.add_parser(parser.add_subparsers())
    sub = parser._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
    dests = {a.dest for a in sub._actions} - {"help", "config", "func"}
    assert dests == set(FLAG_FIELDS)
    defaults = TrainConfig()
    for section, key in FLAG_FIELDS.values():
        assert hasattr(getattr(defaults, section), key)


def test_resolved_toml_round_trip(tmp_path):
    cfg = config_from_dict(
        {
            "data": {"n_time_bins": 6, "size": [20, 24]},
            "augment": {"crop_scale": [0.3, 0.9], "flip_prob": 0.0},
            "moco": {"loss": "infonce", "queue_size": 256, "temperature": 0.2},
            "optim": {"optimizer": "sgd", "lr": 0.05},
            "train": {"stage": "finetune", "label_fraction": 0.1, "init": "runs/pre"},
        }
    )
    again = load_config(write(tmp_path, dump_toml(cfg)))
    assert again == cfg
    assert dataclasses.asdict(again) == dataclasses.asdict(cfg)


def test_run_dir_default_and_override():
    cfg = TrainConfig()
    assert str(cfg.run_dir) == f"runs/{cfg.model.name}-{cfg.train.stage}-s{cfg.train.seed}"
    assert str(load_config(None, {"out": "elsewhere"}).run_dir) == "elsewhere"
