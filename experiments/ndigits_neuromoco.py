"""NeuroMoCo on ndigits with loihinet_s (or ``--model loihinet_sew_s``): every arm of the results table, for several seeds.

Arms (each a normal ``nmoco train`` run folder under ``--out``/s<seed>/):

    pre_mix, pre_info        pre-training with MixInfoNCE (λ = --lambda) and InfoNCE
    pre_mix_l<λ>             extra pre-trainings for the λ ablation (--ablate-lambdas)
    scratch_10, scratch_100  supervised from scratch with 10 % / 100 % of the labels
    scratch_2, scratch_5 ... the same arms at 2 % and 5 % of the labels (``--fractions 2 5``)
    mix_10, mix_100          fine-tuning from pre_mix
    info_10, info_100        fine-tuning from pre_info
    lin_mix, lin_info        linear probe on the frozen pre-trained encoders
    lin_random               linear probe on a frozen random encoder (batch-norm statistics as initialised)
    bn_random                random encoder whose batch-norm statistics are measured on the training data
                             (3 epochs of the pre-training recipe at lr 1e-12: the weights do not move)
    lin_random_bn            linear probe on the frozen bn_random encoder
    lin_mix_l<λ>             linear probe of each ablation encoder

Configs come from ``configs/ndigits_loihinet_s_{pretrain,finetune,linear}.toml``;
this script only sets the seed, the label fraction, the loss, λ, the epochs and
``--init``. A finished arm (its ``summary.json`` exists) is not run again and an
interrupted one is resumed from its checkpoint, so the script can be stopped
and restarted. Results go to ``results.json`` and a
Markdown table ``results.md`` (mean ± sample std over seeds).

    python experiments/ndigits_neuromoco.py --seeds 0 1 2 --out runs/ndigits_neuromoco

Seeds and ``--groups`` may run as separate processes into the same ``--out``
(each group holds the pre-training its arms start from); the tables each
process writes cover only its own arms, so finish with ``--report-only``,
which tabulates every finished arm under ``--out``:

    for s in 0 1 2; do for g in mix info scratch random; do
        python experiments/ndigits_neuromoco.py --seeds $s --groups $g --num-workers 1 &
    done; done; wait
    python experiments/ndigits_neuromoco.py --seeds 0 1 2 --report-only
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from neuromoco.train.checkpoint import checkpoint_path
from neuromoco.train.config import TrainConfig, config_from_dict, load_config
from neuromoco.train.trainer import SUMMARY_NAME, run_training

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
PRETRAIN = CONFIGS / "ndigits_loihinet_s_pretrain.toml"
FINETUNE = CONFIGS / "ndigits_loihinet_s_finetune.toml"
LINEAR = CONFIGS / "ndigits_loihinet_s_linear.toml"
#: Backbones with recipes ``configs/ndigits_<model>_{pretrain,finetune,linear}.toml`` (``--model``).
MODELS = ("loihinet_s", "loihinet_sew_s")


def use_model(model: str) -> None:
    """Point the recipes at ``configs/ndigits_<model>_*.toml`` (the same protocol, another backbone)."""
    global PRETRAIN, FINETUNE, LINEAR
    PRETRAIN, FINETUNE, LINEAR = (CONFIGS / f"ndigits_{model}_{stage}.toml" for stage in ("pretrain", "finetune", "linear"))


def _config(path: Path, out: Path, seed: int, **changes: dict[str, Any]) -> TrainConfig:
    return config_from_dict(changes, base=load_config(path, {"out": str(out), "seed": seed}))


def _run(cfg: TrainConfig) -> dict[str, Any]:
    done = cfg.run_dir / SUMMARY_NAME
    if done.is_file():
        return json.loads(done.read_text())
    if checkpoint_path(cfg.run_dir).is_file():  # stopped mid-run: continue it
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, resume=True))
    print(f"--- {cfg.run_dir} ({cfg.train.stage})", flush=True)
    start = time.perf_counter()
    summary = run_training(cfg)
    print(f"--- {cfg.run_dir}: {cfg.train.epochs} epochs in {time.perf_counter() - start:.1f} s wall "
          f"({summary['train_time_s']:.1f} s in training steps)", flush=True)
    return summary


#: Arms grouped by the pre-training they depend on; each group can run in its own process.
GROUPS = ("mix", "info", "scratch", "ablation", "random")

#: Label percentages below 10 % that ``--fractions`` offers (fine-tuned for ``--finetune-epochs-few`` epochs).
FEW_LABELS = ("2", "5")

#: Learning rate of ``bn_random``: Adam moves a weight by about lr per step, so nothing but the batch-norm
#: running statistics (updated by the train-mode forwards) changes.
BN_ONLY_LR = 1e-12


def run_seed(root: Path, seed: int, args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Every arm of the selected ``--groups`` for one seed, in dependency order; returns ``{arm: summary}``."""
    base = root / f"s{seed}"
    quiet = {"progress": False}
    data = {} if args.num_workers is None else {"data": {"num_workers": args.num_workers}}
    results: dict[str, dict[str, Any]] = {}

    def pretrain(name: str, loss: str, mix_lambda: float) -> Path:
        cfg = _config(PRETRAIN, base / name, seed, moco={"loss": loss, "mix_lambda": mix_lambda},
                      train={"epochs": args.pretrain_epochs, **quiet}, **data)
        results[name] = _run(cfg)
        return cfg.run_dir

    def finetune(name: str, fraction: float, init: Path | None) -> None:
        if fraction >= 1.0:
            epochs = args.finetune_epochs_100
        else:
            epochs = args.finetune_epochs_10 if fraction >= 0.1 else args.finetune_epochs_few
        cfg = _config(FINETUNE, base / name, seed,
                      train={"label_fraction": fraction, "init": str(init or ""), "epochs": epochs, **quiet}, **data)
        results[name] = _run(cfg)
        if init is not None and args.lpft_epochs > 0:
            # LP-FT (Kumar et al. 2022), an extra arm: fit the new classifier alone on the frozen pre-trained
            # encoder (the linear recipe, the same labelled subset), then fine-tune all weights from there.
            probe = _config(LINEAR, base / f"lp_{name}", seed, train={"label_fraction": fraction, "init": str(init),
                            "epochs": args.lpft_epochs, **quiet}, **data)
            results[f"lp_{name}"] = _run(probe)
            cfg = _config(FINETUNE, base / f"lpft_{name}", seed, train={"label_fraction": fraction,
                          "init": str(probe.run_dir), "epochs": epochs, **quiet}, **data)
            results[f"lpft_{name}"] = _run(cfg)

    def linear(name: str, init: Path | None) -> None:
        cfg = _config(LINEAR, base / name, seed, train={"init": str(init or ""), "epochs": args.linear_epochs, **quiet},
                      **data)
        results[name] = _run(cfg)

    groups = set(args.groups)
    pre_mix = pretrain("pre_mix", "mixinfonce", args.mix_lambda) if "mix" in groups else None
    pre_info = pretrain("pre_info", "infonce", args.mix_lambda) if "info" in groups else None
    for tag in sorted(args.fractions, key=int):
        fraction = int(tag) / 100
        if "scratch" in groups:
            finetune(f"scratch_{tag}", fraction, None)
        if pre_mix is not None:
            finetune(f"mix_{tag}", fraction, pre_mix)
        if pre_info is not None:
            finetune(f"info_{tag}", fraction, pre_info)
    if pre_mix is not None:
        linear("lin_mix", pre_mix)
    if pre_info is not None:
        linear("lin_info", pre_info)
    if "scratch" in groups:
        linear("lin_random", None)
    if "random" in groups:
        # A random encoder in eval mode normalises with the initial running statistics (mean 0, variance 1);
        # with loihinet's hardware timing that leaves its feature layer silent, so also probe one whose
        # statistics were measured on the data, as pre-training gives the pre-trained encoders.
        cfg = _config(PRETRAIN, base / "bn_random", seed, optim={"lr": BN_ONLY_LR},
                      train={"epochs": args.bn_epochs, "knn_every": args.bn_epochs, **quiet}, **data)
        results["bn_random"] = _run(cfg)
        linear("lin_random_bn", cfg.run_dir)
    if "ablation" in groups:
        for lam in args.ablate_lambdas:
            run = pretrain(f"pre_mix_l{lam:g}", "mixinfonce", lam)
            linear(f"lin_mix_l{lam:g}", run)
    return results


