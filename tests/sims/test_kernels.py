"""The integer kernels against slow reference code written from the Loihi/Lava equations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from hw_targets import constants as C
from export.netx_dense import netx_dense_synapse
from sims.kernels import LifParams, apply_weight_exp, lif_step, wrap_signed

I32 = st.integers(-(2**31), 2**31 - 1)
STATE = st.integers(-(2**23) + 1, 2**23)


def _wrap32(x: int) -> int:
    return (x + 2**31) % 2**32 - 2**31


def _trunc_shift12(x: int) -> int:
    return -((-x) >> 12) if x < 0 else x >> 12


def reference_lif(u: int, v: int, a: int, i_decay: int, v_decay: int, bias: int, vth: int) -> tuple[int, int, bool]:
    """One neuron, one step, from reference section 7.1 with Lava's int32 storage."""
    u1 = _wrap32(_trunc_shift12(u * (4096 - i_decay)) + _wrap32(a * 64))
    if u1 > 2**23:
        u1 -= 2**24
    elif u1 <= -(2**23):
        u1 += 2**24
    v1 = _wrap32(_trunc_shift12(v * (4096 - v_decay)) + u1 + bias * 64)
    v1 = max(-(2**23 - 1), min(2**23 - 1, v1))
    spike = v1 > vth * 64
    return u1, (0 if spike else v1), spike


@settings(max_examples=300, deadline=None)
@given(u=STATE, v=STATE, a=st.one_of(st.integers(-300, 300), st.integers(-(2**23), 2**23)),
       i_decay=st.integers(0, 4096), v_decay=st.integers(0, 4096),
       bias=st.integers(-4096, 4095), vth=st.integers(0, 2**17))
def test_lif_step_matches_reference(u: int, v: int, a: int, i_decay: int, v_decay: int, bias: int, vth: int) -> None:
    p = LifParams(4096 - i_decay, 4096 - v_decay, bias << C.BIAS_EXP, vth << C.VTH_SHIFT)
    t = lambda x: torch.tensor([x], dtype=torch.int32)  # noqa: E731
    un, vn, s = lif_step(t(u), t(v), t(a), p)
    assert (int(un), int(vn), bool(s)) == reference_lif(u, v, a, i_decay, v_decay, bias, vth)


@settings(max_examples=100, deadline=None)
@given(u=STATE, v=STATE, i_decay=st.integers(0, 4096), v_decay=st.integers(1, 4096))
def test_zero_input_zero_bias_only_decays(u: int, v: int, i_decay: int, v_decay: int) -> None:
    p = LifParams(4096 - i_decay, 4096 - v_decay, 0, (2**17 - 1) << 6)
    un, vn, _ = lif_step(torch.tensor([u], dtype=torch.int32), torch.tensor([v], dtype=torch.int32),
                         torch.zeros(1, dtype=torch.int32), p)
    assert abs(int(un)) <= abs(u)
    assert int(un) == _trunc_shift12(u * (4096 - i_decay))


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_states_stay_in_24_bits(seed: int) -> None:
    """Inputs that fit Lava's 24-bit ports keep u in (-2**23, 2**23] and v in +-(2**23 - 1)."""
    g = torch.Generator().manual_seed(seed)
    u = torch.zeros(64, dtype=torch.int32)
    v = torch.zeros(64, dtype=torch.int32)
    p = LifParams(4096, 4096 - 7, 4000 << 6, (2**17 - 1) << 6)
    for _ in range(40):
        a = torch.randint(-(2**17) + 1, 2**17, (64,), generator=g, dtype=torch.int32)
        u, v, _ = lif_step(u, v, a, p)
        assert int(u.max()) <= 2**23 and int(u.min()) > -(2**23)
        assert int(v.abs().max()) <= 2**23 - 1


def test_inputs_not_mutated() -> None:
    u = torch.tensor([100, -5], dtype=torch.int32)
    v = torch.tensor([7000, 3], dtype=torch.int32)
    a = torch.tensor([3, 4], dtype=torch.int32)
    copies = [x.clone() for x in (u, v, a)]
    lif_step(u, v, a, LifParams(4000, 4000, 64, 64))
    assert all(torch.equal(x, y) for x, y in zip((u, v, a), copies))


def test_conv_accumulator_wraps() -> None:
    x = torch.tensor([2**23, 2**23 - 1, -(2**23), -(2**23) - 1, 3 * 2**24 + 5])
    assert wrap_signed(x, 24).tolist() == [-(2**23), 2**23 - 1, -(2**23), 2**23 - 1, 5]


def _effective(weights: list[int]) -> list[int]:
    """What one spike on each input delivers after netx + Lava's weight handling."""
    syn = netx_dense_synapse(np.array([weights]))
    acc = torch.from_numpy(syn.weight_eff[0])
    return apply_weight_exp(acc, syn.weight_exp).tolist()


@pytest.mark.parametrize(
    "stored,effective",
    [([-2], [0]), ([-64], [0]), ([-2, -4], [-2, -2]), ([-256, -2], [-254, -2]), ([0, -256], [0, -128])],
)
def test_netx_corrupts_non_positive_dense_weights(stored: list[int], effective: list[int]) -> None:
    """Reference section 6.1, observed in Lava runs."""
    assert _effective(stored) == effective


