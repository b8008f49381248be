"""QAT = native simulator, bit for bit; the QAT ops against the simulator's kernels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings, strategies as st
from spikingjelly.activation_based import surrogate

from export.lower import check_deployable, lower, quant_to_ir
from export.netx import read_netx, write_netx
from hw_targets.errors import TargetLimitError
from neuromoco.models.registry import ModelConfig, build_model
from neuromoco.quant import ops
from neuromoco.quant.convert import fold_batch_norm, to_quant
from sims import kernels
from sims.native import simulate

STATE = st.integers(-(2**23) + 1, 2**23)
#: Inputs where ``u + a * 2**6`` passes float32's exact integers (2**24), as at a SEW merge summing up to three
#: synapse processes' 24-bit accumulators, while Lava's single wrap still brings u back into 24 bits (beyond
#: |u + a * 2**6| > 3 * 2**23 its fixed_pt model leaves u outside the register, which the chip cannot hold).
MERGED = st.integers(-(2**18), 2**18)


@settings(max_examples=200, deadline=None)
@example(u=1, v=0, a=2**18, i_decay=0, v_decay=0, bias=0, vth=1)  # u + a * 64 = 2**24 + 1: float32 loses the 1
@example(u=-3, v=0, a=-(2**18), i_decay=0, v_decay=0, bias=0, vth=1)
@given(u=STATE, v=STATE, a=st.one_of(st.integers(-70000, 70000), MERGED), i_decay=st.integers(0, 4096), v_decay=st.integers(0, 4096),
       bias=st.integers(-4096, 4095), vth=st.integers(1, 2**17 - 1))
def test_qat_step_equals_simulator_kernel(u: int, v: int, a: int, i_decay: int, v_decay: int, bias: int, vth: int) -> None:
    f = lambda x: torch.tensor([float(x)])  # noqa: E731
    i = lambda x: torch.tensor([x], dtype=torch.int32)  # noqa: E731
    uq, vq, sq = ops.lif_step(f(u), f(v), f(a), 4096 - i_decay, 4096 - v_decay, float(bias << 6), float(vth << 6),
                              surrogate.ATan())
    p = kernels.LifParams(4096 - i_decay, 4096 - v_decay, bias << 6, vth << 6)
    uk, vk, sk = kernels.lif_step(i(u), i(v), i(a), p)
    assert (int(uq), int(vq), bool(sq)) == (int(uk), int(vk), bool(sk))


def _random_quant_net(seed: int):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    cfg = ModelConfig(name="loihinet_s", current_decay=float(rng.choice([0.0, 0.25, 1.0, 410 / 4096])),
                      voltage_decay=float(rng.choice([0.0, 0.03125, 0.5, 1.0])),
                      threshold=float(rng.choice([0.25, 1.0, 2.0])))
    model = build_model(cfg, input_shape=(2, 20, 20), num_classes=6).eval()
    for block in model.blocks:  # random running statistics so the folding matters
        norm = getattr(block, "norm", None)
        if norm is not None:
            norm.running_mean.uniform_(-0.2, 0.2)
            norm.running_var.uniform_(0.5, 2.0)
    return to_quant(model, (2, 20, 20))


@pytest.mark.parametrize("seed", range(4))
def test_qat_hw_timing_equals_native_on_exported_file(seed: int, tmp_path: Path) -> None:
    qnet = _random_quant_net(seed)
    x = (torch.rand(7, 2, 2, 20, 20, generator=torch.Generator().manual_seed(seed)) < 0.35).float()
    with torch.no_grad():
        layers = qnet.run_layers(x)
    path = write_netx(quant_to_ir(qnet), tmp_path / "q.net")
    net = read_netx(path)
    steps = 7 + qnet.latency
    result = simulate(net, x.permute(1, 0, 2, 3, 4).numpy().astype(np.int32), steps, record_state=True)
    assert len(result.layer_names) == len(layers)
    for i, (s, u, v) in enumerate(layers):
        to_np = lambda t: t.permute(1, 0, *range(2, t.dim())).numpy()  # noqa: E731  (T, B, ...) -> (B, T, ...)
        assert np.array_equal(result.spikes[i], to_np(s).astype(bool)), f"{net.layers[i].name} spikes"
        if u is not None and v is not None:
            assert np.array_equal(result.u[i], to_np(u).astype(np.int32)), f"{net.layers[i].name} u"
            assert np.array_equal(result.v[i], to_np(v).astype(np.int32)), f"{net.layers[i].name} v"


def test_gradients_flow_through_integer_forward() -> None:
    qnet = _random_quant_net(0)
    qnet.train()
    x = (torch.rand(6, 3, 2, 20, 20) < 0.5).float()
    out = qnet(x).sum(0)
    out.sum().backward()
    grads = [b.weight.grad for b in qnet.blocks if hasattr(b, "weight")]
    assert all(g is not None for g in grads)
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_batch_norm_folding_is_exact_in_float() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 5, 3, bias=True)
    norm = torch.nn.BatchNorm2d(5).eval()
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    norm.weight.data.uniform_(0.5, 1.5)
    norm.bias.data.uniform_(-0.5, 0.5)
    x = torch.randn(2, 3, 8, 8)
    w, b = fold_batch_norm(conv.weight, conv.bias, norm)
    ref = norm(conv(x))
    assert torch.allclose(torch.nn.functional.conv2d(x, w, b), ref, atol=1e-5)  # float32 rounding of the fold


@pytest.mark.parametrize("name,match", [("sew_resnet18", "SEW residual|max pooling"), ("spikformer_2_256", "max pooling|self-attention")])
def test_non_deployable_backbones_refused(name: str, match: str) -> None:
    model = build_model(ModelConfig(name=name), input_shape=(2, 32, 32), num_classes=10)
    with pytest.raises(TargetLimitError, match=f"layer '.+'.*({match})"):
        lower(model, (2, 32, 32))


def test_max_pool_refused_with_the_way_out() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3), torch.nn.MaxPool2d(2))
    with pytest.raises(TargetLimitError, match=r"layer '1' \(MaxPool2d\).*use a strided conv"):
        check_deployable(model)


def test_dense_batch_norm_folds_too() -> None:
    torch.manual_seed(1)
    lin = torch.nn.Linear(6, 4)
    norm = torch.nn.BatchNorm1d(4).eval()
    norm.running_mean.uniform_(-1, 1)
    norm.running_var.uniform_(0.5, 2)
    x = torch.randn(3, 6)
    w, b = fold_batch_norm(lin.weight, lin.bias, norm)
    assert torch.allclose(torch.nn.functional.linear(x, w, b), norm(lin(x)), atol=1e-5)


def test_latency_coded_static_images_reach_the_chip_as_their_code(tmp_path: Path) -> None:
    """A loihinet trained on static images with latency coding: QAT, and what validation feeds the
    simulator, start from the latency code of the image, not from the thresholded image."""
    torch.manual_seed(0)
    model = build_model(ModelConfig(name="loihinet_s", encoding="latency"), input_shape=(1, 12, 12),
                        num_classes=4).eval()
    qnet = to_quant(model, (1, 12, 12))
    images = torch.rand(3, 1, 12, 12)
    frames = images.unsqueeze(0).repeat(6, 1, 1, 1, 1)  # a static dataset repeats the image over T
    code = model.encode_input(frames)
    spikes = qnet.input_spikes(frames)
    assert torch.equal(spikes, (code > 0).float())
    assert not torch.equal(spikes, (frames > 0).float()), "the code must differ from the thresholded image"
    with torch.no_grad():
        layers = qnet.run_layers(frames)
    net = read_netx(write_netx(quant_to_ir(qnet), tmp_path / "q.net"))
    result = simulate(net, spikes.transpose(0, 1).numpy().astype(np.int32), frames.shape[0] + qnet.latency)
    for i, (s, _, _) in enumerate(layers):
        assert np.array_equal(s.transpose(0, 1).numpy().astype(bool), result.spikes[i]), i