def _finished(folder: Path) -> dict[str, dict[str, Any]]:
    """Summaries of the arms of one seed that have finished."""
    return {p.parent.name: json.loads(p.read_text()) for p in sorted(folder.glob(f"*/{SUMMARY_NAME}"))}


ROWS = tuple(
    (f"{label}, {tag} % labels", f"{arm}_{tag}", "test_top1")
    for tag in FEW_LABELS
    for label, arm in (("supervised from scratch", "scratch"), ("NeuroMoCo (MixInfoNCE) + fine-tune", "mix"),
                       ("NeuroMoCo (InfoNCE) + fine-tune", "info"))
) + (
    ("supervised from scratch, 10 % labels", "scratch_10", "test_top1"),
    ("NeuroMoCo (MixInfoNCE) + fine-tune, 10 % labels", "mix_10", "test_top1"),
    ("NeuroMoCo (InfoNCE) + fine-tune, 10 % labels", "info_10", "test_top1"),
    ("NeuroMoCo (MixInfoNCE) + LP-FT, 10 % labels", "lpft_mix_10", "test_top1"),
    ("NeuroMoCo (InfoNCE) + LP-FT, 10 % labels", "lpft_info_10", "test_top1"),
    ("supervised from scratch, 100 % labels", "scratch_100", "test_top1"),
    ("NeuroMoCo (MixInfoNCE) + fine-tune, 100 % labels", "mix_100", "test_top1"),
    ("NeuroMoCo (InfoNCE) + fine-tune, 100 % labels", "info_100", "test_top1"),
    ("LP-FT's probe (classifier alone), MixInfoNCE encoder, 10 % labels", "lp_mix_10", "test_top1"),
    ("LP-FT's probe (classifier alone), InfoNCE encoder, 10 % labels", "lp_info_10", "test_top1"),
    ("NeuroMoCo (MixInfoNCE) + LP-FT, 100 % labels", "lpft_mix_100", "test_top1"),
    ("NeuroMoCo (InfoNCE) + LP-FT, 100 % labels", "lpft_info_100", "test_top1"),
    ("linear probe, MixInfoNCE encoder", "lin_mix", "test_top1"),
    ("linear probe, InfoNCE encoder", "lin_info", "test_top1"),
    ("linear probe, random encoder", "lin_random", "test_top1"),
    ("linear probe, random encoder, batch-norm statistics of the data", "lin_random_bn", "test_top1"),
    ("kNN monitor after pre-training, MixInfoNCE", "pre_mix", "knn_top1"),
    ("kNN monitor after pre-training, InfoNCE", "pre_info", "knn_top1"),
    ("kNN monitor, random encoder, batch-norm statistics of the data", "bn_random", "knn_top1"),
)


