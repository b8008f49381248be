"""The integer CUBA-LIF step exists in three forms; all three equal one specification.

The forms: the torch reference (``sims.kernels.lif_step``), the compiled int32 step the
native simulator runs (``sims.jit_kernels._lif_frame``) and the differentiable one QAT
trains with (``neuromoco.quant.ops.lif_step``). The specification is written here from
Lava 0.10's ``PyLifModelBitAcc`` in plain Python integers (reference loihi_netx.md
section 4), with every constant taken from ``hw_targets.constants``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from hw_targets import constants as C

HALF, FULL = C.STATE_HALF, 2 * C.STATE_HALF


def _trunc_decay(x: int, decay: int) -> int:
    """``x * (4096 - decay) / 4096`` rounded toward zero (Lava: sign(x) * (|x| * m >> 12))."""
    m = C.DECAY_UNITY - decay
    mag = (abs(x) * m) >> C.DECAY_SHIFT
    return -mag if x < 0 else mag


def spec_step(u: int, v: int, a: int, i_decay: int, v_decay: int, bias: int, v_th_mant: int) -> tuple[int, int, bool]:
    """One neuron, one step, as Lava's fixed-point LIF computes it."""
    u = _trunc_decay(u, i_decay) + (a << C.ACT_SHIFT)
    if u > HALF:  # u wraps once into (-2**23, 2**23]
        u -= FULL
    elif u <= -HALF:
        u += FULL
    v = _trunc_decay(v, v_decay) + u + (bias << C.BIAS_EXP)
    v = max(-C.V_MAX, min(C.V_MAX, v))
    spike = v > (v_th_mant << C.VTH_SHIFT)
    return u, (0 if spike else v), spike


states = st.integers(-HALF + 1, HALF)
volts = st.integers(-C.V_MAX, C.V_MAX)
# |a << 6| + |u| stays inside what Lava's one-step wrap handles (no second wrap needed)
inputs = st.integers(-(1 << 16), 1 << 16)
decays = st.integers(0, C.DECAY_MAX)
biases = st.integers(-(1 << (C.BIAS_MANT_BITS - 1)), (1 << (C.BIAS_MANT_BITS - 1)) - 1)
thresholds = st.integers(0, C.VTH_MANT_MAX)


@settings(max_examples=60, deadline=None)
@given(
    u=st.lists(states, min_size=1, max_size=16), seed=st.integers(0, 2**31 - 1),
    i_decay=decays, v_decay=decays, bias=biases, v_th_mant=thresholds,
)
def test_three_forms_equal_the_spec(u: list[int], seed: int, i_decay: int, v_decay: int, bias: int,
                                    v_th_mant: int) -> None:
    from neuromoco.quant.ops import lif_step as qat_step
    from sims.jit_kernels import _lif_frame
    from sims.kernels import LifParams, lif_step as torch_step

    n = len(u)
    rng = np.random.default_rng(seed)
    v = rng.integers(-C.V_MAX, C.V_MAX + 1, size=n).tolist()
    a = rng.integers(-(1 << 16), (1 << 16) + 1, size=n).tolist()
    expected = [spec_step(u[i], v[i], a[i], i_decay, v_decay, bias, v_th_mant) for i in range(n)]
    exp_u = [e[0] for e in expected]
    exp_v = [e[1] for e in expected]
    exp_s = [e[2] for e in expected]

    # torch reference (int32 tensors)
    p = LifParams(C.DECAY_UNITY - i_decay, C.DECAY_UNITY - v_decay, bias << C.BIAS_EXP, v_th_mant << C.VTH_SHIFT)
    tu, tv, ts = torch_step(torch.tensor(u, dtype=torch.int32), torch.tensor(v, dtype=torch.int32),
                            torch.tensor(a, dtype=torch.int32), p)
    assert (tu.tolist(), tv.tolist(), ts.tolist()) == (exp_u, exp_v, exp_s), "sims.kernels.lif_step"

    # compiled step (int32 arrays, state updated in place)
    cu, cv = np.array(u, np.int32), np.array(v, np.int32)
    fired = np.zeros(n, np.bool_)
    const = [np.full(n, c, np.int32) for c in (C.DECAY_UNITY - i_decay, C.DECAY_UNITY - v_decay,
                                               bias << C.BIAS_EXP, v_th_mant << C.VTH_SHIFT)]
    acc = np.array(a, np.int32)
    _lif_frame(acc, False, acc, True, cu, cv, *const, 0, fired, False)
    assert (cu.tolist(), cv.tolist(), fired.tolist()) == (exp_u, exp_v, exp_s), "sims.jit_kernels._lif_frame"

    # QAT step (float32 tensors holding integers)
    from spikingjelly.activation_based import surrogate

    qu, qv, qs = qat_step(torch.tensor(u, dtype=torch.float32), torch.tensor(v, dtype=torch.float32),
                          torch.tensor(a, dtype=torch.float32), float(C.DECAY_UNITY - i_decay),
                          float(C.DECAY_UNITY - v_decay), float(bias << C.BIAS_EXP),
                          float(v_th_mant << C.VTH_SHIFT), surrogate.ATan())
    assert ([int(x) for x in qu.tolist()], [int(x) for x in qv.tolist()], [bool(x) for x in qs.tolist()]) == (
        exp_u, exp_v, exp_s), "neuromoco.quant.ops.lif_step"


@pytest.mark.parametrize("u, a, expected", [(HALF - 1, 1, HALF - 1 + 64 - FULL), (-HALF + 1, -1, -HALF + 1 - 64 + FULL)])
def test_spec_wraps_u_at_24_bits(u: int, a: int, expected: int) -> None:
    assert spec_step(u, 0, a, 0, 0, 0, C.VTH_MANT_MAX)[0] == expected
