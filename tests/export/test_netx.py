"""netx files: Intel's files read, our files round-trip and load in lava-dl, bad files fail cleanly."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from shared_data import shared_file
from export.examples import pilotnet_shaped_network, small_conv_network
from export.ir import Dense, Network, networks_equal
from export.netx import read_netx, write_netx
from hw_targets.errors import ExportError
from netgen import KINDS, random_case

INTEL_FILES = [
    ("mnist", "trained_mnist_network.net", (784,), 3),
    ("oxford", "network.net", (200,), 2),
    ("pilotnet_lif", "network.net", (3, 66, 200), 11),
    ("tinynet", "tiny.net", (3, 16, 16), 3),
]


@pytest.mark.parametrize("folder,name,in_shape,n_layers", INTEL_FILES)
def test_reads_intel_files(folder: str, name: str, in_shape: tuple[int, ...], n_layers: int, tmp_path: Path) -> None:
    net = read_netx(shared_file("lava_netx", folder, name))
    assert net.input_shape == in_shape
    assert len(net.layers) == n_layers
    # write -> read -> write is lossless
    p1, p2 = tmp_path / "a.net", tmp_path / "b.net"
    write_netx(net, p1)
    again = read_netx(p1)
    assert networks_equal(net, again)
    write_netx(again, p2)
    assert networks_equal(read_netx(p2), again)


def test_pilotnet_legacy_fields_kept() -> None:
    net = read_netx(shared_file("lava_netx", "pilotnet_lif", "network.net"))
    first = net.layers[0]
    assert first.kind == "input" and first.neuron is not None and first.neuron.kind == "LOIHI"
    assert dict(first.neuron.extras)["theta"] == 1600
    assert dict(net.simulation) == {"Ts": 1, "tSample": 16}
    assert net.layers[1].bias.shape == (24,)  # type: ignore[union-attr]


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
def test_random_networks_round_trip(seed: int, kind: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    net = random_case(seed, kind).net
    path = tmp_path_factory.mktemp("rt") / "n.net"
    write_netx(net, path)
    back = read_netx(path)
    assert networks_equal(back, net)


def test_written_file_quirks(tmp_path: Path) -> None:
    path = write_netx(small_conv_network(0), tmp_path / "n.net")
    with h5py.File(path) as f:
        assert f["layer/0/type"][()].tolist() == [b"input"]
        assert f["layer/1/type"].dtype == np.dtype("S10")
        assert "messageBits" not in f["layer/1/neuron"]
        assert np.issubdtype(f["layer/1/weight"].dtype, np.integer)
        for key in ("stride", "padding", "dilation", "groups"):
            assert key in f["layer/1"]


# ----------------------------------------------------------------------------- writer refusals


def _dense_net(w: np.ndarray) -> Network:
    return Network((Dense("dense0", (w.shape[0],), w.astype(np.int32)),), (w.shape[1],))


@pytest.mark.parametrize(
    "weight,match",
    [
        (np.zeros((2, 3)), "all weights are zero"),
        (-np.ones((2, 3)), "every weight is <= 0"),
        (np.array([[300, -1], [2, 3]]), "exceed netx"),
        (np.array([[300, 1], [2, 3]]), "exceed 255"),
    ],
)
def test_writer_refuses_what_netx_corrupts(weight: np.ndarray, match: str, tmp_path: Path) -> None:
    target = tmp_path / "x.net"
    with pytest.raises(ExportError, match=f"dense0.*{match}"):
        write_netx(_dense_net(weight), target)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []  # no temporary left behind


def test_writer_does_not_clobber_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "x.net"
    target.write_bytes(b"keep me")
    with pytest.raises(ExportError):
        write_netx(_dense_net(np.zeros((2, 2))), target)
    assert target.read_bytes() == b"keep me"


# ----------------------------------------------------------------------------- bad files


def _good(tmp_path: Path) -> Path:
    return write_netx(small_conv_network(0), tmp_path / "good.net")


def _edit(path: Path, fn) -> Path:  # type: ignore[no-untyped-def]
    with h5py.File(path, "a") as f:
        fn(f)
    return path


@pytest.mark.parametrize(
    "edit,match",
    [
        (lambda f: f.__delitem__("layer/1/weight"), r"layer 1 \(conv\): 'weight': is missing"),
        (lambda f: f.__delitem__("layer/1/stride"), r"layer 1 \(conv\): 'stride': is missing"),
        (lambda f: f.__delitem__("layer/4/neuron/vThMant"), r"layer 4 \(dense\): 'vThMant': is missing"),
        (lambda f: f.__delitem__("layer"), r"'layer': group is missing"),
        (lambda f: f["layer/2"].__delitem__("type") or f["layer/2"].create_dataset("type", data=np.array([b"pool"], "S10")),
         r"layer 2 \(pool\): 'type': 'pool' cannot be deployed"),
        (lambda f: f["layer/2"].__delitem__("type") or f["layer/2"].create_dataset("type", data=np.array([b"concat"], "S10")),
         r"layer 2 \(concat\).*cannot be deployed"),
        (lambda f: f["layer/4"].__delitem__("type") or f["layer/4"].create_dataset("type", data=np.array([b"dnese"], "S10")),
         r"layer 4 \(dnese\): 'type': unknown layer type"),
        (lambda f: f["layer/4"].__delitem__("weight") or f["layer/4"].create_dataset("weight", data=np.ones((64, 7))),
         r"layer 4 \(dense\): 'weight'"),
        (lambda f: f["layer/1"].__delitem__("weight") or f["layer/1"].create_dataset("weight", data=np.array([b"x"])),
         r"layer 1 \(conv\): 'weight': has dtype"),
        (lambda f: f["layer/1/neuron"].__delitem__("vDecay") or f["layer/1/neuron"].create_dataset("vDecay", data=9000),
         r"layer 1 \(conv\).*v_decay"),
        (lambda f: f["layer/1"].__delitem__("shape") or f["layer/1"].create_dataset("shape", data=np.array([8, 16, 16])),
         r"layer 1 \(conv\).*does not match"),
        (lambda f: f["layer/1/neuron"].create_dataset("messageBits", data=0), r"messageBits"),
        (lambda f: f["layer/1"].__delitem__("weight") or f["layer/1"].create_dataset("weight", data=np.full((8, 2, 3, 3), np.nan)),
         r"NaN"),
        (lambda f: f["layer"].move("3", "7"), r"named 0\.\."),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path: Path, edit, match: str) -> None:  # type: ignore[no-untyped-def]
    path = _edit(_good(tmp_path), edit)
    with pytest.raises(ExportError, match=match) as info:
        read_netx(path)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_not_hdf5_and_truncated(tmp_path: Path) -> None:
    junk = tmp_path / "junk.net"
    junk.write_bytes(b"this is not HDF5" * 10)
    with pytest.raises(ExportError, match="junk.net: not a readable HDF5 file"):
        read_netx(junk)
    good = _good(tmp_path)
    cut = tmp_path / "cut.net"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ExportError, match="cut.net"):
        read_netx(cut)
    with pytest.raises(ExportError, match="no such file"):
        read_netx(tmp_path / "missing.net")


# ----------------------------------------------------------------------------- lava-dl loads our files


@pytest.mark.lava
@pytest.mark.parametrize("make", [small_conv_network, pilotnet_shaped_network])
def test_lava_dl_loads_written_files(make, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    net = make(1)
    path = write_netx(net, tmp_path / "n.net")
    lava_net = lava_netx.hdf5.Network(net_config=str(path))
    n_blocks = sum(layer.kind in ("dense", "conv") or (layer.kind == "input" and layer.neuron is not None)
                   for layer in net.layers)
    assert len(lava_net.layers) == n_blocks
    assert tuple(lava_net.out.shape) == net.out_shape[::-1]
