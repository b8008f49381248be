"""The native simulator equals Lava's fixed_pt run at every layer and step (spikes, u and v)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from shared_data import shared_file
from export.examples import small_conv_network, random_spikes
from export.netx import read_netx, write_netx
from netgen import KINDS, random_case
from sims.lava import run_lava
from sims.native import simulate
from sims.result import first_difference
from hw_targets.errors import ExportError

pytestmark = pytest.mark.lava


def _assert_same(path: Path, spikes: np.ndarray, steps: int | None = None,  # type: ignore[no-untyped-def]
                 input_shape: tuple[int, ...] | None = None, **options) -> None:
    net = read_netx(path, input_shape)
    native = simulate(net, spikes, steps, record_state=True, **options)
    lava = run_lava(path, spikes, steps, record_state=True, net=net, **options)
    diff = first_difference(native, lava, states=True)
    assert diff is None, diff
    assert np.array_equal(native.synops, lava.synops)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
def test_random_networks_match_lava(seed: int, kind: str, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    case = random_case(seed, kind)
    path = write_netx(case.net, tmp_path / f"{kind}-{seed}.net")
    _assert_same(path, case.spikes, case.steps, **case.options)


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_matches_lava(kind: str, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """One fixed case per kind, so every kind runs even when hypothesis draws unevenly."""
    case = random_case(1234 + KINDS.index(kind), kind)
    path = write_netx(case.net, tmp_path / "n.net")
    _assert_same(path, case.spikes, case.steps, **case.options)


def test_extreme_case_really_wraps_and_saturates() -> None:
    """The 'extreme' kind does drive u past 24 bits and v into saturation (else the test above proves little)."""
    wrapped = saturated = False
    for seed in range(40):
        case = random_case(seed, "extreme")
        r = simulate(case.net, case.spikes, case.steps, record_state=True)
        for u, v in zip(r.u, r.v):
            if u is None or v is None:
                continue
            wrapped |= bool(np.any(np.abs(u.astype(np.int64)) > (1 << 22)))
            saturated |= bool(np.any(np.abs(v) == (1 << 23) - 1))
    assert wrapped and saturated


def test_small_conv_demo_network(lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write_netx(small_conv_network(0), tmp_path / "demo.net")
    _assert_same(path, random_spikes(0, (2, 10, 2, 34, 34), 0.15))


@pytest.mark.parametrize("folder,name", [("mnist", "trained_mnist_network.net"), ("oxford", "network.net"),
                                         ("tinynet", "tiny.net")])
def test_intel_files_match_lava(folder: str, name: str, lava_netx) -> None:  # type: ignore[no-untyped-def]
    path = shared_file("lava_netx", folder, name)
    net = read_netx(path)
    rng = np.random.default_rng(7)
    if net.layers[0].kind == "input":
        x = rng.integers(0, 60, size=(1, 12, *net.input_shape))
    else:
        x = rng.random((1, 25, *net.input_shape)) < 0.4
    _assert_same(path, x)
    _assert_same(path, x, reset_interval=8, reset_offset=1)


def test_tinynet_golden_output(lava_netx) -> None:  # type: ignore[no-untyped-def]
    """lava-dl's tinynet test: input bias from input_bias.npy, output[..., 2:17] equals golden[..., 1:].

    lava-dl resets layer i's u and v after step k = i - 1 (mod 17) with Reset processes; that is
    exactly netx's LIFReset with reset_interval=17, reset_offset=0 (layer i resets before step i).
    """
    net = read_netx(shared_file("lava_netx", "tinynet", "tiny.net"))
    bias = np.load(shared_file("lava_netx", "tinynet", "input_bias.npy")).transpose(2, 1, 0)  # W,H,C -> C,H,W
    golden = np.load(shared_file("lava_netx", "tinynet", "output.npy"))[0]  # (C, H, W, T)
    r = simulate(net, np.zeros((1, *net.input_shape), np.int32), steps=20, reset_interval=17, input_bias=bias)
    out = np.moveaxis(r.out_spikes[0], 0, -1)  # (C, H, W, steps)
    assert np.array_equal(out[..., 2:17], golden[..., 1:].astype(bool))


def test_pilotnet_hardware_golden_currents() -> None:
    """Loihi 2 hardware traces: every layer's current u at step 15 (reference README in shared/data/lava_netx)."""
    folder = shared_file("lava_netx", "pilotnet_lif")
    net = read_netx(folder / "network.net")
    image = np.load(folder / "image.npy").transpose(2, 1, 0)  # W,H,C -> C,H,W
    r = simulate(net, np.zeros((15, *net.input_shape), np.int32), steps=15, reset_interval=16,
                 input_bias=image, record_state=True)
    golden = {2: "conv-1", 3: "conv-2", 4: "conv-3", 5: "conv-4", 7: "fc-0", 8: "fc-1", 9: "fc-2", 10: "fc-3"}
    for index, stem in golden.items():
        g = np.load(folder / f"{stem}-u.npy")[..., 14]
        g = np.transpose(g, tuple(range(g.ndim - 1, -1, -1)))  # XYZ -> C,H,W
        u = r.u[index]
        assert u is not None
        assert np.array_equal(u[0, 14], g.astype(np.int32)), f"layer {net.layers[index].name} ({stem}) differs"


