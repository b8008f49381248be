"""Sigma-delta (graded spike) networks: the native simulator against Intel's golden data and Lava.

The golden data are lava-dl's own (../shared/data/lava_netx/README.md): Intel's PilotNet SDNN
output and layer traces, and the block-level arrays of lava-dl's ``TestSDNBlocks``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from export.ir import Conv, Dense, InputLayer, Network, SigmaDeltaNeuron
from export.netx import read_netx, write_netx
from shared_data import shared_file
from sims.native import simulate
from sims.result import first_difference


def _xyzt_to_tchw(a: np.ndarray) -> np.ndarray:
    """lava's (W, H, C, T) / (N, T) -> (T, C, H, W) / (T, N)."""
    return np.transpose(a, tuple(range(a.ndim - 1, -1, -1)))


def _pilotnet() -> tuple[Path, Network, np.ndarray]:
    folder = shared_file("lava_netx", "pilotnet_sdnn")
    net = read_netx(folder / "network.net")
    frame = np.load(folder / "input.npy")[..., 0].transpose(2, 1, 0)  # (W, H, C, 1) -> (C, H, W)
    return folder, net, frame


def test_pilotnet_sdnn_golden_output() -> None:
    """lava-dl's test_pilotnet_sdnn: the frame repeated every step, len(net.layers) = 9 steps, the
    output layer's messages must equal output.npy with zero absolute difference."""
    folder, net, frame = _pilotnet()
    steps = sum(layer.has_neurons for layer in net.layers)
    assert steps == 9
    r = simulate(net, np.repeat(frame[None], steps, axis=0), steps)
    golden = np.load(folder / "output.npy")  # (1, 9)
    assert r.out_spikes.dtype == np.int32
    assert np.abs(r.out_spikes[0].T - golden).sum() == 0


def test_pilotnet_sdnn_layer_traces() -> None:
    """The traces beside the golden output: the input layer's messages (act0) and the sigma of
    the first two conv layers (sigma1, sigma2), 20 steps each."""
    folder, net, frame = _pilotnet()
    r = simulate(net, np.repeat(frame[None], 20, axis=0), 20, record_state=True)
    assert np.array_equal(r.spikes[0][0], _xyzt_to_tchw(np.load(folder / "act0.npy")))
    for index, name in ((1, "sigma1"), (2, "sigma2")):
        sigma = r.u[index]
        assert sigma is not None
        assert np.array_equal(sigma[0], _xyzt_to_tchw(np.load(folder / f"{name}.npy"))), name


def _tiny(name: str) -> np.ndarray:
    return np.load(shared_file("lava_netx", "tinynet_sdnn", f"{name}.npy"))


def test_tinynet_sdnn_delta_input_block() -> None:
    """lava-dl's TestSDNBlocks.test_input: a Delta encoder (vth 20) on a sine-modulated input."""
    steps = 15
    data = np.repeat(_tiny("input_bias")[..., None], steps, axis=3) * np.sin(2 * np.pi * np.arange(steps) / steps)
    net = Network((InputLayer("in", (3, 16, 16), SigmaDeltaNeuron(np.int32(20))),))
    r = simulate(net, _xyzt_to_tchw(data.astype(int)), steps)
    assert np.array_equal(r.spikes[0][0], _xyzt_to_tchw(_tiny("input")))


def test_tinynet_sdnn_conv_block() -> None:
    """TestSDNBlocks.test_conv: a stride-2 SigmaDelta conv with bias, one step (bias only)."""
    kernel = _tiny("layer1_kernel")  # Lava's (C_out, kW, kH, C_in), a true convolution
    weight = np.ascontiguousarray(kernel[:, ::-1, ::-1, :].transpose(0, 3, 2, 1)).astype(np.int32)
    conv = Conv("c", (24, 6, 6), weight, stride=(2, 2), bias=_tiny("layer1_bias").astype(np.int32),
                neuron=SigmaDeltaNeuron(np.int32(20)))
    r = simulate(Network((conv,), (3, 16, 16)), _xyzt_to_tchw(_tiny("input")), 1)
    assert np.array_equal(r.spikes[0][0], _xyzt_to_tchw(_tiny("layer1"))[:1])