def table(per_seed: dict[int, dict[str, dict[str, Any]]], lambdas: list[float]) -> str:
    """Markdown table of mean ± std (percent) over the seeds that finished each arm."""
    rows = list(ROWS) + [(f"linear probe, MixInfoNCE λ={lam:g}", f"lin_mix_l{lam:g}", "test_top1") for lam in lambdas]
    rows += [(f"kNN monitor after pre-training, MixInfoNCE λ={lam:g}", f"pre_mix_l{lam:g}", "knn_top1")
             for lam in lambdas]
    lines = ["| arm | top-1 % (mean ± std) | seeds |", "|---|---|---|"]
    for label, arm, metric in rows:
        values = [100 * r[arm]["final"][metric] for r in per_seed.values() if arm in r and metric in r[arm]["final"]]
        if not values:
            continue
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        lines.append(f"| {label} | {statistics.mean(values):.1f} ± {std:.1f} | {len(values)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--model", choices=MODELS, default="loihinet_s")
    use_model(pre.parse_known_args()[0].model)  # the defaults below come from the model's recipes
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[pre])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--out", default="runs/ndigits_neuromoco")
    parser.add_argument("--mix-lambda", type=float, default=load_config(PRETRAIN).moco.mix_lambda)
    parser.add_argument("--ablate-lambdas", type=float, nargs="*", default=[])
    parser.add_argument("--pretrain-epochs", type=int, default=load_config(PRETRAIN).train.epochs)
    parser.add_argument("--finetune-epochs-10", type=int, default=100, help="epochs over the 10 %% subset")
    parser.add_argument("--finetune-epochs-100", type=int, default=load_config(FINETUNE).train.epochs)
    parser.add_argument("--linear-epochs", type=int, default=load_config(LINEAR).train.epochs)
    parser.add_argument("--lpft-epochs", type=int, default=0,
                        help="also run LP-FT arms lpft_mix_*, lpft_info_*: the classifier alone on the frozen "
                             "pre-trained encoder for this many epochs (arm lp_<arm>, the linear recipe, the same "
                             "labels), then the fine-tuning; 0 (default): no such arms")
    parser.add_argument("--finetune-epochs-few", type=int, default=250,
                        help="epochs over a 2 %% or 5 %% subset (30 or 79 samples: 1-2 steps an epoch, so about "
                             "as many steps as 100 epochs of the 10 %% subset)")
    parser.add_argument("--fractions", nargs="+", choices=(*FEW_LABELS, "10", "100"), default=["10", "100"],
                        help="label percentages of the scratch_*, mix_* and info_* arms (default 10 and 100)")
    parser.add_argument("--bn-epochs", type=int, default=3,
                        help="epochs of bn_random (batch-norm statistics only; momentum 0.1, 22 steps an epoch)")
    parser.add_argument("--groups", nargs="+", choices=GROUPS, default=list(GROUPS),
                        help="arms to run: mix (pre_mix, mix_*, lin_mix), info (pre_info, info_*, lin_info), "
                             "scratch (scratch_*, lin_random), ablation (pre_mix_l*, lin_mix_l*), "
                             "random (bn_random, lin_random_bn); default all")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="[data] num_workers of every arm (default: the config's; does not change results)")
    parser.add_argument("--report-only", action="store_true", help="tabulate finished arms, train nothing")
    args = parser.parse_args()
    root = Path(args.out)
    root.mkdir(parents=True, exist_ok=True)
    per_seed: dict[int, dict[str, dict[str, Any]]] = {}
    start = time.time()
    for seed in args.seeds:
        if args.report_only:
            per_seed[seed] = _finished(root / f"s{seed}")
        else:
            per_seed[seed] = run_seed(root, seed, args)
            print(f"seed {seed} ({' '.join(args.groups)}) done after {time.time() - start:.0f} s", flush=True)
        (root / "results.json").write_text(json.dumps({str(k): v for k, v in per_seed.items()}, indent=2) + "\n")
        (root / "results.md").write_text(table(per_seed, args.ablate_lambdas))
    print(table(per_seed, args.ablate_lambdas))


if __name__ == "__main__":
    main()
