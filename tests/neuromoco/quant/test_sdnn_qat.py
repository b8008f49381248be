"""Sigma-delta QAT = native simulator = Lava, message for message; the QAT ops against netx and the kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from export.ir import InputLayer, SigmaDeltaNeuron, sdnn_role
from export.lower import lower, quant_to_ir
from export.netx import read_netx, write_netx
from export.netx_dense import netx_dense_synapse
from hw_targets.errors import TargetLimitError
from neuromoco.models.loihinet_sdnn import LoihiSdnn, delta_reconstruction
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.quant import sdnn_ops
from neuromoco.quant.convert import to_quant
from neuromoco.quant.sdnn import MESSAGE_SCALE_CAP, QuantSdnnBlock, QuantSdnnNet, to_quant_sdnn
from sims.native import simulate
from sims.result import SimResult, first_difference

SHAPE = (2, 16, 16)


def _float_net(seed: int, classes: int = 5, batch_norm: bool = True) -> LoihiSdnn:
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="loihinet_sdnn_s", batch_norm=batch_norm), SHAPE, classes).eval()
    assert isinstance(model, LoihiSdnn)
    for block in model.blocks:  # random running statistics so the folding matters
        norm = getattr(block, "norm", None)
        if norm is not None:
            norm.running_mean.uniform_(-0.3, 0.3)
            norm.running_var.uniform_(0.5, 2.0)
            norm.bias.data.uniform_(-0.5, 0.5)
    return model


def _frames(seed: int, steps: int = 5, batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 4, (steps, batch, *SHAPE), generator=gen).float()  # event counts


def _bt(t: torch.Tensor) -> np.ndarray:
    """``(T, B, ...)`` -> ``(B, T, ...)`` int64."""
    return t.detach().transpose(0, 1).numpy().astype(np.int64)


def _assert_qat_equals(qnet: QuantSdnnNet, x: torch.Tensor, result: SimResult, states: bool = True) -> None:
    with torch.no_grad():
        layers = qnet.run_layers(x)
    assert len(layers) == len(result.layer_names)
    for i, (msg, sigma, act) in enumerate(layers):
        name = result.layer_names[i]
        assert np.array_equal(result.spikes[i], _bt(msg)), f"{name} messages"
        if states and sigma is not None and result.u[i] is not None:
            assert np.array_equal(result.u[i], _bt(sigma)), f"{name} sigma"
        if states and act is not None and result.v[i] is not None:
            assert np.array_equal(result.v[i], _bt(act)), f"{name} act"


@pytest.mark.parametrize("seed", range(3))
def test_qat_equals_native_every_layer_and_step(seed: int, tmp_path: Path) -> None:
    qnet = to_quant(_float_net(seed), SHAPE)
    assert isinstance(qnet, QuantSdnnNet)
    x = _frames(seed)
    net = read_netx(write_netx(quant_to_ir(qnet), tmp_path / "q.net"))
    xi = _bt(qnet.input_spikes(x)).astype(np.int32)
    result = simulate(net, xi, x.shape[0] + qnet.latency, record_state=True)
    _assert_qat_equals(qnet, x, result)
    assert any(np.count_nonzero(m) for m in result.spikes[1:-1]), "the hidden layers sent no messages"


def test_qat_equals_native_through_wraps() -> None:
    """Message scales far above the cap: the conv sums wrap at 24 bits and the states at int32, exactly
    as Lava's; QAT still equals the simulator."""
    qnet = to_quant(_float_net(7, batch_norm=False), SHAPE)
    for block in qnet.blocks:
        if isinstance(block, QuantSdnnBlock):
            block.in_scale.fill_(1.0)
            block.msg_scale.fill_(1 << 14)
            block.weight.data *= 40.0  # fill the 8-bit mantissas at this scale
    x = _frames(3) * 8
    with torch.no_grad():
        conv_sum = qnet.blocks[0].synapse(qnet._input_run(x)[0].flatten(0, 1))
    raw = torch.nn.functional.conv2d(qnet._input_run(x)[0].flatten(0, 1), qnet.blocks[0].int_weight(), stride=2,
                                     padding=1)
    assert not torch.equal(conv_sum, raw), "the test should make the 24-bit accumulator wrap"
    net = quant_to_ir(qnet)
    result = simulate(net, _bt(qnet.input_spikes(x)).astype(np.int32), x.shape[0] + qnet.latency, record_state=True)
    _assert_qat_equals(qnet, x, result)


