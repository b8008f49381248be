"""``nmoco train``: one stage of NeuroMoCo training from a TOML config and flags.

Each flag sets one config field (see ``FLAG_FIELDS`` in :mod:`neuromoco.train.config`);
a flag left out keeps the TOML value, and a key left out of the TOML keeps the
dataclass default. Under ``torchrun --nproc_per_node N`` the same command
trains with DDP.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from neuromoco.cli_args import PLUGGED, fraction, positive_int


#: The registered backbones (``neuromoco.models.list_models()``), for the help text.
MODEL_NAMES = ("loihinet_s", "loihinet_m", "loihinet_sew_s", "sew_resnet18_loihi", "loihinet_sdnn_s", "sew_resnet18",
               "spikformer_2_256")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``train`` subcommand to the ``nmoco`` parser."""
    p = sub.add_parser(
        "train",
        help=PLUGGED["train"].help,
        description="Train one stage. Defaults live in neuromoco.train.config; a flag overrides the TOML field named.",
    )
    p.add_argument("--config", help="TOML file with [data] [augment] [model] [moco] [optim] [train] sections")
    p.add_argument("--stage", choices=("pretrain", "finetune", "linear", "qat"), help="[train] stage")
    p.add_argument("--data", help="[data] name, e.g. ndigits")
    p.add_argument("--data-root", dest="data_root", help="[data] data_root: folder of a real dataset")
    p.add_argument("--out", help="[train] out: run folder")
    p.add_argument("--resume", action="store_true", default=None, help="[train] resume from <out>/checkpoints/last.pt")
    # Listed by hand so that ``nmoco train --help`` does not import torch; a test holds it to the registry.
    p.add_argument("--model", help=f"[model] name: {', '.join(MODEL_NAMES)}")
    p.add_argument("--label-fraction", dest="label_fraction", type=fraction, help="[train] label_fraction")
    p.add_argument("--epochs", type=positive_int, help="[train] epochs")
    p.add_argument("--seed", type=int, help="[train] seed")
    p.add_argument("--init", help="[train] init: pre-training run folder or checkpoint to start from")
    p.add_argument("--neuron", choices=("lif", "adaptive"),
                   help="[model] neuron: lif (fixed parameters, deployable) or adaptive (ASNN, per-step leak and gain)")
    p.add_argument("--encoding", choices=("direct", "latency", "hybrid"),
                   help="[model] encoding of static images (digits, imagefolder): direct, latency or hybrid")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``nmoco train``.

    Returns:
        0 on success.

    Raises:
        ConfigError: Bad config file, key, value or flag combination.
    """
    from neuromoco.train.config import FLAG_FIELDS, load_config
    from neuromoco.train.trainer import run_training

    overrides = {dest: getattr(args, dest, None) for dest in FLAG_FIELDS}
    cfg = load_config(args.config, overrides)
    _check_run_folder(cfg.run_dir)
    summary = run_training(cfg)
    if summary["world_size"] == 1 or _is_rank_zero():
        print(json.dumps({k: summary[k] for k in ("stage", "model", "epochs", "final", "train_time_s")}))
        print(f"run folder: {cfg.run_dir}")
    return 0


def _check_run_folder(run_dir: Path) -> None:
    """Refuse a run folder that cannot be written before any data or model is built; creates nothing.

    Raises:
        ConfigError: The nearest existing folder on the way to ``run_dir`` is a file or takes no new files.
    """
    from hw_targets.errors import ConfigError

    folder = run_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ConfigError(f"[train] out={str(run_dir)!r}: {folder} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"[train] out={str(run_dir)!r}: cannot write into {folder} ({exc.strerror or exc})") from None


def _is_rank_zero() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"
