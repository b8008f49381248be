"""Every ``nmoco`` subcommand on bad input: one line naming the problem, exit code 2, nothing written.

One test per case (parametrized by name): missing or unreadable files, wrong
shapes or dtypes, NaN/inf in inputs and checkpoints, steps <= 0, unknown
target/backend/model/dataset, out-of-range config values, and output folders
that cannot be written. Usage errors from argparse are one line too. The last
tests run the real ``nmoco`` in a subprocess: the same case without and with
``--debug`` (which shows the traceback).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pytest
import torch

from export.examples import small_conv_network, small_sdnn_network
from export.netx import write_netx
from neuromoco.cli import main
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.train.checkpoint import FORMAT, FORMAT_VERSION, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
TINY_TOML = """
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
epochs = 1
device = "cpu"
progress = false
tensorboard = false
"""


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("nmoco_cache")


@pytest.fixture()
def work(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder with good inputs of every kind; the test runs inside it with a private data cache."""
    monkeypatch.setenv("NMOCO_CACHE", str(cache))
    monkeypatch.chdir(tmp_path)
    write_netx(small_conv_network(0), tmp_path / "model.net")
    np.save(tmp_path / "spikes.npy", np.zeros((4, 2, 34, 34), dtype=np.int8))
    (tmp_path / "junk.bin").write_bytes(b"\x00\xffjunk, not any format\xfe" * 8)
    (tmp_path / "folder").mkdir()
    (tmp_path / "afile").write_text("a file, not a folder\n")
    (tmp_path / "tiny.toml").write_text(TINY_TOML)
    _checkpoint(tmp_path / "ckpt.pt")
    return tmp_path


def _checkpoint(path: Path, edit: Callable[[dict[str, Any]], None] | None = None) -> Path:
    """An untrained loihinet_s checkpoint in the format of nmoco train (optionally edited)."""
    torch.manual_seed(0)
    cfg = ModelConfig(name="loihinet_s")
    model = build_model(cfg, (2, 16, 16), 10).eval()
    state: dict[str, Any] = {
        "model": model.state_dict(), "model_name": "loihinet_s", "model_cfg": dataclasses.asdict(cfg),
        "input_shape": [2, 16, 16], "num_classes": 10, "n_time_bins": 4,
        "data_cfg": {"name": "ndigits", "ndigits_count": 20, "n_time_bins": 4, "size": [16, 16], "num_workers": 0},
        "stage": "finetune", "epoch": 1,
    }
    if edit is not None:
        edit(state)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(state, path)
    return path


def _first_float(state: dict[str, Any]) -> str:
    return next(k for k, v in state["model"].items() if v.is_floating_point())


def _fill(value: float) -> Callable[[dict[str, Any]], None]:
    def edit(state: dict[str, Any]) -> None:
        state["model"][_first_float(state)].fill_(value)

    return edit


def _wrong_shape(state: dict[str, Any]) -> None:
    state["model"][_first_float(state)] = torch.zeros(3)


def _pickled(path: Path) -> None:
    """A .pt file that would run code if it were unpickled without weights_only."""

    class Payload:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {path.parent / 'PWNED'}",))

    torch.save({"format": FORMAT, "format_version": FORMAT_VERSION, "model": {}, "payload": Payload()}, path)


@pytest.fixture()
def locked(work: Path) -> Iterator[Path]:
    """A folder no file can be created in, even by root (chmod, or chattr +i as root); skips where impossible."""
    folder = work / "locked"
    folder.mkdir()
    _checkpoint(folder / "ckpt.pt")  # validate writes its report next to the checkpoint
    root = os.geteuid() == 0
    if root:
        if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
            pytest.skip("running as root without chattr +i: no folder can be made unwritable")
    else:
        folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except OSError:
        pass
    else:
        pytest.skip(f"{folder} stays writable here")
    yield folder
    if root:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
    else:
        folder.chmod(0o755)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    return code, capsys.readouterr().err