@settings(max_examples=200, deadline=None)
@given(w=st.lists(st.integers(-256, 254), min_size=2, max_size=12).filter(lambda w: max(w) > 0))
def test_netx_dense_exact_when_max_positive(w: list[int]) -> None:
    syn = netx_dense_synapse(np.array([w]))
    assert syn.exact
    assert _effective(w) == w


def test_all_zero_dense_refused() -> None:
    with pytest.raises(ValueError, match="all-zero"):
        netx_dense_synapse(np.zeros((2, 2), np.int64))


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), scale=st.sampled_from([2**4, 2**12, 2**20, 2**31 - 1]))
def test_compiled_lif_matches_torch_reference(seed: int, scale: int) -> None:
    """The fused numba neuron loop (input layer kernel, 2 parts; int32 arithmetic) equals ``lif_step``
    step by step, wraps included."""
    from sims.jit_kernels import input_lif_layer

    rng = np.random.default_rng(seed)
    batch, steps, n = 2, 9, 37
    x = rng.integers(-scale, scale, (batch, steps - 2, n), endpoint=True).astype(np.int32)
    i_mult = (4096 - rng.integers(0, 4097, n)).astype(np.int64)
    v_mult = (4096 - rng.integers(0, 4097, n)).astype(np.int64)
    bias = (rng.integers(-4096, 4096, n) << C.BIAS_EXP).astype(np.int64)
    vth = (rng.integers(0, 2**17, n) << C.VTH_SHIFT).astype(np.int64)
    reset = np.zeros(steps, np.bool_)
    reset[5] = True
    spikes = np.empty((batch, steps, n), np.bool_)
    u_rec = np.empty((batch, steps, n), np.int32)
    v_rec = np.empty((batch, steps, n), np.int32)
    synops = np.zeros(batch * 2, np.int64)
    consts = [a.astype(np.int32) for a in (i_mult, v_mult, bias, vth)]
    input_lif_layer(0, batch * 2, x, 2, *consts, reset, spikes, u_rec, v_rec, True, synops)

    p = LifParams(torch.from_numpy(i_mult), torch.from_numpy(v_mult), torch.from_numpy(bias), torch.from_numpy(vth))
    u = torch.zeros((batch, n), dtype=torch.int32)
    v = torch.zeros((batch, n), dtype=torch.int32)
    for k in range(steps):
        if reset[k]:
            u, v = torch.zeros_like(u), torch.zeros_like(v)
        a = torch.from_numpy(x[:, k]) if k < x.shape[1] else torch.zeros((batch, n), dtype=torch.int32)
        u, v, s = lif_step(u, v, a, p)
        assert np.array_equal(u_rec[:, k], u.numpy()) and np.array_equal(v_rec[:, k], v.numpy()), k
        assert np.array_equal(spikes[:, k], s.numpy()), k


def _brute_fanout(w: np.ndarray, in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                  stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int],
                  groups: int) -> np.ndarray:
    fan = np.zeros(in_shape, np.int64)
    per_in, per_out = in_shape[0] // groups, out_shape[0] // groups
    for o in range(out_shape[0]):
        for oy in range(out_shape[1]):
            for ox in range(out_shape[2]):
                for ci in range(per_in):
                    for ky in range(w.shape[2]):
                        for kx in range(w.shape[3]):
                            y = oy * stride[0] - padding[0] + ky * dilation[0]
                            x = ox * stride[1] - padding[1] + kx * dilation[1]
                            if w[o, ci, ky, kx] and 0 <= y < in_shape[1] and 0 <= x < in_shape[2]:
                                fan[o // per_out * per_in + ci, y, x] += 1
    return fan


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_conv_fanout_counts_every_synapse(seed: int) -> None:
    """``conv_fanout`` against a loop over every synapse, on shapes where the output does not cover the
    input (a 2-wide kernel with padding 1 on a 1-row input once crashed it)."""
    from export.ir import Conv, CubaNeuron, conv_output_hw
    from sims.counts import conv_fanout

    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    c_in = groups * int(rng.integers(1, 3))
    in_shape = (c_in, int(rng.integers(1, 6)), int(rng.integers(1, 6)))
    k = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
    dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
    hw = conv_output_hw(in_shape[1:], k, stride, padding, dilation)
    if min(hw) < 1:
        return
    c_out = groups * int(rng.integers(1, 3))
    w = rng.integers(-2, 3, (c_out, c_in // groups, *k)).astype(np.int32)
    w[0, 0, 0, 0] = 1
    layer = Conv("c", (c_out, *hw), w, stride, padding, dilation, groups, None, CubaNeuron(0, 0, 1))
    expected = _brute_fanout(w, in_shape, (c_out, *hw), stride, padding, dilation, groups)
    assert np.array_equal(conv_fanout(layer, in_shape), expected)
    assert np.array_equal(conv_fanout(layer, in_shape, rows=(0, 1)),
                          _brute_fanout(w, in_shape, (c_out, 1, hw[1]), stride, padding, dilation, groups))
