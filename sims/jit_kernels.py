"""The native simulator's layers, compiled with numba: synapse and CUBA-LIF neurons fused.

Each kernel runs one layer for a range of work items (a sample, or a slice of a
sample's neurons) over all steps. Per step it adds the kernel column or weight
row of every presynaptic spike into a small accumulator that stays in cache,
runs the neurons on it, and writes the spikes straight into the result array
(B, steps, *shape). Nothing of the size of layer x steps x batch is built
besides the spikes themselves.

The neuron arithmetic is :func:`sims.kernels.lif_step`'s (Lava's
``PyLifModelBitAcc`` with numpy's int32 wrap-around made explicit), preceded by
the conv accumulator's 24-bit wrap and the int32 port; the two are tested
against each other, and the whole simulator against Lava.

The kernels release the GIL; :func:`split_run` runs them over disjoint item
ranges in a small thread pool. (numba's own parallel threading layers fight
torch's OpenMP pool for the same cores: 10x slower.) The pool lives in
:data:`sims.cache.SIM_CACHE`."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, Final

import numpy as np
import numpy.typing as npt
from numba import njit

from export.geometry import tap_outputs
from hw_targets import constants as C
from sims.cache import SIM_CACHE

def expand_param(value: npt.ArrayLike, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """A scalar, per-channel or per-neuron parameter as a flat (N,) int64 array for ``shape``."""
    arr = np.asarray(value, dtype=np.int64)
    if arr.ndim == 1 and len(shape) == 3 and arr.shape[0] == shape[0]:
        arr = arr.reshape(-1, 1, 1)
    return np.ascontiguousarray(np.broadcast_to(arr, shape).reshape(-1))


def kernel_x_order(k_w: int, stride_x: int) -> npt.NDArray[np.int64]:
    """The order of the kernel columns kx in :func:`scatter_weight`'s layout: by kx mod stride, then
    descending. Columns that one input pixel sends to neighbouring output pixels are then adjacent
    in the same direction as those pixels, so their taps merge into one longer add
    (:func:`conv_band_taps`)."""
    return np.array(sorted(range(k_w), key=lambda kx: (kx % stride_x, -kx)), dtype=np.int64)


def scatter_weight(weight: npt.NDArray[np.integer[Any]], groups: int, stride_x: int) -> npt.NDArray[np.int32]:
    """Torch layout (C_out, C_in / g, kH, kW) -> (C_in, kH, kW, C_out / g) for :func:`conv_lif_layer`,
    the kW axis in :func:`kernel_x_order`."""
    c_out, per_group_in, k_h, k_w = weight.shape
    per_group_out = c_out // groups
    w = np.asarray(weight, dtype=np.int32).reshape(groups, per_group_out, per_group_in, k_h, k_w)
    w = w[..., kernel_x_order(k_w, stride_x)]
    return np.ascontiguousarray(w.transpose(0, 2, 3, 4, 1).reshape(groups * per_group_in, k_h, k_w, per_group_out))


_CPUS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def sim_threads() -> int:
    """Threads the simulator uses: torch's count where torch is loaded (so both use the same cores),
    else ``OMP_NUM_THREADS`` where set (torch's own default follows it), else the CPUs this process
    may run on; never more than the CPUs. The native simulator does not import torch itself."""
    torch = sys.modules.get("torch")
    if torch is not None:
        wanted = int(torch.get_num_threads())
    else:
        try:
            wanted = int(os.environ.get("OMP_NUM_THREADS", "") or _CPUS)
        except ValueError:
            wanted = _CPUS
    return max(1, min(wanted, _CPUS))


def split_run(kernel: Callable[..., None], total: int, *args: object) -> None:
    """Run ``kernel(start, stop, *args)`` over [0, total) split across :func:`sim_threads` threads."""
    workers = max(1, min(sim_threads(), total))
    if workers <= 1:
        kernel(0, total, *args)
        return
    pool = SIM_CACHE.pool(workers - 1)
    bounds = [total * i // workers for i in range(workers + 1)]
    # The calling thread computes the first share itself: one thread fewer to wake per call.
    futures = [pool.submit(kernel, lo, hi, *args) for lo, hi in zip(bounds[1:-1], bounds[2:]) if hi > lo]
    try:
        kernel(bounds[0], bounds[1], *args)
    finally:
        for f in futures:
            f.result()


_I32: Any = np.int32  # (Any: mypy would type every int32 expression below as numpy's)

# The hardware constants, as module-level names: numba freezes globals into the compiled code as
# literals, so naming them here costs nothing at run time.
_DECAY_SHIFT: Final[int] = C.DECAY_SHIFT  # decays are 12-bit fractions
_DECAY_LOW_MASK: Final[int] = C.DECAY_UNITY - 1  # the 12 bits below the decay shift
_ACT_SHIFT: Final[int] = C.ACT_SHIFT  # synaptic input enters u shifted by 6
_STATE_HALF: Final[int] = C.STATE_HALF  # u wraps into (-2**23, 2**23]
_STATE_FULL: Final[int] = 2 * C.STATE_HALF
_V_MAX: Final[int] = C.V_MAX  # v saturates at +-(2**23 - 1)


@njit(inline="always")
def _decay32(x: Any, m: Any) -> Any:
    """``(x * m) >> 12`` rounded toward zero, in int32 only: |x| <= 2**23, 0 <= m <= 4096.

    The product needs 36 bits; split as x = 4096 a + b it is ``a m + (b m) >> 12``, both int32."""
    a = _I32(abs(x))
    d = _I32(_I32(_I32(a >> _I32(_DECAY_SHIFT)) * m)
             + _I32(_I32(_I32(a & _I32(_DECAY_LOW_MASK)) * m) >> _I32(_DECAY_SHIFT)))
    return _I32(-d) if x < _I32(0) else d


@njit(inline="always")
def _lif_frame(
    acc: npt.NDArray[Any], complement: bool, all_active: npt.NDArray[Any], have_input: bool,
    u: npt.NDArray[Any], v: npt.NDArray[Any], im: npt.NDArray[Any], vm: npt.NDArray[Any],
    be: npt.NDArray[Any], th: npt.NDArray[Any], wrap_bits: int, fired: npt.NDArray[Any], clear: bool,
) -> None:
    """One step of a whole layer: accumulator -> u, v, spikes, written in the accumulator's order.

    Branch-free per neuron so that the loop vectorizes; the arithmetic is :func:`sims.kernels.lif_step`'s,
    every operation in int32 with the wrap-arounds native (twice the vector lanes of int64: 1.5x
    faster). That needs int32 constants, decay factors in [0, 4096] and |u| <= 2**23, which every
    network the IR accepts gives (:func:`sims.native._neuron_plan` checks the first two; ``u`` is only
    ever written wrapped to 24 bits). ``wrap_bits`` is the accumulator's width (its sums wrap to it
    first; 0: no wrap besides int32's). With ``clear``, the accumulator is zeroed as it is read
    (cheaper than a pass of its own).
    """
    n = u.shape[0]
    shift = _I32(32 - wrap_bits) if wrap_bits > 0 else _I32(0)
    for i in range(n):
        if have_input:
            x = _I32(all_active[i] - acc[i]) if complement else _I32(acc[i])
            if clear:
                acc[i] = 0
        else:
            x = _I32(0)
        if wrap_bits > 0:  # the accumulator's wrap: sign-extend from its top bit
            x = _I32(_I32(x << shift) >> shift)
        u1 = _I32(_decay32(u[i], im[i]) + _I32(x << _I32(_ACT_SHIFT)))
        u1 = _I32(u1 - _I32(_STATE_FULL)) if u1 > _I32(_STATE_HALF) else u1
        u1 = _I32(u1 + _I32(_STATE_FULL)) if u1 <= _I32(-_STATE_HALF) else u1
        v1 = _I32(_I32(_decay32(v[i], vm[i]) + u1) + be[i])
        v1 = min(max(v1, _I32(-_V_MAX)), _I32(_V_MAX))
        f = v1 > th[i]
        u[i] = u1
        v[i] = _I32(0) if f else v1
        fired[i] = f


@njit(inline="always")
def _to_chw(src: npt.NDArray[Any], dst: npt.NDArray[Any], c_out: int, hw: int, o_lo: int, band_px: int) -> None:
    """A band's channels-last values ``src`` into ``dst`` in C, H, W order from output pixel ``o_lo``:
    sequential writes, strided reads from the cached band (unsigned indices: no negative-index checks)."""
    for c in range(np.uint64(c_out)):
        o = c * np.uint64(hw) + np.uint64(o_lo)
        for pix in range(np.uint64(band_px)):
            dst[o + pix] = src[pix * np.uint64(c_out) + c]


@njit(inline="always")
def _scatter_frame(
    frame: npt.NDArray[Any], want: bool, i_lo: int, i_hi: int, events: npt.NDArray[Any], p_fan: npt.NDArray[Any],
    p_ptr: npt.NDArray[Any], tap_dst: npt.NDArray[Any], tap_src: npt.NDArray[Any], tap_len: npt.NDArray[Any],
    w_flat: npt.NDArray[Any], p_acc: npt.NDArray[Any], per_group_in: int, per_group_out: int, taps: int,
) -> int:
    """Add the kernel columns of every input pixel in ``[i_lo, i_hi)`` whose spike equals ``want`` into
    the band's accumulator (see :func:`conv_lif_layer`); returns the synapses those pixels reach."""
    c_in, pixels = frame.shape[0], frame.shape[1]
    fan_ev = 0
    for c in range(c_in):
        first_out = (c // per_group_in) * per_group_out  # 0 when groups == 1
        frame_c = frame[c]
        fan_c = p_fan[c * pixels : (c + 1) * pixels]
        c_src = c * taps * per_group_out
        # The pixels to scatter, gathered without a branch per pixel (its misses cost
        # more than the adds at typical spike rates).
        n_ev = _gather(frame_c, i_lo, i_hi, want, events)
        for ev in range(n_ev):
            pix = events[ev]
            fan_ev += fan_c[pix]
            for e in range(np.uint64(p_ptr[pix]), np.uint64(p_ptr[pix + np.uint64(1)])):
                # Flat unsigned indices: a slice per tap would cost a reference count,
                # and a signed index numba's negative-index check, which stops the add
                # from vectorizing (6x slower).
                base = np.uint64(tap_dst[e] + first_out)
                src = np.uint64(c_src + tap_src[e])
                for j in range(np.uint64(tap_len[e])):
                    p_acc[base + j] += w_flat[src + j]
    return fan_ev


@njit(nogil=True)
def _gather(frame: npt.NDArray[Any], lo: int, hi: int, want: bool, events: npt.NDArray[Any]) -> Any:
    """The pixels in [lo, hi) whose spike equals ``want``, into ``events``; returns their count.

    Branch-free (a branch per pixel mispredicts at typical spike rates), unsigned (a signed index
    costs a negative-index fix-up per pixel), and compiled on its own with the comparison fixed
    per loop: inside the layer kernel the same loop ran 4x slower."""
    n_ev = np.uint64(0)
    if want:
        for pix in range(np.uint64(lo), np.uint64(hi)):
            events[n_ev] = pix
            n_ev += np.uint64(frame[pix] != 0)
    else:
        for pix in range(np.uint64(lo), np.uint64(hi)):
            events[n_ev] = pix
            n_ev += np.uint64(frame[pix] == 0)
    return n_ev


@njit(cache=True, nogil=True)
def input_lif_layer(
    item_start: int, item_stop: int, x: npt.NDArray[Any], n_parts: int,
    im: npt.NDArray[Any], vm: npt.NDArray[Any], be: npt.NDArray[Any], th: npt.NDArray[Any],
    reset: npt.NDArray[Any], spikes: npt.NDArray[Any], u_rec: npt.NDArray[Any], v_rec: npt.NDArray[Any],
    record: bool, synops: npt.NDArray[Any],
) -> None:
    """Input neurons driven directly by the input integers (no synapse, no latency).

    Work items are (sample, part): item ``b * n_parts + q`` runs the q-th slice of the neurons.

    Args:
        x: (B, T, N) integer input (any layout), added to the current as ``x << 6``; zero past T.
        spikes: (B, steps, N) bool output; u_rec, v_rec: (B, steps, N) int32 when ``record``.
        synops: unused (no synapse delivers into input neurons).
    """
    steps, n = spikes.shape[1], spikes.shape[2]
    t_in = x.shape[1]
    for item in range(item_start, item_stop):
        b = item // n_parts
        q = item % n_parts
        lo = n * q // n_parts
        hi = n * (q + 1) // n_parts
        size = hi - lo
        zero = np.zeros(size, np.int32)
        p_im, p_vm, p_be, p_th = im[lo:hi], vm[lo:hi], be[lo:hi], th[lo:hi]
        u = np.zeros(size, np.int32)
        v = np.zeros(size, np.int32)
        for k in range(steps):
            if reset[k]:
                u[:] = 0
                v[:] = 0
            out = spikes[b, k, lo:hi]
            if k < t_in:
                xin = x[b, k, lo:hi]
                _lif_frame(xin, False, xin, True, u, v, p_im, p_vm, p_be, p_th, 0, out, False)
            else:  # past the input's T: no input
                _lif_frame(zero, False, zero, False, u, v, p_im, p_vm, p_be, p_th, 0, out, False)
            if record:
                u_rec[b, k, lo:hi] = u
                v_rec[b, k, lo:hi] = v


@njit(cache=True, nogil=True)
def conv_lif_layer(
    item_start: int, item_stop: int, s: npt.NDArray[Any], w: npt.NDArray[Any],
    tap_ptr: npt.NDArray[Any], tap_dst: npt.NDArray[Any], tap_src: npt.NDArray[Any], tap_len: npt.NDArray[Any],
    groups: int,
    bands: npt.NDArray[Any], band_inputs: npt.NDArray[Any], fan: npt.NDArray[Any], all_active: npt.NDArray[Any],
    acc_wrap_bits: int,
    im: npt.NDArray[Any], vm: npt.NDArray[Any], be: npt.NDArray[Any], th: npt.NDArray[Any],
    reset: npt.NDArray[Any],
    spikes: npt.NDArray[Any], u_rec: npt.NDArray[Any], v_rec: npt.NDArray[Any], record: bool,
    synops: npt.NDArray[Any],
) -> None:
    """Event-driven convolution fused with the CUBA-LIF neurons behind it.

    A spike at step k - 1 adds its kernel column to the channels-last accumulator of step k
    (Lava's one-step synaptic latency; step 0 is bias only). When more than half of the inputs
    are active the silent ones are scattered instead and subtracted from the sums of an
    all-active frame. Sums are int32 and wrap modulo 2**32, so the 24-bit wrap that follows is
    Lava's whatever the weights.

    Work items are (sample, band): a sample's output pixels may be cut into P bands of whole rows,
    each computed on its own from the input rows that reach it, so that one sample can use
    several threads. Neuron constants, state and ``all_active`` are channels-last (pixel-major),
    so a band is one contiguous slice of them.

    Args:
        item_start, item_stop: items ``b * P + q`` to compute.
        s: (B, steps, C_in, H_in, W_in) bool input spikes.
        w: (C_in, kH, kW, C_out / groups) int32, or int16 where no output's sum can leave int16
            (:func:`scatter_weight`); the accumulator takes its type.
        tap_ptr, tap_dst, tap_src, tap_len: the taps of each input pixel into each band, the
            compressed table of :func:`conv_band_taps` (applied by :func:`_scatter_frame`).
        bands: (P + 1,) int64 output-pixel boundaries of the bands (multiples of W_out).
        band_inputs: (P, 2) int64, the input pixels ``[lo, hi)`` whose taps can reach each band.
        fan: (P, C_in * H_in * W_in) int64, nonzero synapses from each input neuron into each band.
        all_active: (N,) int32 channels-last sums of an all-active frame, wrapped to int32.
        im, vm, be, th: (N,) channels-last neuron constants (int32 or int64).
        spikes: (B, steps, N) bool output in C, H, W order; u_rec, v_rec: (B, steps, N) int32
            in C, H, W order when ``record``; synops: (B * P,) int64 output, synaptic events
            delivered into each item's neurons.
    """
    c_in, h_in, w_in = s.shape[2], s.shape[3], s.shape[4]
    taps, per_group_out = w.shape[1] * w.shape[2], w.shape[3]
    pixels = h_in * w_in
    n_bands = bands.shape[0] - 1
    steps, n = spikes.shape[1], spikes.shape[2]
    c_out = groups * per_group_out
    hw = n // c_out
    per_group_in = c_in // groups
    acc = np.zeros(n, w.dtype)  # int16 where no sum can leave it (the plan's choice), else int32
    fired = np.zeros(n, np.bool_)
    events = np.zeros(pixels + 1, np.uint64)
    w_flat = w.reshape(w.size)
    for item in range(item_start, item_stop):
        b = item // n_bands
        q = item % n_bands
        o_lo = bands[q]  # output pixels [o_lo, o_hi)
        o_hi = bands[q + 1]
        i_lo = band_inputs[q, 0]  # input pixels that reach them
        i_hi = band_inputs[q, 1]
        band_px = o_hi - o_lo
        lo = o_lo * c_out
        size = band_px * c_out
        p_acc = acc[:size]
        p_fired = fired[:size]
        p_all = all_active[lo : lo + size]
        p_im, p_vm, p_be, p_th = im[lo : lo + size], vm[lo : lo + size], be[lo : lo + size], th[lo : lo + size]
        p_fan = fan[q]
        p_ptr = tap_ptr[q]
        fan_all = p_fan.sum()
        u = np.zeros(size, np.int32)
        v = np.zeros(size, np.int32)
        delivered = 0
        for k in range(steps):
            if reset[k]:
                u[:] = 0
                v[:] = 0
            complement = False
            have_input = False
            if k > 0:
                frame = s[b, k - 1].reshape(c_in, pixels)
                active = 0
                for c in range(c_in):
                    for pix in range(i_lo, i_hi):
                        active += frame[c, pix]
                span = c_in * (i_hi - i_lo)
                complement = 2 * active > span
                have_input = active > 0
            if have_input:
                # (the accumulator is zero: the neuron update clears it)
                fan_ev = _scatter_frame(frame, not complement, i_lo, i_hi, events, p_fan, p_ptr, tap_dst, tap_src,
                                        tap_len, w_flat, p_acc, per_group_in, per_group_out, taps)
                delivered += fan_all - fan_ev if complement else fan_ev
            _lif_frame(p_acc, complement, p_all, have_input, u, v, p_im, p_vm, p_be, p_th, acc_wrap_bits,
                       p_fired, True)
            _to_chw(p_fired, spikes[b, k], c_out, hw, o_lo, band_px)
            if record:
                _to_chw(u, u_rec[b, k], c_out, hw, o_lo, band_px)
                _to_chw(v, v_rec[b, k], c_out, hw, o_lo, band_px)
        synops[item] = delivered


@njit(inline="always")
def _dense_synapse_step(
    s: npt.NDArray[Any], b: int, k: int, w_t: npt.NDArray[Any], delays: npt.NDArray[Any], weight_exp: int,
    fan: npt.NDArray[Any], acc: npt.NDArray[Any], part: npt.NDArray[Any], n_in: int, n: int,
) -> int:
    """One dense synapse process at step k: into ``acc`` (int64, zeroed here), per distinct delay d the
    weights of the inputs that spiked at step k - 1 - d, summed in ``part`` and shifted by the weight
    exponent (Lava's DelayDense); returns the synaptic events delivered."""
    delivered = 0
    acc[:] = 0
    for di in range(delays.shape[0]):
        src = k - 1 - delays[di]
        if src < 0:
            continue
        part[:] = 0
        row = s[b, src]
        wd = w_t[di].reshape(n_in * n)
        fan_d = fan[di]
        for j in range(n_in):
            if row[j]:
                delivered += fan_d[j]
                first = np.uint64(j * n)
                for o in range(np.uint64(n)):
                    part[o] += wd[first + o]
        if weight_exp > 0:
            for o in range(n):
                acc[o] += part[o] << weight_exp
        elif weight_exp < 0:
            for o in range(n):
                acc[o] += part[o] >> (-weight_exp)
        else:
            for o in range(n):
                acc[o] += part[o]
    return delivered


@njit(cache=True, nogil=True)
def dense_lif_layer(
    b_start: int, b_stop: int, s: npt.NDArray[Any], w_t: npt.NDArray[Any], delays: npt.NDArray[Any],
    weight_exp: int, fan: npt.NDArray[Any], im: npt.NDArray[Any], vm: npt.NDArray[Any], be: npt.NDArray[Any],
    th: npt.NDArray[Any], reset: npt.NDArray[Any], spikes: npt.NDArray[Any], u_rec: npt.NDArray[Any],
    v_rec: npt.NDArray[Any], record: bool, synops: npt.NDArray[Any],
) -> None:
    """Event-driven dense synapse (with per-synapse delays) fused with its CUBA-LIF neurons.

    A spike at step k arrives at step k + 1 + d. Each delay's sums are shifted by the weight
    exponent before they are added, as Lava's DelayDense does.

    Args:
        s: (B, steps, N_in) bool input spikes.
        w_t: (D, N_in, N_out) int32 or int64 effective weights per distinct delay, transposed; int32
            only where no sum of them can leave int32.
        delays: (D,) int64 the delays.
        fan: (D, N_in) int64, nonzero synapses of each delay leaving each input.
        spikes: (B, steps, N_out) bool output; u_rec, v_rec as for :func:`input_lif_layer`.
        synops: (B,) int64 output, synaptic events delivered into the layer.
    """
    n_in = s.shape[2]
    steps, n = spikes.shape[1], spikes.shape[2]
    acc = np.zeros(n, np.int64)
    part = np.zeros(n, w_t.dtype)  # int32 when no sum can overflow it: twice the lanes
    for b in range(b_start, b_stop):
        u = np.zeros(n, np.int32)
        v = np.zeros(n, np.int32)
        delivered = 0
        for k in range(steps):
            if reset[k]:
                u[:] = 0
                v[:] = 0
            delivered += _dense_synapse_step(s, b, k, w_t, delays, weight_exp, fan, acc, part, n_in, n)
            out = spikes[b, k]
            _lif_frame(acc, False, acc, True, u, v, im, vm, be, th, 0, out, False)
            if record:
                u_rec[b, k] = u
                v_rec[b, k] = v
        synops[b] = delivered


@njit(cache=True, nogil=True)
def conv_current_layer(
    item_start: int, item_stop: int, s: npt.NDArray[Any], w: npt.NDArray[Any],
    tap_ptr: npt.NDArray[Any], tap_dst: npt.NDArray[Any], tap_src: npt.NDArray[Any], tap_len: npt.NDArray[Any],
    groups: int,
    bands: npt.NDArray[Any], band_inputs: npt.NDArray[Any], fan: npt.NDArray[Any], all_active: npt.NDArray[Any],
    acc_wrap_bits: int, current: npt.NDArray[Any], synops: npt.NDArray[Any],
) -> None:
    """One conv synapse PROCESS of a merge: its output added into the neurons' input port, every step.

    The scatter of :func:`conv_lif_layer` (same tables, same one-step latency, same complement trick),
    but instead of feeding neurons, the process's accumulator is wrapped to ``acc_wrap_bits`` (its own
    24-bit wrap) and added into ``current`` in int32, as Lava's ``a_in`` port adds the outputs of every
    process connected to it. Called once per source of a merge layer.

    Args:
        s: (B, steps, C_in, H_in, W_in) bool spikes of this source.
        current: (B, steps, N) int32 in C, H, W order: the port's sum so far (added into).
        synops: (B * P,) int64, synaptic events this process delivers (added into).
        the rest: as :func:`conv_lif_layer`.
    """
    c_in, h_in, w_in = s.shape[2], s.shape[3], s.shape[4]
    taps, per_group_out = w.shape[1] * w.shape[2], w.shape[3]
    pixels = h_in * w_in
    n_bands = bands.shape[0] - 1
    steps, n = current.shape[1], current.shape[2]
    c_out = groups * per_group_out
    hw = n // c_out
    per_group_in = c_in // groups
    shift = _I32(32 - acc_wrap_bits) if acc_wrap_bits > 0 else _I32(0)
    acc = np.zeros(n, w.dtype)
    events = np.zeros(pixels + 1, np.uint64)
    w_flat = w.reshape(w.size)
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
        p_all = all_active[lo : lo + size]
        p_fan = fan[q]
        p_ptr = tap_ptr[q]
        fan_all = p_fan.sum()
        delivered = 0
        for k in range(1, steps):
            frame = s[b, k - 1].reshape(c_in, pixels)
            active = 0
            for c in range(c_in):
                for pix in range(i_lo, i_hi):
                    active += frame[c, pix]
            if active == 0:
                continue
            complement = 2 * active > c_in * (i_hi - i_lo)
            fan_ev = _scatter_frame(frame, not complement, i_lo, i_hi, events, p_fan, p_ptr, tap_dst, tap_src,
                                    tap_len, w_flat, p_acc, per_group_in, per_group_out, taps)
            delivered += fan_all - fan_ev if complement else fan_ev
            out = current[b, k]
            for c in range(np.uint64(c_out)):
                o = c * np.uint64(hw) + np.uint64(o_lo)
                for pix in range(np.uint64(band_px)):
                    e = pix * np.uint64(c_out) + c
                    x = _I32(p_all[e] - p_acc[e]) if complement else _I32(p_acc[e])
                    if acc_wrap_bits > 0:
                        x = _I32(_I32(x << shift) >> shift)
                    out[o + pix] = _I32(out[o + pix] + x)
            p_acc[:] = 0
        synops[item] += delivered


@njit(cache=True, nogil=True)
def dense_current_layer(
    b_start: int, b_stop: int, s: npt.NDArray[Any], w_t: npt.NDArray[Any], delays: npt.NDArray[Any],
    weight_exp: int, fan: npt.NDArray[Any], current: npt.NDArray[Any], synops: npt.NDArray[Any],
) -> None:
    """One dense synapse PROCESS of a merge: its int32 ``a_buff`` added into the neurons' port, every step.

    The synapse of :func:`dense_lif_layer` (per-delay sums shifted by the weight exponent, held in
    int32), added into ``current`` (B, steps, N_out) int32; ``synops`` (B,) is added into."""
    n_in = s.shape[2]
    steps, n = current.shape[1], current.shape[2]
    acc = np.zeros(n, np.int64)
    part = np.zeros(n, w_t.dtype)
    for b in range(b_start, b_stop):
        delivered = 0
        for k in range(steps):
            delivered += _dense_synapse_step(s, b, k, w_t, delays, weight_exp, fan, acc, part, n_in, n)
            out = current[b, k]
            for o in range(n):
                out[o] = _I32(out[o] + _I32(acc[o]))
        synops[b] += delivered


def conv_taps(
    in_hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
    dilation: tuple[int, int], out_hw: tuple[int, int],
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The (input pixel -> output pixel, kernel tap) pairs of a conv, compressed by input pixel.

    Returns ``(ptr, out, tap)``: input pixel p reaches output pixel ``out[e]`` through kernel tap
    ``tap[e]`` for e in ``ptr[p]:ptr[p + 1]``; pixels row-major, taps ``ky * kW + kx``. Precomputing
    these takes the stride and padding tests, and their branch misses, out of the scatter loop.
    """
    axes = [tap_outputs(size_in, size_out, k, st, pad, dil)
            for size_in, k, st, pad, dil, size_out in zip(in_hw, kernel, stride, padding, dilation, out_hw)]
    ys, xs = axes
    # (H_in, W_in, kH, kW): output pixel or -1
    oy = ys[:, None, :, None]
    ox = xs[None, :, None, :]
    out = np.where((oy >= 0) & (ox >= 0), oy * out_hw[1] + ox, -1).reshape(in_hw[0] * in_hw[1], kernel[0] * kernel[1])
    valid = out >= 0
    ptr = np.concatenate([[0], np.cumsum(valid.sum(axis=1))]).astype(np.int64)
    pix, tap = np.nonzero(valid)  # row-major: grouped by pixel, taps ascending
    return ptr, np.ascontiguousarray(out[pix, tap]).astype(np.int64), tap.astype(np.int64)


def conv_band_taps(
    taps: tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]], pixels: int,
    bands: npt.NDArray[np.int64], c_out: int, per_group_out: int, k_w: int, stride_x: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """:func:`conv_taps` cut by output band, as ready offsets, with adjacent taps merged.

    Returns ``(ptr, dst, src, length)``: ``ptr`` (P, pixels + 1); for e in ``ptr[q, p]:ptr[q, p + 1]``
    input pixel p adds ``length[e]`` weights from offset ``src[e]`` of its channel's block in
    :func:`scatter_weight`'s layout (kernel columns in :func:`kernel_x_order`) into band q's
    accumulator from element ``dst[e]`` (output pixel relative to the band, times C_out). Without
    groups, taps of one pixel into neighbouring output pixels of a row are contiguous on both sides
    and merge into one (a stride-2 3x3 conv: 1.5 adds per pixel of 2 columns' length on average
    instead of 2.25 of one).
    """
    ptr, out, tap = taps
    reach = np.repeat(np.arange(pixels), np.diff(ptr))  # the input pixel of each tap
    position = np.argsort(kernel_x_order(k_w, stride_x))  # kx -> its column in the layout
    src_all = (tap // k_w * k_w + position[tap % k_w]) * per_group_out
    n_bands = len(bands) - 1
    band_ptr = np.zeros((n_bands, pixels + 1), dtype=np.int64)
    dst_parts, src_parts, len_parts = [], [], []
    start = 0
    for q in range(n_bands):
        inside = np.flatnonzero((out >= bands[q]) & (out < bands[q + 1]))
        order = np.lexsort((src_all[inside], reach[inside]))  # by pixel, then layout column
        idx = inside[order]
        pix, dst, src = reach[idx], (out[idx] - bands[q]) * c_out, src_all[idx]
        follows = np.zeros(len(idx), dtype=bool)
        if per_group_out == c_out and len(idx) > 1:  # merging needs one group: its columns span C_out
            follows[1:] = (pix[1:] == pix[:-1]) & (dst[1:] == dst[:-1] + c_out) & (src[1:] == src[:-1] + c_out)
        first = np.flatnonzero(~follows)
        run = np.diff(np.append(first, len(idx)))  # taps per merged run
        band_ptr[q] = start + np.concatenate([[0], np.cumsum(np.bincount(pix[first], minlength=pixels))])
        dst_parts.append(dst[first])
        src_parts.append(src[first])
        len_parts.append(run * per_group_out)
        start += len(first)
    dst_all, src_first, length = (np.concatenate(p).astype(np.int64) for p in (dst_parts, src_parts, len_parts))
    return band_ptr, dst_all, src_first, length
