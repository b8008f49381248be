"""The native simulator's sigma-delta layers, compiled with numba: graded synapse and neurons fused.

Each kernel runs one layer for a range of samples over all steps. Per step it
adds ``weight * payload`` of every nonzero graded message of the previous step
into an exact int64 accumulator (event-driven: silent inputs cost nothing),
wraps the sums as Lava's synapse does (dense: numpy int32, then the weight
exponent's shift; conv: 24 bits), and runs the neurons on them.

The neuron arithmetic is Lava 0.10's fixed-point sigma-delta models
(``lava/proc/sdn/models.py``), numpy int32 wrap-around made explicit:

* ``PyDeltaModelFixed`` (netx's input layer)::

      act_new = a << E;  delta = act_new - act + residue
      s = delta if |delta| >= vth else 0;  residue = delta - s;  act = act_new
      message = s >> state_exp

* ``PySigmaDeltaModelFixed`` (``SigmaDelta``, ReLU): ``sigma += a``, then
  ``act_new = relu(sigma + bias)`` and the delta step above. This is the model
  ``Loihi2SimCfg(select_tag='fixed_pt')`` picks in Lava 0.10, the only one there:
  no 24-bit wrap of the states (numpy int32 only), and the ``state_exp`` low
  bits that ``s >> state_exp`` drops are lost, not carried into the residue.
  Newer Lava adds ``PySigmaDeltaModelFixedCorrected``, which tag selection does
  not pick (the first model with the tag wins).
* ``PySigmaModelFixed`` (``sigma_output``): ``sigma += a``; the message is ``sigma``.

``E = spike_exp + state_exp``; ``vth = v_th_mant << E`` and ``bias << E`` are
the plan's constants. ``|delta|`` is numpy's int32 ``abs`` (``abs(-2**31)`` stays
negative).
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from hw_targets import constants as C

_I32: Any = np.int32
_I64: Any = np.int64

#: Roles of a sigma-delta layer in the compiled loop (netx builds Delta, SigmaDelta or Sigma).
ROLE_DELTA: Final[int] = 0
ROLE_SIGMA_DELTA: Final[int] = 1
ROLE_SIGMA: Final[int] = 2

_CONV_HALF: Final[int] = 1 << (C.CONV_ACC_BITS - 1)
_CONV_FULL: Final[int] = 1 << C.CONV_ACC_BITS


@njit(inline="always")
def _wrap32(x: Any) -> Any:
    """``x`` (int64) modulo 2**32 as a signed int32, as numpy's int32 arithmetic wraps."""
    return _I64(_I32(x))


@njit(inline="always")
def _delta_out(act_new: Any, i: int, act: npt.NDArray[Any], residue: npt.NDArray[Any], vth: Any,
               state_exp: int) -> Any:
    """The delta encoder of one neuron (``AbstractDeltaModel.delta_dynamics``): its message."""
    delta = _wrap32(_wrap32(act_new - act[i]) + residue[i])
    magnitude = _wrap32(abs(delta))  # numpy's int32 abs: abs(-2**31) == -2**31
    s = delta if magnitude >= vth else _I64(0)
    residue[i] = _wrap32(delta - s)
    act[i] = act_new
    return s >> state_exp


@njit(inline="always")
def _neuron_frame(acc: npt.NDArray[Any], role: int, sigma: npt.NDArray[Any], act: npt.NDArray[Any],
                  residue: npt.NDArray[Any], bias: npt.NDArray[Any], vth: Any, state_exp: int,
                  msg: npt.NDArray[Any]) -> None:
    """One step of a layer's Sigma/SigmaDelta neurons on the (already wrapped) input ``acc``,
    messages into ``msg``; ``acc`` is cleared as it is read."""
    for i in range(acc.shape[0]):
        a = acc[i]
        acc[i] = 0
        s = _wrap32(sigma[i] + a)
        sigma[i] = s
        if role == ROLE_SIGMA:
            msg[i] = s
        else:
            act_new = _wrap32(s + bias[i])
            if act_new < 0:
                act_new = _I64(0)
            msg[i] = _delta_out(act_new, i, act, residue, vth, state_exp)


