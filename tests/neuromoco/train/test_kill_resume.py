"""``nmoco train`` killed with SIGKILL at random points, then ``--resume``d, ends with the weights of an uninterrupted run.

The runs are real ``nmoco train`` processes on a tiny ``ndigits`` config (CPU,
``num_workers = 0``, one thread: deterministic, so the result is bit-exact).
After every kill ``last.pt`` must load (the write is atomic), and when the run
is done no temporary checkpoint file is left. The fast test kills once and
runs in the default suite; the slow one kills at many seeded random points,
including during start-up and during a checkpoint write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from neuromoco.train.checkpoint import checkpoint_path, load_checkpoint, save_checkpoint

CONFIG = """
[data]
name = "ndigits"
ndigits_count = 20
n_time_bins = 4
size = [16, 16]
num_workers = 0

[model]
name = "loihinet_s"

[optim]
batch_size = 4

[train]
stage = "finetune"
epochs = {epochs}
seed = 3
device = "cpu"
progress = false
tensorboard = false
eval_every = 0
"""


#: Epochs of every run: an epoch of this config takes about 0.1 s, start-up several seconds.
EPOCHS = 40


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One thread per process (same arithmetic in every run) and a private, pre-filled data cache."""
    cache = tmp_path_factory.mktemp("nmoco_cache")
    environment = {**os.environ, "NMOCO_CACHE": str(cache), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "PYTHONWARNINGS": "ignore"}
    config = tmp_path_factory.mktemp("warm") / "warm.toml"
    config.write_text(CONFIG.format(epochs=1))
    # Build the dataset once, so the timed runs below only train (the cache is shared through NMOCO_CACHE).
    code = ("import sys; from neuromoco.train.config import load_config; from neuromoco.train.data import build_stage_data; "
            "build_stage_data(load_config(sys.argv[1]))")
    subprocess.run([sys.executable, "-c", code, str(config)], env=environment, check=True, timeout=600)
    return environment


def _train(config: Path, out: Path, env: dict[str, str], resume: bool) -> subprocess.Popen[bytes]:
    code = "import sys; from neuromoco.cli import main; sys.exit(main())"
    args = [sys.executable, "-c", code, "train", "--config", str(config), "--out", str(out)] + (["--resume"] if resume else [])
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _finish(proc: subprocess.Popen[bytes], timeout: float = 600) -> None:
    _, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err.decode()[-2000:]


def _leftovers(out: Path) -> list[Path]:
    folder = checkpoint_path(out).parent
    return sorted(folder.glob("*.tmp")) if folder.is_dir() else []


def _kill_at(proc: subprocess.Popen[bytes], out: Path, saves: int, delay: float) -> dict[str, Any]:
    """SIGKILL ``proc`` ``delay`` s after it wrote ``saves`` new checkpoints (0: after it started); report what was left."""
    last = checkpoint_path(out)
    seen = last.stat().st_mtime_ns if last.exists() else None
    start = time.monotonic()
    while saves and proc.poll() is None:
        stamp = last.stat().st_mtime_ns if last.exists() else None
        if stamp != seen:
            seen, saves = stamp, saves - 1
        time.sleep(0.002)
        assert time.monotonic() - start < 600, "no checkpoint within 10 minutes"
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < delay:
        time.sleep(0.002)
    finished = proc.poll() is not None
    if not finished:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = load_checkpoint(out) if last.exists() else None  # must always load: the write is atomic
    return {"killed": not finished, "epoch": None if state is None else int(state["epoch"]), "returncode": proc.returncode}


def _same_weights(a: Path, b: Path) -> None:
    sa, sb = load_checkpoint(a), load_checkpoint(b)
    assert (sa["epoch"], sa["global_step"]) == (sb["epoch"], sb["global_step"])
    assert sa["model"].keys() == sb["model"].keys()
    for key in sa["model"]:
        assert torch.equal(sa["model"][key], sb["model"][key]), key
    assert sa["optimizer"]["state"].keys() == sb["optimizer"]["state"].keys()
    for index, slots in sa["optimizer"]["state"].items():
        for name, value in slots.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(sb["optimizer"]["state"][index][name])), name


def test_kill_once_then_resume_equals_uninterrupted(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(epochs=EPOCHS))
    straight, victim = tmp_path / "straight", tmp_path / "victim"
    reference = _train(config, straight, env, resume=False)  # runs alongside the victim (2 cores)
    rng = random.Random(8)
    saves, delay = rng.randint(1, 8), rng.uniform(0.0, 0.1)
    report = _kill_at(_train(config, victim, env, resume=False), victim, saves, delay)
    assert report["killed"] and report["epoch"] is not None and report["epoch"] < EPOCHS, report
    _finish(_train(config, victim, env, resume=True))
    _finish(reference)
    _same_weights(checkpoint_path(straight), checkpoint_path(victim))
    assert _leftovers(victim) == [] and _leftovers(straight) == []


@pytest.mark.slow
def test_many_random_kills_then_resume_equals_uninterrupted(env: dict[str, str], tmp_path: Path) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(CONFIG.format(epochs=EPOCHS))
    straight, victim = tmp_path / "straight", tmp_path / "victim"
    reference = _train(config, straight, env, resume=False)
    rng = random.Random(2024)
    kills: list[dict[str, Any]] = []
    # 3 of 10 kills land in start-up (imports, data, model, reading last.pt), the rest mid-epoch or mid-save.
    plan = ["startup"] * 3 + ["training"] * 7
    rng.shuffle(plan)
    for kind in plan:
        resume = checkpoint_path(victim).exists()
        saves = 0 if kind == "startup" else rng.randint(1, 4)
        delay = rng.uniform(0.3, 6.0) if saves == 0 else rng.uniform(0.0, 0.1)
        report = _kill_at(_train(config, victim, env, resume=resume), victim, saves, delay)
        kills.append({"resume": resume, "saves": saves, "delay": round(delay, 3), **report})
        if not report["killed"]:
            assert report["returncode"] == 0, kills
            break
    else:
        _finish(_train(config, victim, env, resume=checkpoint_path(victim).exists()))
    _finish(reference)
    assert sum(k["killed"] for k in kills) >= 5, kills
    _same_weights(checkpoint_path(straight), checkpoint_path(victim))
    assert _leftovers(victim) == []
    print("kills:", kills)


def test_killed_write_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    """SIGKILL during ``save_checkpoint`` of a large state: ``last.pt`` is the old one, whole; the next save sweeps the debris."""
    last = tmp_path / "checkpoints" / "last.pt"
    save_checkpoint({"epoch": 1, "model": {"w": torch.ones(3)}}, last)
    code = ("import sys, torch; from neuromoco.train.checkpoint import save_checkpoint; "
            "save_checkpoint({'epoch': 2, 'model': {'w': torch.zeros(1 << 26)}}, sys.argv[1])")
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(last)], env=env)
    deadline = time.monotonic() + 300
    while not list(last.parent.glob("*.tmp")) and proc.poll() is None:  # the write has begun
        time.sleep(0.005)
        assert time.monotonic() < deadline
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the writer finished before the kill"
    state = load_checkpoint(last)
    assert state["epoch"] == 1 and torch.equal(state["model"]["w"], torch.ones(3))
    assert list(last.parent.glob("*.tmp")), "expected the killed writer's temporary file"
    save_checkpoint({"epoch": 3, "model": {"w": torch.ones(3)}}, last)
    assert list(last.parent.glob("*.tmp")) == [] and load_checkpoint(last)["epoch"] == 3
