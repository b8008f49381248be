"""The CUBA-LIF layer loop compiled with numba: one pass over (neuron, step).

Same arithmetic as :func:`sims.kernels.lif_step` (Lava's ``PyLifModelBitAcc``,
with numpy's int32 wrap-around made explicit), fused with the last stage of
the synapse (the conv accumulator's 24-bit wrap or the dense accumulator's
weight-exponent shift, then the int32 port). The two are tested against each
other. Each neuron's state stays in registers across steps, so a layer costs
one read of its synaptic input and one write of its spikes.

The kernels are single-threaded and release the GIL; :func:`split_run` runs
them over disjoint slices in a small thread pool. (numba's own parallel
threading layers fight torch's OpenMP pool for the same cores: 10x slower.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from numba import njit

_BLOCK = 2048


@njit(inline="always")
def _wrap32(x: int) -> int:
    return ((x + 2147483648) & 0xFFFFFFFF) - 2147483648


@njit(inline="always")
def _trunc12(x: int) -> int:
    # Lava: sign(x) * (|x| >> 12), a shift that rounds toward zero.
    return x >> 12 if x >= 0 else -((-x) >> 12)


@njit(inline="always")
def _lif_update(
    x: int, u: int, v: int, i_mult: int, v_mult: int, bias_eff: int, vth_eff: int, half: int, mask: int, weight_exp: int
) -> tuple[int, int, bool]:
    """One neuron, one step: accumulator ``x`` -> (u, v, spike), Lava's int32 storage made explicit."""
    if mask != 0:
        x = ((x + half) & mask) - half  # the conv accumulator's 24-bit wrap
    if weight_exp > 0:
        x = x << weight_exp
    elif weight_exp < 0:
        x = x >> (-weight_exp)
    x = _wrap32(x)  # Lava's int32 port
    u1 = _wrap32(_trunc12(u * i_mult) + _wrap32(x << 6))
    u1 = u1 - 16777216 if u1 > 8388608 else u1  # one wrap into (-2**23, 2**23]
    u1 = u1 + 16777216 if u1 <= -8388608 else u1
    v1 = _wrap32(_trunc12(v * v_mult) + u1 + bias_eff)
    v1 = min(max(v1, -8388607), 8388607)  # saturation
    fired = v1 > vth_eff
    return u1, (0 if fired else v1), fired


@njit(cache=True, nogil=True)
def lif_layer(
    j_start: int,
    j_stop: int,
    a: npt.NDArray[Any],
    delay: int,
    per_sample: int,
    i_mult: npt.NDArray[Any],
    v_mult: npt.NDArray[Any],
    bias_eff: npt.NDArray[Any],
    vth_eff: npt.NDArray[Any],
    reset: npt.NDArray[Any],
    acc_wrap_bits: int,
    weight_exp: int,
    spikes: npt.NDArray[Any],
    u_rec: npt.NDArray[Any],
    v_rec: npt.NDArray[Any],
    record: bool,
) -> None:
    """Run one layer of CUBA-LIF neurons over all steps.

    Args:
        j_start, j_stop: the slice of the B * N neuron columns this call computes.
        a: (steps - delay, B * N) synaptic accumulator (int, or float holding exact integers);
            row r is delivered at step r + delay, steps before ``delay`` get no input.
        delay: 1 for a synapse (Lava's one-step synaptic latency), 0 for input into a neuron.
        per_sample: N, neurons per sample; parameter arrays are indexed by ``j % N``.
        i_mult, v_mult: (N,) int64, ``4096 - decay``.
        bias_eff, vth_eff: (N,) int64, ``bias << 6`` and ``v_th_mant << 6``.
        reset: (steps,) bool, zero u and v before this step (LIFReset).
        acc_wrap_bits: wrap the accumulator to this many signed bits first (24 for conv, 0 = none).
        weight_exp: dense accumulator shift (``<<`` if positive, arithmetic ``>>`` if negative).
        spikes: (steps, B * N) bool output.
        u_rec, v_rec: (steps, B * N) int32 outputs, written when ``record``.
    """
    steps = spikes.shape[0]
    half = (1 << (acc_wrap_bits - 1)) if acc_wrap_bits > 0 else 0
    mask = ((1 << acc_wrap_bits) - 1) if acc_wrap_bits > 0 else 0
    j0 = j_start
    while j0 < j_stop:
        # A segment never crosses a sample boundary: parameters are the contiguous slice n0:n0+width.
        n0 = j0 % per_sample
        j1 = min(j_stop, j0 + _BLOCK, j0 - n0 + per_sample)
        width = j1 - j0
        u = np.zeros(width, np.int64)
        v = np.zeros(width, np.int64)
        im = i_mult[n0 : n0 + width]
        vm = v_mult[n0 : n0 + width]
        be = bias_eff[n0 : n0 + width]
        th = vth_eff[n0 : n0 + width]
        for k in range(steps):
            if reset[k]:
                u[:] = 0
                v[:] = 0
            out = spikes[k, j0:j1]
            row = k - delay
            if row >= 0:
                ar = a[row, j0:j1]
                for i in range(width):
                    u[i], v[i], out[i] = _lif_update(int(ar[i]), u[i], v[i], im[i], vm[i], be[i], th[i],
                                                     half, mask, weight_exp)
            else:
                for i in range(width):
                    u[i], v[i], out[i] = _lif_update(0, u[i], v[i], im[i], vm[i], be[i], th[i], half, mask, weight_exp)
            if record:
                u_rec[k, j0:j1] = u
                v_rec[k, j0:j1] = v
        j0 = j1


