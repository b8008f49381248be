"""Loihi's integer arithmetic in differentiable torch: the QAT side of the one definition.

Forward values are exactly those of ``sims/kernels.py`` (tested against it);
gradients pass through rounding and truncation unchanged (straight-through
estimators) and through the spike by a spikingjelly surrogate. Values are
float32 tensors holding integers: every 24-bit state and one synapse process's
sum is exactly representable. Two things need more bits and are taken in
float64: the decay product ``u * (4096 - d)``, and the current update
``u + a * 2**6``, whose input ``a`` (up to three 24-bit process sums at a SEW
merge) times 64 passes float32's exact integers (2**24).
"""

from __future__ import annotations

from typing import Callable

import torch

from hw_targets import constants as C
from neuromoco.models.neuron import strict_spike

_HALF = float(C.STATE_HALF)
_FULL = float(2 * C.STATE_HALF)


def round_ste(x: torch.Tensor) -> torch.Tensor:
    """Round half to even in the forward pass, identity gradient."""
    return x + (torch.round(x) - x).detach()


def decay_ste(x: torch.Tensor, multiplier: float) -> torch.Tensor:
    """``trunc0(x * multiplier / 4096)`` exactly (float64 product), gradient ``multiplier / 4096``."""
    exact = torch.trunc(x.detach().double() * multiplier / C.DECAY_UNITY).to(x.dtype)
    scaled = x * (multiplier / C.DECAY_UNITY)
    return scaled + (exact - scaled).detach()


def wrap_current(u: torch.Tensor) -> torch.Tensor:
    """Lava's one-step wrap of ``u`` into (-2**23, 2**23]; identity gradient."""
    u = torch.where(u > _HALF, u - _FULL, u)
    return torch.where(u <= -_HALF, u + _FULL, u)


def lif_step(
    u: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor,
    i_mult: float,
    v_mult: float,
    bias_eff: torch.Tensor | float,
    vth_eff: float,
    surrogate_function: Callable[[torch.Tensor], torch.Tensor],
    detach_reset: bool = True,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One CUBA-LIF step in Loihi's integer arithmetic, differentiable.

    ::

        u <- wrap24(trunc0(u * i_mult / 4096) + a * 2**6)
        v <- clip(trunc0(v * v_mult / 4096) + u + bias_eff, +-(2**23 - 1))
        s  = v > vth_eff;   v <- 0 where s

    Args:
        u, v: states (float32 holding integers), shape (B, *layer_shape).
        a: integer synaptic input of this step, same shape (float64 where it may exceed 2**24).
        i_mult, v_mult: ``4096 - i_decay`` and ``4096 - v_decay``.
        bias_eff: ``bias << 6``, broadcastable to the state.
        vth_eff: ``v_th_mant << 6``.
        surrogate_function: spikingjelly surrogate; its input is ``(v - vth_eff) / vth_eff``.
        detach_reset: do not back-propagate through the reset.

    Returns:
        (u, v, s) with s in {0, 1}.
    """
    u_new = wrap_current(decay_ste(u, i_mult).double() + a.double() * float(1 << C.ACT_SHIFT)).to(u.dtype)
    v_new = decay_ste(v, v_mult) + u_new + bias_eff
    v_new = torch.clamp(v_new, -float(C.V_MAX), float(C.V_MAX))
    scale = max(vth_eff, 1.0)
    s = strict_spike((v_new - vth_eff) / scale, surrogate_function)
    keep = 1.0 - (s.detach() if detach_reset else s)
    return u_new, v_new * keep, s
