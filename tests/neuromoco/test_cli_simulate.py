"""`nmoco simulate`: the DESIGN.md contract, and one clear line with exit code 2 on bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.examples import random_spikes, small_conv_network
from export.netx import write_netx
from neuromoco.cli import main


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    return write_netx(small_conv_network(0), tmp_path / "m.net")


def _input(tmp_path: Path, array: np.ndarray, name: str = "x.npy") -> Path:
    path = tmp_path / name
    np.save(path, array)
    return path


def test_native_result_file(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = _input(tmp_path, random_spikes(0, (3, 6, 2, 34, 34), 0.2))
    out = tmp_path / "r.npz"
    assert main(["simulate", str(model), "--input", str(x), "--steps", "9", "--backend", "native", "--out", str(out)]) == 0
    r = np.load(out)
    assert r["out_spikes"].shape == (3, 9, 10)
    assert r["layer0_spikes"].shape == (3, 9, 8, 17, 17)
    assert r["layer2_spikes"].shape == (3, 9, 1296)
    assert r["layer_spike_counts"].shape == (3, 5)
    assert r["synops"].shape == (3, 5)
    assert "wrote" in capsys.readouterr().out


def test_single_sample_and_default_steps(model: Path, tmp_path: Path) -> None:
    x = _input(tmp_path, random_spikes(0, (6, 2, 34, 34), 0.2))
    out = tmp_path / "r.npz"
    assert main(["simulate", str(model), "--input", str(x), "--out", str(out)]) == 0
    assert np.load(out)["out_spikes"].shape == (1, 6 + 4, 10)  # T + one step per synaptic layer


@pytest.mark.lava
def test_lava_backend_equals_native(model: Path, tmp_path: Path, lava_netx) -> None:  # type: ignore[no-untyped-def]
    x = _input(tmp_path, random_spikes(3, (1, 5, 2, 34, 34), 0.3))
    outs = {}
    for backend in ("native", "lava"):
        outs[backend] = tmp_path / f"{backend}.npz"
        assert main(["simulate", str(model), "--input", str(x), "--backend", backend, "--out", str(outs[backend])]) == 0
    a, b = np.load(outs["native"]), np.load(outs["lava"])
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: np.zeros((4, 3, 34, 34)), "expected"),
        (lambda p: np.full((4, 2, 34, 34), np.nan), "NaN"),
        (lambda p: np.full((4, 2, 34, 34), 0.5), "non-integer"),
        (lambda p: np.array(["a"]), "dtype"),
    ],
)
def test_bad_input_arrays(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], make, match: str) -> None:  # type: ignore[no-untyped-def]
    x = _input(tmp_path, make(tmp_path))
    code = main(["simulate", str(model), "--input", str(x), "--out", str(tmp_path / "r.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and match in err and "x.npy" in err
    assert not (tmp_path / "r.npz").exists()


def test_missing_files(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", str(tmp_path / "nope.net"), "--input", "x.npy", "--out", str(tmp_path / "r.npz")]) == 2
    assert "nope.net: no such file" in capsys.readouterr().err
    assert main(["simulate", str(model), "--input", str(tmp_path / "nope.npy"), "--out", str(tmp_path / "r.npz")]) == 2
    assert "nope.npy" in capsys.readouterr().err
    x = _input(tmp_path, random_spikes(0, (2, 2, 34, 34), 0.1))
    assert main(["simulate", str(model), "--input", str(x), "--out", str(tmp_path / "no" / "r.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
    junk = tmp_path / "junk.npy"
    junk.write_bytes(b"garbage")
    assert main(["simulate", str(model), "--input", str(junk), "--out", str(tmp_path / "r.npz")]) == 2
    assert "junk.npy" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--steps", "0"], ["--steps", "-3"], ["--backend", "loihi"]])
def test_bad_flags_exit_2(model: Path, tmp_path: Path, argv: list[str]) -> None:
    x = _input(tmp_path, random_spikes(0, (2, 2, 34, 34), 0.1))
    with pytest.raises(SystemExit) as info:
        main(["simulate", str(model), "--input", str(x), "--out", str(tmp_path / "r.npz"), *argv])
    assert info.value.code == 2


def test_debug_shows_traceback(model: Path, tmp_path: Path) -> None:
    from hw_targets.errors import SimulationError

    x = _input(tmp_path, np.zeros((4, 3, 34, 34)))
    with pytest.raises(SimulationError):
        main(["--debug", "simulate", str(model), "--input", str(x), "--out", str(tmp_path / "r.npz")])


@pytest.mark.parametrize("table", ["loihi", "cmos45nm"])
def test_energy_table_printed_and_stored(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str) -> None:
    x = _input(tmp_path, random_spikes(0, (2, 6, 2, 34, 34), 0.2))
    out = tmp_path / "r.npz"
    assert main(["simulate", str(model), "--input", str(x), "--energy", table, "--out", str(out)]) == 0
    r = np.load(out)
    assert r["energy_uj_per_layer"].shape == (5,)
    assert float(r["energy_uj_total"]) == pytest.approx(float(r["energy_uj_per_layer"].sum()))
    printed = capsys.readouterr().out
    assert "total" in printed and "conv0" in printed


def test_unknown_energy_table(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    x = _input(tmp_path, random_spikes(0, (2, 2, 34, 34), 0.2))
    assert main(["simulate", str(model), "--input", str(x), "--energy", "gpu", "--out", str(tmp_path / "r.npz")]) == 2
    assert "gpu" in capsys.readouterr().err


def _conv_first_file(model: Path) -> Path:
    """``model`` rewritten without its shape-only input layer, as lava-dl's exporter writes conv-first files."""
    import h5py

    with h5py.File(model, "r+") as f:
        layers = f["layer"]
        count = len(layers)
        assert layers["0/type"][0] == b"input"
        del layers["0"]
        for i in range(1, count):
            layers.move(str(i), str(i - 1))
    return model


def test_conv_first_file_takes_the_input_shape(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spikes = random_spikes(0, (2, 6, 2, 34, 34), 0.2)
    x = _input(tmp_path, spikes)
    reference = tmp_path / "ref.npz"
    assert main(["simulate", str(model), "--input", str(x), "--backend", "native", "--out", str(reference)]) == 0
    _conv_first_file(model)
    from_array = tmp_path / "a.npz"
    assert main(["simulate", str(model), "--input", str(x), "--backend", "native", "--out", str(from_array)]) == 0
    given = tmp_path / "g.npz"
    assert main(["simulate", str(model), "--input", str(x), "--backend", "native", "--out", str(given),
                 "--input-shape", "2", "34", "34"]) == 0
    for path in (from_array, given):
        assert np.array_equal(np.load(path)["out_spikes"], np.load(reference)["out_spikes"])


def test_conv_first_file_with_a_wrong_shape_is_one_line(model: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    _conv_first_file(model)
    x = _input(tmp_path, random_spikes(0, (6, 2, 34, 34), 0.2))
    code = main(["simulate", str(model), "--input", str(x), "--backend", "native", "--out", str(tmp_path / "r.npz"),
                 "--input-shape", "3", "34", "34"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "layer 0 (conv)" in err and "weight" in err
    flat = _input(tmp_path, np.zeros((6, 2 * 34 * 34), np.int32), "flat.npy")
    code = main(["simulate", str(model), "--input", str(flat), "--backend", "native", "--out", str(tmp_path / "r.npz")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "--input-shape C H W" in err
