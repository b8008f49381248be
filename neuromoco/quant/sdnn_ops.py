"""Loihi 2's sigma-delta integer arithmetic in differentiable torch: the QAT side of ``sims/sdnn_kernels.py``.

Values are float64 tensors holding integers: every message (int32), every
synaptic sum (at most ``127 * 2**31 * fan_in`` < 2**53) and every state is
exactly representable, so the forward values are the kernels' own (tested
against them). Each wrap, shift and threshold passes its gradient straight
through (``x + (exact(x) - x).detach()``), so the forward is exact and the
backward is that of the float network.

Lava 0.10's ``PySigmaDeltaModelFixed`` / ``PyDeltaModelFixed`` compute in numpy
int32 and wrap; the synapses wrap their sums (conv: 24 bits, Lava's
``signed_clamp``; dense: int32 of the sum with netx's weight exponent, then
the shift back).
"""

from __future__ import annotations

import math

import torch

from hw_targets import constants as C

_I32_HALF = float(1 << 31)
_I32_FULL = float(1 << 32)
_CONV_HALF = float(1 << (C.CONV_ACC_BITS - 1))
_CONV_FULL = float(1 << C.CONV_ACC_BITS)


def _wrap(x: torch.Tensor, half: float, full: float) -> torch.Tensor:
    return torch.remainder(x + half, full) - half


def wrap32(x: torch.Tensor) -> torch.Tensor:
    """``x`` modulo 2**32 as a signed int32 (numpy's int32 wrap-around); identity gradient."""
    return x + (_wrap(x.detach(), _I32_HALF, _I32_FULL) - x.detach())


def wrap_conv(x: torch.Tensor) -> torch.Tensor:
    """Lava's conv accumulator wrap to signed 24 bits; identity gradient."""
    return x + (_wrap(x.detach(), _CONV_HALF, _CONV_FULL) - x.detach())


def floor_shift(x: torch.Tensor, bits: int) -> torch.Tensor:
    """``x >> bits`` (arithmetic shift: floor division by ``2**bits``); gradient ``2**-bits``."""
    scaled = x / float(1 << bits)
    return scaled + (torch.floor(scaled.detach()) - scaled.detach())


def netx_dense_scale_bits(weight: torch.Tensor) -> int:
    """The left shift netx's dense loader applies to an 8-bit integer matrix (``-weight_exp``).

    lava-dl 0.6 ``optimize_weight_bits`` scales the matrix to fill 8 bits and stores the
    exponent; Lava's fixed-point Dense computes ``wrap32(sum(W << s * m)) >> s``. For the
    signed 8-bit matrices QAT makes the scaled weights are exactly ``W << s``
    (``export.netx_dense.netx_dense_synapse``, against which this is tested).

    Args:
        weight: Integer weights (any float or int dtype) in [-127, 127], some of them > 0.

    Returns:
        ``s`` >= 0; 0 for an all-zero matrix (which netx refuses to load).
    """
    wmax, wmin = float(weight.max()), float(weight.min())
    full = float(1 << C.WEIGHT_BITS)
    if wmax == 0 and wmin == 0:
        return 0
    if wmax < 0:
        is_signed, scale = 0, -full / wmin
    elif wmin >= 0:
        is_signed, scale = 0, (full - 1) / wmax
    else:
        half = full / 2
        is_signed, scale = 1, min((half - 1) / wmax if wmax else math.inf, -half / wmin)
    return math.floor(math.log2(scale)) + is_signed


def dense_sum(m: torch.Tensor, weight: torch.Tensor, scale_bits: int) -> torch.Tensor:
    """Lava's fixed-point dense synapse: ``wrap32((W << s) @ m) >> s`` for messages ``m`` (N, in)."""
    exact = torch.nn.functional.linear(m, weight)
    factor = float(1 << scale_bits)
    return wrap32(exact * factor) / factor  # the wrapped sum stays a multiple of 2**s: the shift is exact


def delta_encode(act_new: torch.Tensor, vth: float, state_exp: int) -> torch.Tensor:
    """Lava's delta encoder over all steps: the messages of a layer whose ``act`` runs through ``act_new``.

    Per step (``AbstractDeltaModel.delta_dynamics``, int32)::

        delta = act_new - act + residue
        s = delta if |delta| >= vth else 0;  residue = delta - s;  act = act_new
        message = s >> state_exp

    The gradient of the messages is that of ``(act_new[k] - act_new[k-1]) >> state_exp``: the
    receiver's sum of messages follows ``act`` (straight-through, as slayer's delta).

    Args:
        act_new: ``[T, B, *shape]`` float64 integers (each step's ``act``).
        vth: ``v_th_mant << (spike_exp + state_exp)``.
        state_exp: The message's right shift.

    Returns:
        ``[T, B, *shape]`` messages.
    """
    with torch.no_grad():
        exact = torch.empty_like(act_new)
        act = torch.zeros_like(act_new[0])
        residue = torch.zeros_like(act)
        for k in range(act_new.shape[0]):
            a = act_new[k].detach()
            delta = _wrap(_wrap(a - act, _I32_HALF, _I32_FULL) + residue, _I32_HALF, _I32_FULL)
            # numpy's int32 abs: abs(-2**31) stays -2**31 (below any threshold).
            magnitude = torch.where(delta == -_I32_HALF, delta, delta.abs())
            s = torch.where(magnitude >= vth, delta, torch.zeros_like(delta))
            residue = _wrap(delta - s, _I32_HALF, _I32_FULL)
            act = a
            exact[k] = torch.floor(s / float(1 << state_exp))
    change = (act_new - torch.cat([torch.zeros_like(act_new[:1]), act_new[:-1]])) / float(1 << state_exp)
    return change + (exact - change.detach())