def _expect_one_line(work: Path, argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    before = _files(work)
    code, err = _run(argv, capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith(f"nmoco {argv[0]}: error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    assert _files(work) == before, "a failed command left files behind"
    return lines[0]


# ----------------------------------------------------------------------------- nmoco simulate


def _save(work: Path, name: str, array: np.ndarray, allow_pickle: bool = False) -> str:
    np.save(work / name, array, allow_pickle=allow_pickle)
    return name


def _sdnn_model(work: Path) -> str:
    write_netx(small_sdnn_network(0), work / "sdnn.net")
    return "sdnn.net"


SIMULATE: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "graded input outside the message range": (
        lambda w: [_sdnn_model(w), "--input", _save(w, "big.npy", np.full((3, 2, 16, 16), 900, np.int32))],
        ("big.npy: layer 'input0' (#0, input): field 'input': values in [900, 900] exceed the graded message range",
         "|x| <= 511")),
    "missing model": (lambda w: ["nope.net"], ("nope.net: no such file",)),
    "model is a folder": (lambda w: ["folder"], ("folder: no such file",)),
    "model not HDF5": (lambda w: ["junk.bin"], ("junk.bin: not a readable HDF5 file",)),
    "model with NaN weights": (lambda w: [_nan_model(w)], ("nan.net", "NaN")),
    "missing input": (lambda w: ["model.net", "--input", "nope.npy"], ("nope.npy", "no such input file")),
    "input not npy": (lambda w: ["model.net", "--input", "junk.bin"], ("junk.bin: not a readable .npy array",)),
    "input pickled objects": (lambda w: ["model.net", "--input", _save(w, "o.npy", np.array([{}]), True)],
                              ("o.npy", "allow_pickle=False")),
    "input wrong shape": (lambda w: ["model.net", "--input", _save(w, "s.npy", np.zeros((4, 3, 34, 34)))],
                          ("s.npy: input has shape (4, 3, 34, 34)",)),
    "input complex dtype": (lambda w: ["model.net", "--input", _save(w, "c.npy", np.zeros((4, 2, 34, 34), np.complex64))],
                            ("c.npy: input has dtype complex64",)),
    "input string dtype": (lambda w: ["model.net", "--input", _save(w, "t.npy", np.array(["a", "b"]))],
                           ("t.npy: input has dtype <U1",)),
    "input NaN": (lambda w: ["model.net", "--input", _save(w, "n.npy", np.full((4, 2, 34, 34), np.nan))],
                  ("n.npy: input contains NaN or inf",)),
    "input inf": (lambda w: ["model.net", "--input", _save(w, "i.npy", np.full((4, 2, 34, 34), -np.inf))],
                  ("i.npy: input contains NaN or inf",)),
    "steps 0": (lambda w: ["model.net", "--steps", "0"], ("--steps", "positive integer, got 0")),
    "steps negative": (lambda w: ["model.net", "--steps", "-3"], ("--steps", "got -3")),
    "steps not a number": (lambda w: ["model.net", "--steps", "ten"], ("--steps", "'ten'")),
    "unknown backend": (lambda w: ["model.net", "--backend", "loihi"], ("--backend", "invalid choice: 'loihi'")),
    "unknown energy table": (lambda w: ["model.net", "--energy", "truenorth"], ("unknown energy table 'truenorth'",)),
    "energy table not TOML": (lambda w: ["model.net", "--energy", _copy(w, "junk.bin", "e.toml")], ("e.toml",)),
    "reset interval 0": (lambda w: ["model.net", "--reset-interval", "0"], ("--reset-interval",)),
    "reset offset negative": (lambda w: ["model.net", "--reset-offset", "-1"], ("reset_offset must be >= 0",)),
    "out folder missing": (lambda w: ["model.net", "--out", "nowhere/r.npz"], ("folder nowhere does not exist",)),
    "out under a file": (lambda w: ["model.net", "--out", "afile/r.npz"], ("folder afile does not exist",)),
    "out is a folder": (lambda w: ["model.net", "--out", "folder"], ("--out folder: is a folder",)),
    "out folder not writable": (lambda w: ["model.net", "--out", "/proc/r.npz"], ("cannot write into /proc",)),
}


def _nan_model(work: Path) -> str:
    import h5py

    path = write_netx(small_conv_network(0), work / "nan.net")
    with h5py.File(path, "a") as f:
        del f["layer/1/weight"]
        f["layer/1"].create_dataset("weight", data=np.full((8, 2, 3, 3), np.nan))
    return "nan.net"


def _copy(work: Path, src: str, dst: str) -> str:
    shutil.copyfile(work / src, work / dst)
    return dst


@pytest.mark.parametrize("case", list(SIMULATE))
def test_simulate(case: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, needles = SIMULATE[case]
    args = make(work)
    argv = ["simulate", args[0], "--input", "spikes.npy", "--out", "r.npz"] + args[1:]
    if "--input" in args[1:]:  # the case names its own input
        argv = ["simulate", *args, "--out", "r.npz"]
    if "--out" in args[1:]:
        argv = ["simulate", args[0], "--input", "spikes.npy", *args[1:]]
    _expect_one_line(work, argv, capsys, *needles)


def test_simulate_out_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = locked / "r.npz"
    _expect_one_line(work, ["simulate", "model.net", "--input", "spikes.npy", "--out", str(out)], capsys,
                     f"--out {out}: cannot write into {locked}")


# ----------------------------------------------------------------------------- nmoco export


EXPORT: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "missing checkpoint": (lambda w: ["nope.pt"], ("nope.pt: no checkpoint",)),
    "run folder without checkpoint": (lambda w: ["folder"], ("folder: no checkpoint",)),
    "checkpoint not a checkpoint": (lambda w: [_copy(w, "junk.bin", "j.pt")], ("j.pt: not a readable checkpoint",)),
    "checkpoint carries pickled code": (lambda w: [_pickle_file(w)], ("evil.pt: not a readable checkpoint",
                                                                       "UnpicklingError")),
    "foreign torch file": (lambda w: [_torch_file(w, {"weights": torch.zeros(2)})], ("other.pt: not a neuromoco checkpoint",)),
    "newer format version": (lambda w: [str(_checkpoint(w / "v9.pt", lambda s: s.update(format_version=9)))],
                             ("format version 9",)),
    "NaN weights": (lambda w: [str(_checkpoint(w / "nan.pt", _fill(float("nan"))))],
                    ("nan.pt: model tensor", "contains NaN or inf")),
    "inf weights": (lambda w: [str(_checkpoint(w / "inf.pt", _fill(float("inf"))))], ("inf.pt: model tensor", "NaN or inf")),
    "weights of the wrong shape": (lambda w: [str(_checkpoint(w / "shape.pt", _wrong_shape))],
                                   ("shape.pt: the weights do not fit", "size mismatch")),
    "missing key": (lambda w: [str(_checkpoint(w / "nokey.pt", lambda s: s.pop("model_cfg")))],
                    ("nokey.pt: checkpoint lacks model_cfg",)),
    "unknown model": (lambda w: [str(_checkpoint(w / "model.pt", _rename_model))], ("name='hal9000'", "not a registered")),
    "unknown target": (lambda w: ["ckpt.pt", "--target", "truenorth"], ("unknown target 'truenorth'",)),
    "out folder missing": (lambda w: ["ckpt.pt", "--out", "nowhere/m.net"], ("folder nowhere does not exist",)),
    "out is a folder": (lambda w: ["ckpt.pt", "--out", "folder"], ("--out folder: is a folder",)),
    "out folder not writable": (lambda w: ["ckpt.pt", "--out", "/proc/m.net"], ("cannot write into /proc",)),
    "onnx folder not writable": (lambda w: ["ckpt.pt", "--onnx", "/proc/m.onnx"], ("--onnx /proc/m.onnx",)),
    "nir folder missing": (lambda w: ["ckpt.pt", "--nir", "nowhere/m.nir"], ("--nir nowhere/m.nir",)),
}


def _pickle_file(work: Path) -> str:
    _pickled(work / "evil.pt")
    return "evil.pt"


def _torch_file(work: Path, obj: Any) -> str:
    torch.save(obj, work / "other.pt")
    return "other.pt"


def _rename_model(state: dict[str, Any]) -> None:
    state["model_name"] = "hal9000"
    state["model_cfg"]["name"] = "hal9000"


@pytest.mark.parametrize("case", list(EXPORT))
def test_export(case: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, needles = EXPORT[case]
    args = make(work)
    argv = ["export", *args] + ([] if "--out" in args else ["--out", "m.net"])
    _expect_one_line(work, argv, capsys, *needles)
    assert not (work / "PWNED").exists()


def test_export_out_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = locked / "m.net"
    _expect_one_line(work, ["export", "ckpt.pt", "--out", str(out)], capsys, f"--out {out}: cannot write into {locked}")


# ----------------------------------------------------------------------------- nmoco validate


VALIDATE: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "missing run": (lambda w: ["nope"], ("nope: no checkpoint",)),
    "checkpoint not a checkpoint": (lambda w: [_copy(w, "junk.bin", "j.pt")], ("j.pt: not a readable checkpoint",)),
    "NaN weights": (lambda w: [str(_checkpoint(w / "nan.pt", _fill(float("nan"))))], ("nan.pt", "NaN or inf")),
    "weights of the wrong shape": (lambda w: [str(_checkpoint(w / "shape.pt", _wrong_shape))], ("shape.pt", "do not fit")),
    "samples 0": (lambda w: ["ckpt.pt", "--samples", "0"], ("--samples", "got 0")),
    "lava samples negative": (lambda w: ["ckpt.pt", "--lava-samples", "-1"], ("--lava-samples", "got -1")),
    "unknown backend": (lambda w: ["ckpt.pt", "--backend", "gpu"], ("--backend", "invalid choice: 'gpu'")),
    "report is a folder": (lambda w: [_report_folder(w)], ("report.md: is a folder",)),
}


def _report_folder(work: Path) -> str:
    run = work / "run"
    _checkpoint(run / "checkpoints" / "last.pt")
    (run / "report.md").mkdir()
    return "run"


@pytest.mark.parametrize("case", list(VALIDATE))
def test_validate(case: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, needles = VALIDATE[case]
    _expect_one_line(work, ["validate", *make(work)], capsys, *needles)


def test_validate_report_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(work, ["validate", str(locked / "ckpt.pt"), "--lava-samples", "0"], capsys,
                     f"cannot write into {locked}")


# ----------------------------------------------------------------------------- nmoco train


def _toml(work: Path, text: str, name: str = "bad.toml") -> str:
    (work / name).write_text(TINY_TOML + text)
    return name


def _edited_toml(work: Path, old: str, new: str) -> str:
    assert old in TINY_TOML
    (work / "bad.toml").write_text(TINY_TOML.replace(old, new))
    return "bad.toml"


def _nan_run(work: Path) -> str:
    _checkpoint(work / "nanrun" / "checkpoints" / "last.pt", _fill(float("nan")))
    return "nanrun"


TRAIN: dict[str, tuple[Callable[[Path], list[str]], tuple[str, ...]]] = {
    "missing config": (lambda w: ["--config", "nope.toml"], ("nope.toml: no such config file",)),
    "config is a folder": (lambda w: ["--config", "folder"], ("folder: cannot read the config",)),
    "config binary": (lambda w: ["--config", "junk.bin"], ("junk.bin",)),
    "config not TOML": (lambda w: ["--config", _copy(w, "afile", "t.toml")], ("t.toml: not valid TOML",)),
    "unknown section": (lambda w: ["--config", _toml(w, "[trian]\nepochs = 2\n")], ("unknown section [trian]",)),
    "unknown key": (lambda w: ["--config", _edited_toml(w, "epochs = 1", "epoch = 1")], ("unknown key 'epoch'",)),
    "wrong type": (lambda w: ["--config", _edited_toml(w, "epochs = 1", 'epochs = "one"')], ("[train] epochs", "integer")),
    "epochs 0 in config": (lambda w: ["--config", _edited_toml(w, "epochs = 1", "epochs = 0")], ("epochs=0 must be >= 1",)),
    "epochs 0 flag": (lambda w: ["--config", "tiny.toml", "--epochs", "0"], ("--epochs", "got 0")),
    "epochs negative flag": (lambda w: ["--config", "tiny.toml", "--epochs", "-2"], ("--epochs", "got -2")),
    "time bins 0": (lambda w: ["--config", _edited_toml(w, "n_time_bins = 4", "n_time_bins = 0")], ("n_time_bins=0",)),
    "learning rate negative": (lambda w: ["--config", _edited_toml(w, "batch_size = 4", "batch_size = 4\nlr = -0.1")],
                               ("lr and batch_size must be positive",)),
    "learning rate NaN": (lambda w: ["--config", _edited_toml(w, "batch_size = 4", "batch_size = 4\nlr = nan")],
                          ("[optim] lr", "expected a number")),
    "label fraction out of range": (lambda w: ["--config", "tiny.toml", "--label-fraction", "2"], ("--label-fraction",)),
    "ndigits count too small": (lambda w: ["--config", _edited_toml(w, "ndigits_count = 20", "ndigits_count = 5")],
                                ("ndigits_count=5",)),
    "unknown model": (lambda w: ["--config", "tiny.toml", "--model", "hal9000"], ("name='hal9000' is not a registered",)),
    "unknown dataset": (lambda w: ["--config", "tiny.toml", "--data", "imagenet"], ("name='imagenet' is not a dataset",)),
    "unknown stage": (lambda w: ["--config", "tiny.toml", "--stage", "distill"], ("--stage", "'distill'")),
    "unknown device": (lambda w: ["--config", _edited_toml(w, 'device = "cpu"', 'device = "tpu"')], ("device='tpu'",)),
    "missing data root": (lambda w: ["--config", "tiny.toml", "--data", "nmnist", "--data-root", "nowhere"],
                          ("nowhere does not exist",)),
    "init checkpoint missing": (lambda w: ["--config", "tiny.toml", "--init", "nope.pt"], ("nope.pt: no checkpoint",)),
    "init checkpoint NaN": (lambda w: ["--config", "tiny.toml", "--init", str(_checkpoint(w / "nan.pt", _fill(float("nan"))))],
                            ("nan.pt: model tensor", "NaN or inf")),
    "resume without checkpoint": (lambda w: ["--config", "tiny.toml", "--resume"], ("--resume:", "does not exist")),
    "resume from NaN checkpoint": (lambda w: ["--config", "tiny.toml", "--resume", "--out", _nan_run(w)],
                                   ("last.pt: model tensor", "NaN or inf")),
    "out is a file": (lambda w: ["--config", "tiny.toml", "--out", "afile/run"], ("afile is a file, not a folder",)),
    "out folder not writable": (lambda w: ["--config", "tiny.toml", "--out", "/proc/run"], ("cannot write into /proc",)),
}


@pytest.mark.parametrize("case", list(TRAIN))
def test_train(case: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make, needles = TRAIN[case]
    args = make(work)
    argv = ["train", *args] + ([] if "--out" in args else ["--out", "run"])
    _expect_one_line(work, argv, capsys, *needles)


def test_train_out_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(work, ["train", "--config", "tiny.toml", "--out", str(locked / "run")], capsys,
                     f"cannot write into {locked}")


# ----------------------------------------------------------------------------- nmoco data


DATA: dict[str, tuple[list[str], tuple[str, ...]]] = {
    "unknown dataset": (["imagenet"], ("name='imagenet' is not a dataset",)),
    "missing data root": (["nmnist", "--data-root", "nowhere"], ("nowhere does not exist",)),
    "data root is a file": (["dvs_gesture", "--data-root", "afile"], ("afile",)),
    "show 0": (["ndigits", "--show", "0", "--out", "g.png"], ("--show 0: must be a positive number",)),
    "show negative": (["ndigits", "--show", "-2", "--out", "g.png"], ("--show -2",)),
    "show without out": (["ndigits", "--show", "2"], ("--show N and --out FILE.png go together",)),
    "limit 0": (["ndigits", "--limit", "0"], ("--limit 0",)),
    "show not a number": (["ndigits", "--show", "many", "--out", "g.png"], ("--show", "'many'")),
    "out folder missing": (["ndigits", "--show", "2", "--out", "nowhere/g.png"], ("folder nowhere does not exist",)),
    "out is a folder": (["ndigits", "--show", "2", "--out", "folder"], ("--out folder: is a folder",)),
    "out folder not writable": (["ndigits", "--show", "2", "--out", "/proc/g.png"], ("cannot write into /proc",)),
}


@pytest.mark.parametrize("case", list(DATA))
def test_data(case: str, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args, needles = DATA[case]
    _expect_one_line(work, ["data", *args], capsys, *needles)


def test_data_out_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(work, ["data", "ndigits", "--show", "2", "--out", str(locked / "g.png")], capsys,
                     f"cannot write into {locked}")


# ----------------------------------------------------------------------------- nmoco demo


def test_demo_out_is_a_file(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(work, ["demo", "--out", "afile"], capsys, "--out afile: is a file, not a folder")


def test_demo_out_folder_locked(locked: Path, work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _expect_one_line(work, ["demo", "--out", str(locked / "demo")], capsys, f"--out {locked / 'demo'}: cannot create")


def test_unknown_subcommand_is_one_line(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = _run(["deploy"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and "invalid choice: 'deploy'" in err


# ----------------------------------------------------------------------------- the real command, with and without --debug


def _nmoco(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = "import sys; from neuromoco.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_subprocess_one_line_and_debug_traceback(work: Path) -> None:
    args = ["simulate", "model.net", "--input", "nope.npy", "--out", "r.npz"]
    plain = _nmoco(args, work)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == ["nmoco simulate: error: nope.npy: no such input file"]
    debug = _nmoco(["--debug", *args], work)
    assert debug.returncode != 0
    assert "Traceback (most recent call last)" in debug.stderr
    assert "SimulationError: nope.npy: no such input file" in debug.stderr
    assert not (work / "r.npz").exists()