@njit(cache=True, nogil=True)
def delta_input_layer(
    b_start: int, b_stop: int, x: npt.NDArray[Any], shift: int, vth: int, state_exp: int,
    out: npt.NDArray[Any], act_rec: npt.NDArray[Any], record: bool,
) -> None:
    """netx's sigma-delta input layer (Lava ``Delta``): the input integers, no synapse, no latency.

    Args:
        x: (B, T, N) integer input; zero past T.
        shift: ``spike_exp + state_exp``; vth: ``v_th_mant << shift``.
        out: (B, steps, N) int32 messages; act_rec: (B, steps, N) int32 ``act`` when ``record``.
    """
    steps, n = out.shape[1], out.shape[2]
    t_in = x.shape[1]
    for b in range(b_start, b_stop):
        act = np.zeros(n, np.int64)
        residue = np.zeros(n, np.int64)
        for k in range(steps):
            row = out[b, k]
            for i in range(n):
                a = _I64(x[b, k, i]) if k < t_in else _I64(0)
                act_new = _wrap32(_wrap32(a) << shift)
                row[i] = _delta_out(act_new, i, act, residue, vth, state_exp)
            if record:
                act_rec[b, k] = act


@njit(cache=True, nogil=True)
def sdnn_dense_layer(
    b_start: int, b_stop: int, s: npt.NDArray[Any], w_t: npt.NDArray[Any], weight_exp: int, fan: npt.NDArray[Any],
    role: int, bias: npt.NDArray[Any], vth: int, state_exp: int,
    out: npt.NDArray[Any], sigma_rec: npt.NDArray[Any], act_rec: npt.NDArray[Any], record: bool,
    synops: npt.NDArray[Any],
) -> None:
    """Event-driven graded dense synapse (Lava ``PyDenseModelBitAcc``) fused with its neurons.

    A message ``m`` of input j at step k - 1 adds ``m * W[:, j]`` at step k; the sums wrap to
    int32 (numpy's int32 ``dot``) and then shift by the weight exponent.

    Args:
        s: (B, steps, N_in) int32 messages (0/1 for binary input).
        w_t: (N_in, N_out) int64 effective weights, transposed.
        fan: (N_in,) int64 nonzero synapses leaving each input.
        bias: (N_out,) int64 ``bias << E``.
        out: (B, steps, N_out) int32 messages; sigma_rec, act_rec: int32 states when ``record``;
        synops: (B,) int64 messages delivered times their nonzero synapses.
    """
    n_in = s.shape[2]
    steps, n = out.shape[1], out.shape[2]
    acc = np.zeros(n, np.int64)
    msg = np.zeros(n, np.int64)
    for b in range(b_start, b_stop):
        sigma = np.zeros(n, np.int64)
        act = np.zeros(n, np.int64)
        residue = np.zeros(n, np.int64)
        delivered = 0
        for k in range(steps):
            if k > 0:
                row = s[b, k - 1]
                any_input = False
                for j in range(n_in):
                    m = _I64(row[j])
                    if m != 0:
                        any_input = True
                        delivered += fan[j]
                        w = w_t[j]
                        for o in range(n):
                            acc[o] += w[o] * m
                if any_input:
                    for o in range(n):
                        a = _wrap32(acc[o])
                        acc[o] = _wrap32(a << weight_exp) if weight_exp >= 0 else a >> (-weight_exp)
            _neuron_frame(acc, role, sigma, act, residue, bias, vth, state_exp, msg)
            out_row = out[b, k]
            for o in range(n):
                out_row[o] = msg[o]
            if record:
                sigma_rec[b, k] = sigma
                act_rec[b, k] = act
        synops[b] = delivered