def test_pilotnet_spike_traces_match_lava_layers() -> None:
    """The golden spike traces conv-K.npy / fc-K.npy: our spikes at steps 0..14 equal them."""
    folder = shared_file("lava_netx", "pilotnet_lif")
    net = read_netx(folder / "network.net")
    image = np.load(folder / "image.npy").transpose(2, 1, 0)
    r = simulate(net, np.zeros((15, *net.input_shape), np.int32), steps=15, reset_interval=16, input_bias=image)
    for index, stem in {1: "conv-0", 2: "conv-1", 7: "fc-0", 9: "fc-2"}.items():
        g = np.load(folder / f"{stem}.npy")[..., :15]
        g = np.transpose(g, tuple(range(g.ndim - 1, -1, -1)))  # (T, C, H, W) / (T, N)
        assert np.array_equal(r.spikes[index][0], g), f"{stem} spikes differ"


# ----------------------------------------------------------------------------- slayer's own exporter


def _slayer_file(tmp_path: Path, conv: bool, seed: int, input_layer: bool = True) -> tuple[Path, tuple[int, ...]]:
    from sims.lava_compat import import_netx

    import_netx()
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    params = {"threshold": 0.5, "current_decay": 0.25, "voltage_decay": 0.03, "requires_grad": False}
    if conv:
        blocks = [
            slayer.block.cuba.Conv(params, 2, 6, 3, stride=2, padding=1, weight_scale=3),
            slayer.block.cuba.Conv(params, 6, 8, 3, stride=1, padding=0, weight_scale=3),
            slayer.block.cuba.Flatten(),
            slayer.block.cuba.Dense(params, 8 * 3 * 3, 5, weight_scale=3),
        ]
        in_shape: tuple[int, ...] = (2, 10, 10)
    else:
        blocks = [slayer.block.cuba.Dense(params, 20, 16, weight_scale=3), slayer.block.cuba.Dense(params, 16, 6, weight_scale=3)]
        in_shape = (20,)
    x = (torch.rand(1, *in_shape, 8) < 0.3).float()  # slayer: (N, C, H, W, T)
    for block in blocks:
        x = block(x)  # one forward pass so conv shapes are known
    path = tmp_path / f"slayer-{conv}-{seed}-{input_layer}.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        offset = 0
        if conv and input_layer:
            g = layer.create_group("0")
            g.create_dataset("type", (1,), "S10", [b"input"])
            g.create_dataset("shape", data=np.array(in_shape))
            offset = 1
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i + offset)))
    return path, in_shape


@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_slayer_exported_files_match_lava(conv: bool, seed: int, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, in_shape = _slayer_file(tmp_path, conv, seed)
    x = random_spikes(seed, (1, 12, *in_shape), 0.4)
    _assert_same(path, x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slayer_conv_first_files_match_lava(seed: int, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Files as slayer's exporter writes them for a conv-first network: no input layer; the input
    shape comes from the caller (Lava: ``netx.hdf5.Network(input_shape=(W, H, C))``)."""
    path, in_shape = _slayer_file(tmp_path, True, seed, input_layer=False)
    with h5py.File(path) as f:
        assert f["layer/0/type"][0] == b"conv"
    x = random_spikes(seed, (1, 12, *in_shape), 0.4)
    _assert_same(path, x, input_shape=in_shape)


def test_conv_first_file_without_input_shape_names_the_fix(lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path, in_shape = _slayer_file(tmp_path, True, 0, input_layer=False)
    with pytest.raises(ExportError, match=r"layer 0 \(conv\): 'type': conv as the first layer needs the input shape"):
        read_netx(path)
    with pytest.raises(ExportError, match=r"layer 0 \(conv\).*weight has shape"):
        read_netx(path, (3, *in_shape[1:]))  # wrong channel count