def test_tinynet_sdnn_sigma_dense_block() -> None:
    """TestSDNBlocks.test_dense: a Sigma readout behind a dense synapse fed binary (the block's
    default input_message_bits = 0) with the conv block's messages, 16 steps."""
    weight = _tiny("layer2_weight").astype(np.int32)
    dense = Dense("d", (100,), weight, neuron=SigmaDeltaNeuron(np.int32(0), sigma_output=True))
    r = simulate(Network((dense,), (864,)), _tiny("layer1").reshape(-1, 16).T, 16)
    assert np.array_equal(r.spikes[0][0], _tiny("layer2").T)


def test_sdnn_netx_round_trip(tmp_path: Path) -> None:
    folder, net, _ = _pilotnet()
    again = read_netx(write_netx(net, tmp_path / "p.net"))
    from export.ir import networks_equal

    assert networks_equal(net, again)
    with h5py.File(tmp_path / "p.net") as f:  # as slayer writes it; netx ignores 'activation'
        assert f["layer/9/neuron/sigma_output"][()]
        assert "spikeExp" not in f["layer/1/neuron"]


# ----------------------------------------------------------------------------- native == Lava


def _assert_same(path: Path, x: np.ndarray, steps: int | None = None) -> None:
    from sims.lava import run_lava

    net = read_netx(path)
    native = simulate(net, x, steps, record_state=True)
    lava = run_lava(path, x, steps, record_state=True, net=net)
    diff = first_difference(native, lava, states=True)
    assert diff is None, diff
    assert any(np.any(s != 0) for s in native.spikes[1:]), "no layer sent a message: the test proves little"


@pytest.mark.lava
def test_pilotnet_sdnn_random_graded_input_matches_lava(lava_netx) -> None:  # type: ignore[no-untyped-def]
    """Intel's network on input that changes every step: every layer's messages, sigma and act."""
    folder, net, frame = _pilotnet()
    rng = np.random.default_rng(3)
    x = frame[None] + rng.integers(-20, 21, size=(6, *frame.shape))
    _assert_same(folder / "network.net", x[None], 8)


def _slayer_sdnn_file(tmp_path: Path, conv: bool, seed: int) -> Path:
    """A sigma-delta network written by lava-dl's own exporter (slayer.block.sigma_delta), random
    weights (slayer's initialisation scaled by weight_scale) and random thresholds per block."""
    from sims.lava_compat import import_netx

    import_netx()
    import torch
    from lava.lib.dl import slayer

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)

    def params() -> dict[str, object]:
        return {"threshold": float(rng.choice([0.0, 0.05, 0.1, 0.3])), "activation": torch.nn.functional.relu,
                "requires_grad": False}

    sd = slayer.block.sigma_delta
    scale = int(rng.integers(1, 4))
    if conv:
        blocks = [sd.Input(params()), sd.Conv(params(), 2, 6, 3, stride=2, padding=1, weight_scale=scale),
                  sd.Conv(params(), 6, 8, 3, weight_scale=scale), sd.Flatten(),
                  sd.Dense(params(), 8 * 3 * 3, 12, weight_scale=scale), sd.Output(params(), 12, 4, weight_scale=scale)]
        x = torch.rand(1, 2, 10, 10, 4)
    else:
        blocks = [sd.Input(params()), sd.Dense(params(), 20, 16, weight_scale=scale),
                  sd.Dense(params(), 16, 10, weight_scale=scale), sd.Output(params(), 10, 3, weight_scale=scale)]
        x = torch.rand(1, 20, 4)
    for block in blocks:
        x = block(x)  # one forward pass so that the shapes are known
    path = tmp_path / f"slayer-sdnn-{conv}-{seed}.net"
    with h5py.File(path, "w") as f:
        layer = f.create_group("layer")
        for i, block in enumerate(blocks):
            block.export_hdf5(layer.create_group(str(i)))
    return path


@pytest.mark.lava
@pytest.mark.parametrize("conv", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slayer_sdnn_files_match_lava(conv: bool, seed: int, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = _slayer_sdnn_file(tmp_path, conv, seed)
    net = read_netx(path)
    assert net.family == "SDNN"
    rng = np.random.default_rng(seed)
    x = rng.integers(-120, 121, size=(1, 10, *net.input_shape))
    x[:, 5:7] = x[:, 4:5]  # held input: only residues move
    _assert_same(path, x)