@njit(cache=True, nogil=True)
def sdnn_conv_layer(
    b_start: int, b_stop: int, s: npt.NDArray[Any], w: npt.NDArray[Any],
    tap_ptr: npt.NDArray[Any], tap_out: npt.NDArray[Any], tap_k: npt.NDArray[Any], groups: int,
    fan: npt.NDArray[Any], role: int, bias: npt.NDArray[Any], vth: int, state_exp: int,
    out: npt.NDArray[Any], sigma_rec: npt.NDArray[Any], act_rec: npt.NDArray[Any], record: bool,
    synops: npt.NDArray[Any],
) -> None:
    """Event-driven graded convolution (Lava ``PyConvModelFixed``) fused with its neurons.

    A message ``m`` at input pixel p, channel c, step k - 1 adds ``m`` times its kernel column into
    every output pixel its taps reach at step k; the exact sums wrap to 24 bits (Lava's
    ``signed_clamp``). The accumulator and the neuron states are channels-last (pixel-major);
    messages are written in C, H, W order.

    Args:
        s: (B, steps, C_in, H_in * W_in) int32 messages.
        w: (C_in, kH * kW, C_out / groups) int64 weights (:func:`sdnn_conv_weight`).
        tap_ptr, tap_out, tap_k: :func:`sims.jit_kernels.conv_taps` (input pixel -> output pixel, tap).
        fan: (C_in * H_in * W_in,) int64 nonzero synapses leaving each input neuron.
        bias: (N,) int64 ``bias << E``, channels-last.
        out: (B, steps, N) int32 messages (C, H, W order); sigma_rec, act_rec likewise when ``record``.
        synops: (B,) int64 messages delivered times their nonzero synapses.
    """
    c_in, pixels = s.shape[2], s.shape[3]
    per_group_out = w.shape[2]
    taps = w.shape[1]
    steps, n = out.shape[1], out.shape[2]
    c_out = groups * per_group_out
    hw = n // c_out
    per_group_in = c_in // groups
    acc = np.zeros(n, np.int64)
    msg = np.zeros(n, np.int64)
    w_flat = w.reshape(w.size)
    for b in range(b_start, b_stop):
        sigma = np.zeros(n, np.int64)
        act = np.zeros(n, np.int64)
        residue = np.zeros(n, np.int64)
        delivered = 0
        for k in range(steps):
            if k > 0:
                frame = s[b, k - 1]
                any_input = False
                for c in range(c_in):
                    first_out = (c // per_group_in) * per_group_out
                    frame_c = frame[c]
                    for pix in range(pixels):
                        m = _I64(frame_c[pix])
                        if m == 0:
                            continue
                        any_input = True
                        delivered += fan[c * pixels + pix]
                        for e in range(tap_ptr[pix], tap_ptr[pix + 1]):
                            base = np.uint64(tap_out[e] * c_out + first_out)
                            src = np.uint64((c * taps + tap_k[e]) * per_group_out)
                            for j in range(np.uint64(per_group_out)):
                                acc[base + j] += w_flat[src + j] * m
                if any_input:
                    for i in range(n):
                        a = acc[i] & (_CONV_FULL - 1)
                        acc[i] = a - _CONV_FULL if a >= _CONV_HALF else a
            _neuron_frame(acc, role, sigma, act, residue, bias, vth, state_exp, msg)
            out_row = out[b, k]
            for c in range(c_out):
                for pix in range(hw):
                    out_row[c * hw + pix] = msg[pix * c_out + c]
            if record:
                for c in range(c_out):
                    for pix in range(hw):
                        sigma_rec[b, k, c * hw + pix] = sigma[pix * c_out + c]
                        act_rec[b, k, c * hw + pix] = act[pix * c_out + c]
        synops[b] = delivered


def sdnn_conv_weight(weight: npt.NDArray[np.integer[Any]], groups: int) -> npt.NDArray[np.int64]:
    """Torch layout (C_out, C_in / g, kH, kW) -> (C_in, kH * kW, C_out / g) for :func:`sdnn_conv_layer`."""
    c_out, per_group_in, k_h, k_w = weight.shape
    per_group_out = c_out // groups
    w = np.asarray(weight, dtype=np.int64).reshape(groups, per_group_out, per_group_in, k_h * k_w)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 1).reshape(groups * per_group_in, k_h * k_w, per_group_out))
