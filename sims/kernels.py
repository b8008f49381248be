"""Loihi's CUBA-LIF step as pure torch functions: the readable reference.

These functions reproduce Lava 0.10's ``PyLifModelBitAcc`` (fixed_pt) bit for bit,
including where Lava's numpy code wraps in int32. The integer step exists in
three forms that all take their constants from :mod:`hw_targets.constants`: this
reference, the compiled one the native simulator runs
(:func:`sims.jit_kernels._lif_frame`) and the differentiable one QAT trains with
(:func:`neuromoco.quant.ops.lif_step`). ``tests/test_lif_forms.py`` drives all
three against one specification. netx's dense-weight handling lives in
:mod:`export.netx_dense`.

State tensors are ``torch.int32`` (Lava stores ``u`` and ``v`` as int32 holding
24-bit values, so int32 sums wrap exactly as numpy's do); the decay product is
taken in int64 as Lava does.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hw_targets import constants as C

_HALF = C.STATE_HALF  # 2**23
_FULL = 2 * C.STATE_HALF  # 2**24


def decay_trunc(x: torch.Tensor, multiplier: torch.Tensor | int) -> torch.Tensor:
    """``trunc0(x * multiplier / 4096)`` as int32, the product in int64.

    Args:
        x: int32 state.
        multiplier: ``4096 - decay`` (int, or an int64 tensor broadcastable to ``x``).
    """
    prod = x.to(torch.int64) * multiplier
    # Lava: sign(x) * (|x| >> 12), i.e. a shift that rounds toward zero.
    return torch.div(prod, C.DECAY_UNITY, rounding_mode="trunc").to(torch.int32)


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's one-step wrap of ``u`` into (-2**23, 2**23] (applied once, not modulo)."""
    u = torch.where(u > _HALF, u - _FULL, u)
    return torch.where(u <= -_HALF, u + _FULL, u)


def wrap_signed(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's-complement wrap to ``bits`` (Lava's conv ``signed_clamp``, which wraps)."""
    base = 1 << bits
    return torch.remainder(x + base // 2, base) - base // 2


@dataclass(frozen=True)
class LifParams:
    """Per-layer neuron constants, broadcastable to the layer's (..., *shape) state.

    Attributes:
        i_mult: ``4096 - i_decay`` (int64 tensor or int).
        v_mult: ``4096 - v_decay``.
        bias_eff: ``bias_mant << 6`` as int32 (0 when there is no bias).
        vth_eff: ``v_th_mant << 6`` as int32.
    """

    i_mult: torch.Tensor | int
    v_mult: torch.Tensor | int
    bias_eff: torch.Tensor | int
    vth_eff: torch.Tensor | int


def lif_step(
    u: torch.Tensor, v: torch.Tensor, a: torch.Tensor, p: LifParams
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of the CUBA-LIF neuron, exactly as Lava's fixed_pt model computes it.

    ::

        u <- wrap_once(int32(trunc0(u * (4096 - i_decay) / 4096)) + int32(a << 6))
        v <- clip(int32(trunc0(v * (4096 - v_decay) / 4096)) + u + (bias << 6), +-(2**23 - 1))
        s  = v > v_th_mant << 6;   v <- 0 where s

    Args:
        u, v: int32 current and voltage, shape (..., *layer_shape).
        a: int32 synaptic input of this step, same shape.
        p: the layer's constants.

    Returns:
        (u, v, s) with s a bool tensor. Inputs are not modified.
    """
    decayed_u = u if isinstance(p.i_mult, int) and p.i_mult == C.DECAY_UNITY else decay_trunc(u, p.i_mult)
    # int32 arithmetic: the shift and the sum wrap at 32 bits exactly as numpy's int32 does in Lava.
    u_new = wrap_current(decayed_u + torch.bitwise_left_shift(a, C.ACT_SHIFT))
    if isinstance(p.v_mult, int) and p.v_mult == 0:
        v_new = u_new + p.bias_eff
    else:
        v_new = decay_trunc(v, p.v_mult) + u_new + p.bias_eff
    v_new = torch.clamp(v_new, -C.V_MAX, C.V_MAX)
    s = v_new > p.vth_eff
    v_new = v_new.masked_fill(s, 0)
    return u_new, v_new, s


# ----------------------------------------------------------------------------- dense synapse


def apply_weight_exp(acc: torch.Tensor, weight_exp: int) -> torch.Tensor:
    """Lava Dense's accumulator shift: left for positive exponents, arithmetic right otherwise."""
    if weight_exp > 0:
        return torch.bitwise_left_shift(acc, weight_exp)
    if weight_exp < 0:
        return torch.bitwise_right_shift(acc, -weight_exp)
    return acc
