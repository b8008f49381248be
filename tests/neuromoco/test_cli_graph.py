"""`nmoco simulate` on a residual graph file: native and Lava (the graph builder) agree, the energy
table counts every source of a merge, and lava-dl's own loader refuses the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from export.examples import random_spikes, small_residual_network
from export.netx import read_netx, write_netx
from neuromoco.cli import main


@pytest.fixture()
def graph_file(tmp_path: Path) -> Path:
    return write_netx(small_residual_network(0), tmp_path / "res.net")


def _input(tmp_path: Path, array: np.ndarray) -> Path:
    path = tmp_path / "x.npy"
    np.save(path, array)
    return path


def test_native_graph_result(graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = read_netx(graph_file)
    assert net.is_graph
    x = _input(tmp_path, random_spikes(1, (2, 6, 2, 16, 16), 0.2))
    out = tmp_path / "r.npz"
    assert main(["simulate", str(graph_file), "--input", str(x), "--energy", "loihi", "--out", str(out)]) == 0
    r = np.load(out)
    # default steps: T plus the longest path's hops
    assert r["out_spikes"].shape == (2, 6 + net.depth, 10)
    assert r["synops"].shape == (2, len(net.layers))
    text = capsys.readouterr().out
    assert "pool" in text and "wrote" in text


@pytest.mark.lava
def test_lava_backend_equals_native_on_graph(graph_file: Path, tmp_path: Path, lava_netx) -> None:  # type: ignore[no-untyped-def]
    x = _input(tmp_path, random_spikes(4, (1, 4, 2, 16, 16), 0.3))
    outs = {}
    for backend in ("native", "lava"):
        outs[backend] = tmp_path / f"{backend}.npz"
        assert main(["simulate", str(graph_file), "--input", str(x), "--backend", backend,
                     "--out", str(outs[backend])]) == 0
    a, b = np.load(outs["native"]), np.load(outs["lava"])
    assert a.files == b.files
    for key in a.files:
        assert np.array_equal(a[key], b[key]), key
    assert int(a["layer_spike_counts"].sum()) > 0


def test_bad_graph_file_is_one_line_exit_2(graph_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import h5py

    with h5py.File(graph_file, "r+") as f:
        f["graph/layer/6/sources"][...] = np.array([10, 1], dtype=np.int64)  # a forward edge: a cycle
    x = _input(tmp_path, random_spikes(1, (1, 3, 2, 16, 16), 0.2))
    code = main(["simulate", str(graph_file), "--input", str(x), "--out", str(tmp_path / "r.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and "res.net" in err[0] and "sources" in err[0]
    assert not (tmp_path / "r.npz").exists()