def test_qat_equals_lava(tmp_path: Path, lava_netx: object) -> None:
    from sims.lava import run_lava

    qnet = to_quant(_float_net(1), SHAPE)
    x = _frames(1, steps=3, batch=1)
    net = quant_to_ir(qnet)
    path = write_netx(net, tmp_path / "q.net")
    xi = _bt(qnet.input_spikes(x)).astype(np.int32)
    steps = x.shape[0] + qnet.latency
    lava = run_lava(path, xi, steps, net=net)
    assert first_difference(simulate(net, xi, steps), lava) is None
    _assert_qat_equals(qnet, x, lava, states=False)


def test_lowered_network_is_delta_sigma_delta_sigma() -> None:
    model = _float_net(0)
    net = lower(model, SHAPE)
    assert net.family == "SDNN"
    assert isinstance(net.layers[0], InputLayer)
    roles = [sdnn_role(layer) for layer in net.layers if isinstance(getattr(layer, "neuron", None), SigmaDeltaNeuron)]
    assert roles == ["Delta"] + ["SigmaDelta"] * (model.latency - 1) + ["Sigma"]
    assert [layer.kind for layer in net.layers] == ["input", "conv", "conv", "conv", "flatten", "dense", "dense"]
    for layer in net.layers[1:]:
        weight = getattr(layer, "weight", None)
        if weight is not None:
            assert int(np.abs(weight).max()) <= 127
    assert net.layers[-1].bias is None  # type: ignore[union-attr]


def test_scales_fill_the_weights_up_to_the_cap() -> None:
    qnet = to_quant_sdnn(_float_net(2), SHAPE)
    for block in qnet.blocks:
        if isinstance(block, QuantSdnnBlock):
            peak = int(block.int_weight().abs().max())
            assert float(block.msg_scale) <= MESSAGE_SCALE_CAP
            assert peak == 127 or float(block.msg_scale) == MESSAGE_SCALE_CAP


def test_to_quant_refuses_other_models() -> None:
    with pytest.raises(TargetLimitError, match="loihinet_sdnn"):
        to_quant_sdnn(build_model(ModelConfig(name="loihinet_s"), SHAPE, 5), SHAPE)


def test_gradients_flow_through_the_integer_forward() -> None:
    qnet = to_quant(_float_net(0), SHAPE)
    qnet.train()
    out = qnet(_frames(0))
    assert out.shape == (5 + qnet.latency, 3, 5)
    out.mean(0).logsumexp(1).sum().backward()
    grads = [b.weight.grad for b in qnet.blocks if isinstance(b, QuantSdnnBlock)]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_float_and_qat_read_outs_agree_on_the_class() -> None:
    """The QAT twin of a float network computes nearly the same read-out (quantization error only)."""
    model = _float_net(4, classes=10)
    qnet = to_quant(model, SHAPE)
    x = _frames(4, batch=8)
    with torch.no_grad():
        f, q = model(x).mean(0), qnet(x).mean(0)
    assert float((f - q).abs().max()) < 0.2 * float(f.abs().max())


@settings(max_examples=60, deadline=None)
@given(w=hnp.arrays(np.int64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6), elements=st.integers(-127, 127)))
def test_dense_scale_bits_are_netx_weight_exponent(w: np.ndarray) -> None:
    if w.max() <= 0:
        return  # netx refuses these (all-zero) or corrupts them (all <= 0); the writer refuses both
    syn = netx_dense_synapse(w)
    bits = sdnn_ops.netx_dense_scale_bits(torch.as_tensor(w, dtype=torch.float64))
    assert syn.exact and syn.weight_exp == -bits
    assert np.array_equal(syn.weight_eff, w << bits)


@settings(max_examples=50, deadline=None)
@given(acts=hnp.arrays(np.int64, (6, 4), elements=st.integers(0, 2**26)), vth=st.integers(0, 2**12))
def test_delta_encode_sums_to_act_within_threshold(acts: np.ndarray, vth: int) -> None:
    """The receiver's running sum of ``message << 6`` trails ``act`` by less than the threshold plus
    the shifted-out bits of every message sent (Lava 0.10 drops them)."""
    act = torch.as_tensor(acts, dtype=torch.float64)
    msgs = sdnn_ops.delta_encode(act, float(vth << 12), 6).numpy()
    recon = np.cumsum(msgs.astype(np.int64) << 6, axis=0)
    sent = np.cumsum(msgs != 0, axis=0)
    assert np.all(np.abs(acts - recon) < (vth << 12) + 64 * sent + 64)


@settings(max_examples=40, deadline=None)
@given(a=hnp.arrays(np.float32, (7, 5), elements=st.floats(0, 4, width=32)), threshold=st.floats(0, 1))
def test_float_delta_reconstruction_trails_by_less_than_the_threshold(a: np.ndarray, threshold: float) -> None:
    r = delta_reconstruction(torch.as_tensor(a), threshold).numpy()
    assert np.all(np.abs(r - a) < threshold + 1e-6) or threshold == 0