def expand_param(value: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """A scalar, per-channel or per-neuron parameter as a flat (N,) int64 array for ``shape``."""
    arr = np.asarray(value, dtype=np.int64)
    if arr.ndim == 1 and len(shape) == 3 and arr.shape[0] == shape[0]:
        arr = arr.reshape(-1, 1, 1)
    return np.ascontiguousarray(np.broadcast_to(arr, shape).reshape(-1))


@njit(cache=True, nogil=True)
def scatter_conv_nhwc(
    f_start: int,
    f_stop: int,
    s: npt.NDArray[Any],
    w: npt.NDArray[Any],
    stride_h: int,
    stride_w: int,
    pad_h: int,
    pad_w: int,
    dil_h: int,
    dil_w: int,
    groups: int,
    out: npt.NDArray[Any],
) -> None:
    """Event-driven convolution: every active input adds its kernel column to the outputs it reaches.

    Equals ``torch.nn.functional.conv2d`` (cross-correlation) for binary input. The output is
    channels-last, so each add is one contiguous vector. Sums are int32 and wrap modulo 2**32,
    so a later 24-bit wrap gives Lava's conv accumulator exactly whatever the weights.

    Args:
        f_start, f_stop: the frames this call computes.
        s: (F, C_in, H, W) bool spikes.
        w: (C_in, kH, kW, C_out / groups) int32, the torch weight rearranged per input channel.
        out: (F, H_out, W_out, C_out) int32, zero on entry; receives the sums.
    """
    _, c_in, height, width = s.shape
    _, k_h, k_w, per_group_out = w.shape
    h_out, w_out = out.shape[1], out.shape[2]
    per_group_in = c_in // groups
    for f in range(f_start, f_stop):
        for c in range(c_in):
            first_out = (c // per_group_in) * per_group_out
            for y in range(height):
                for x in range(width):
                    if not s[f, c, y, x]:
                        continue
                    for ky in range(k_h):
                        ty = y + pad_h - ky * dil_h
                        if ty < 0 or ty % stride_h != 0:
                            continue
                        oy = ty // stride_h
                        if oy >= h_out:
                            continue
                        for kx in range(k_w):
                            tx = x + pad_w - kx * dil_w
                            if tx < 0 or tx % stride_w != 0:
                                continue
                            ox = tx // stride_w
                            if ox >= w_out:
                                continue
                            row = out[f, oy, ox, first_out : first_out + per_group_out]
                            col = w[c, ky, kx]
                            for j in range(per_group_out):
                                row[j] += col[j]


def scatter_weight(weight: npt.NDArray[np.integer[Any]], groups: int) -> npt.NDArray[np.int32]:
    """Torch layout (C_out, C_in / g, kH, kW) -> (C_in, kH, kW, C_out / g) for :func:`scatter_conv_nhwc`."""
    c_out, per_group_in, k_h, k_w = weight.shape
    per_group_out = c_out // groups
    w = np.asarray(weight, dtype=np.int32).reshape(groups, per_group_out, per_group_in, k_h, k_w)
    return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1).reshape(groups * per_group_in, k_h, k_w, per_group_out))


_POOL: ThreadPoolExecutor | None = None


@njit(cache=True, nogil=True)
def scatter_dense(f_start: int, f_stop: int, s: npt.NDArray[Any], w_t: npt.NDArray[Any], out: npt.NDArray[Any]) -> None:
    """Event-driven dense synapse: ``out[f] = sum of w_t[j] over active inputs j`` (int64, exact).

    Args:
        f_start, f_stop: the frames this call computes.
        s: (F, N_in) bool spikes.
        w_t: (N_in, N_out) int64, the transposed effective weights.
        out: (F, N_out) int64, zero on entry.
    """
    n_in, n_out = w_t.shape
    for f in range(f_start, f_stop):
        for j in range(n_in):
            if s[f, j]:
                for o in range(n_out):
                    out[f, o] += w_t[j, o]


def split_run(kernel: Callable[..., None], total: int, *args: object, min_chunk: int = 1) -> None:
    """Run ``kernel(start, stop, *args)`` over [0, total) split across the CPU's threads."""
    import torch  # the thread count follows torch's, so both use the same cores

    workers = max(1, min(torch.get_num_threads(), os.cpu_count() or 1, total // max(min_chunk, 1)))
    if workers <= 1:
        kernel(0, total, *args)
        return
    global _POOL
    if _POOL is None or _POOL._max_workers < workers:  # noqa: SLF001
        _POOL = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nmoco-sim")
    bounds = [total * i // workers for i in range(workers + 1)]
    futures = [_POOL.submit(kernel, lo, hi, *args) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
    for f in futures:
        f.result()
