"""The native simulator's sigma-delta layers, compiled with numba: graded synapse and neurons fused.

Each kernel runs one layer for a range of work items (a sample, or a band of a
sample's output rows) over all steps. Per step it adds ``weight * payload`` of
every nonzero graded message of the previous step into an int32 accumulator
(event-driven: silent inputs cost nothing), wraps the sums as Lava's synapse
does (dense: numpy's int32 ``dot``, which the int32 accumulator is, then the
weight exponent's shift; conv: 24 bits, whose low bits int32's wrap-around
keeps exact), and runs the neurons on them. A step in which no message reaches
a layer leaves its Sigma/SigmaDelta neurons as they are and sends nothing
(with ``a = 0``, ``act`` does not move and ``|residue| < vth``); a Sigma readout
repeats its ``sigma``.

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
from sims.jit_kernels import _gather, _to_chw

_I32: Any = np.int32

#: Roles of a sigma-delta layer in the compiled loop (netx builds Delta, SigmaDelta or Sigma).
ROLE_DELTA: Final[int] = 0
ROLE_SIGMA_DELTA: Final[int] = 1
ROLE_SIGMA: Final[int] = 2

_CONV_SHIFT: Final[int] = 32 - C.CONV_ACC_BITS  # sign-extend the conv sums from bit 23


@njit(inline="always")
def _delta_out(act_new: Any, i: int, act: npt.NDArray[Any], residue: npt.NDArray[Any], vth: Any,
               state_exp: Any) -> Any:
    """The delta encoder of one neuron (``AbstractDeltaModel.delta_dynamics``), int32: its message."""
    delta = _I32(_I32(act_new - act[i]) + residue[i])
    magnitude = _I32(-delta) if delta < _I32(0) else delta  # numpy's int32 abs: abs(-2**31) == -2**31
    s = delta if magnitude >= vth else _I32(0)
    residue[i] = _I32(delta - s)
    act[i] = act_new
    return _I32(s >> state_exp)


@njit(inline="always")
def _neuron_frame(acc: npt.NDArray[Any], role: int, sigma: npt.NDArray[Any], act: npt.NDArray[Any],
                  residue: npt.NDArray[Any], bias: npt.NDArray[Any], vth: Any, state_exp: Any,
                  msg: npt.NDArray[Any]) -> None:
    """One step of a layer's Sigma/SigmaDelta neurons on the (already wrapped) int32 input ``acc``,
    messages into ``msg``; ``acc`` is cleared as it is read."""
    if role == ROLE_SIGMA:
        for i in range(acc.shape[0]):
            s = _I32(sigma[i] + acc[i])
            acc[i] = 0
            sigma[i] = s
            msg[i] = s
        return
    for i in range(acc.shape[0]):
        s = _I32(sigma[i] + acc[i])
        acc[i] = 0
        sigma[i] = s
        act_new = max(_I32(s + bias[i]), _I32(0))
        msg[i] = _delta_out(act_new, i, act, residue, vth, state_exp)


@njit(cache=True, nogil=True)
def delta_input_layer(
    b_start: int, b_stop: int, x: npt.NDArray[Any], shift: int, vth: int, state_exp: int,
    out: npt.NDArray[Any], act_rec: npt.NDArray[Any], record: bool,
) -> None:
    """netx's sigma-delta input layer (Lava ``Delta``): the input integers, no synapse, no latency.

    Args:
        x: (B, T, N) integer input (within int32); zero past T.
        shift: ``spike_exp + state_exp``; vth: ``v_th_mant << shift``.
        out: (B, steps, N) int32 messages (zeros on entry); act_rec: (B, steps, N) int32 ``act``
            when ``record``.
    """
    steps, n = out.shape[1], out.shape[2]
    t_in = x.shape[1]
    th = _I32(vth)
    se = _I32(state_exp)
    sh = _I32(shift)
    for b in range(b_start, b_stop):
        act = np.zeros(n, np.int32)
        residue = np.zeros(n, np.int32)
        for k in range(steps):
            row = out[b, k]
            if k < t_in:
                xin = x[b, k]
                for i in range(n):
                    row[i] = _delta_out(_I32(_I32(xin[i]) << sh), i, act, residue, th, se)
            else:  # no input: act_new = 0
                for i in range(n):
                    row[i] = _delta_out(_I32(0), i, act, residue, th, se)
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
        w_t: (N_in, N_out) int32 effective weights, transposed.
        fan: (N_in,) int64 nonzero synapses leaving each input.
        bias: (N_out,) int32 ``bias << E``.
        out: (B, steps, N_out) int32 messages (zeros on entry); sigma_rec, act_rec: int32 states
            when ``record``; synops: (B,) int64 messages delivered times their nonzero synapses.
    """
    n_in = s.shape[2]
    steps, n = out.shape[1], out.shape[2]
    acc = np.zeros(n, np.int32)
    th = _I32(vth)
    se = _I32(state_exp)
    w_flat = w_t.reshape(w_t.size)
    for b in range(b_start, b_stop):
        sigma = np.zeros(n, np.int32)
        act = np.zeros(n, np.int32)
        residue = np.zeros(n, np.int32)
        delivered = 0
        for k in range(steps):
            any_input = k == 0  # step 0: the bias-only step
            if k > 0:
                row = s[b, k - 1]
                for j in range(n_in):
                    m = _I32(row[j])
                    if m != _I32(0):
                        any_input = True
                        delivered += fan[j]
                        first = np.uint64(j * n)
                        for o in range(np.uint64(n)):
                            acc[o] += w_flat[first + o] * m
                if any_input and weight_exp != 0:
                    for o in range(n):
                        acc[o] = _I32(acc[o] << weight_exp) if weight_exp > 0 else _I32(acc[o] >> (-weight_exp))
            if any_input or role == ROLE_SIGMA:
                _neuron_frame(acc, role, sigma, act, residue, bias, th, se, out[b, k])
            if record:
                sigma_rec[b, k] = sigma
                act_rec[b, k] = act
        synops[b] = delivered


@njit(cache=True, nogil=True)
def sdnn_conv_layer(
    item_start: int, item_stop: int, s: npt.NDArray[Any], w: npt.NDArray[Any],
    tap_ptr: npt.NDArray[Any], tap_dst: npt.NDArray[Any], tap_src: npt.NDArray[Any], tap_len: npt.NDArray[Any],
    groups: int, bands: npt.NDArray[Any], band_inputs: npt.NDArray[Any], fan: npt.NDArray[Any],
    role: int, bias: npt.NDArray[Any], vth: int, state_exp: int,
    out: npt.NDArray[Any], sigma_rec: npt.NDArray[Any], act_rec: npt.NDArray[Any], record: bool,
    synops: npt.NDArray[Any],
) -> None:
    """Event-driven graded convolution (Lava ``PyConvModelFixed``) fused with its neurons.

    A message ``m`` at input pixel p, channel c, step k - 1 adds ``m`` times its kernel column into
    every output pixel its taps reach at step k; the sums wrap to 24 bits (Lava's ``signed_clamp``).
    Work items are (sample, band) as in :func:`sims.jit_kernels.conv_lif_layer`, whose tap tables
    (:func:`sims.jit_kernels.conv_band_taps`) and weight layout (:func:`sims.jit_kernels.scatter_weight`)
    this kernel shares; the accumulator, the neuron states and ``bias`` are channels-last.

    Args:
        s: (B, steps, C_in, H_in * W_in) int32 messages.
        w: (C_in, kH, kW, C_out / groups) int32 weights in ``scatter_weight``'s layout.
        bands, band_inputs, fan: as for ``conv_lif_layer`` (fan: (P, C_in * H_in * W_in)).
        bias: (N,) int32 ``bias << E``, channels-last.
        out: (B, steps, N) int32 messages in C, H, W order (zeros on entry); sigma_rec, act_rec
            likewise when ``record``; synops: (B * P,) int64 messages delivered times their synapses.
    """
    c_in, pixels = s.shape[2], s.shape[3]
    taps, per_group_out = w.shape[1] * w.shape[2], w.shape[3]
    n_bands = bands.shape[0] - 1
    steps, n = out.shape[1], out.shape[2]
    c_out = groups * per_group_out
    hw = n // c_out
    per_group_in = c_in // groups
    acc = np.zeros(n, np.int32)
    msg = np.zeros(n, np.int32)
    events = np.zeros(pixels + 1, np.uint64)
    w_flat = w.reshape(w.size)
    th = _I32(vth)
    se = _I32(state_exp)
    for item in range(item_start, item_stop):
        b = item // n_bands
        q = item % n_bands
        o_lo = bands[q]
        o_hi = bands[q + 1]
        i_lo = band_inputs[q, 0]
        i_hi = band_inputs[q, 1]
        band_px = o_hi - o_lo
        lo = o_lo * c_out
        size = band_px * c_out
        p_acc = acc[:size]
        p_msg = msg[:size]
        p_bias = bias[lo : lo + size]
        p_fan = fan[q]
        p_ptr = tap_ptr[q]
        sigma = np.zeros(size, np.int32)
        act = np.zeros(size, np.int32)
        residue = np.zeros(size, np.int32)
        delivered = 0
        for k in range(steps):
            any_input = k == 0  # step 0: the bias-only step
            if k > 0:
                frame = s[b, k - 1]
                for c in range(c_in):
                    first_out = (c // per_group_in) * per_group_out
                    frame_c = frame[c]
                    fan_c = p_fan[c * pixels : (c + 1) * pixels]
                    c_src = c * taps * per_group_out
                    n_ev = _gather(frame_c, i_lo, i_hi, True, events)
                    if n_ev:
                        any_input = True
                    for ev in range(n_ev):
                        pix = events[ev]
                        m = _I32(frame_c[pix])
                        delivered += fan_c[pix]
                        for e in range(np.uint64(p_ptr[pix]), np.uint64(p_ptr[pix + np.uint64(1)])):
                            base = np.uint64(tap_dst[e] + first_out)
                            src = np.uint64(c_src + tap_src[e])
                            for j in range(np.uint64(tap_len[e])):
                                p_acc[base + j] += w_flat[src + j] * m
                if any_input:
                    for i in range(size):
                        p_acc[i] = _I32(p_acc[i] << _I32(_CONV_SHIFT)) >> _I32(_CONV_SHIFT)
            if any_input or role == ROLE_SIGMA:
                _neuron_frame(p_acc, role, sigma, act, residue, p_bias, th, se, p_msg)
                _to_chw(p_msg, out[b, k], c_out, hw, o_lo, band_px)
            if record:
                _to_chw(sigma, sigma_rec[b, k], c_out, hw, o_lo, band_px)
                _to_chw(act, act_rec[b, k], c_out, hw, o_lo, band_px)
        synops[item] = delivered
