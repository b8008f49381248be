"""Native integer simulator: Lava's fixed_pt semantics, vectorized and time-batched.

The synapses of a layer depend only on the previous layer's spikes, so the
simulator runs layer by layer: one convolution or matrix product over all
(step, sample) frames at once, then a short loop over steps for the neuron
dynamics (elementwise on the whole batch). Sums are exact: float32 when every
possible sum stays below 2**24, float64 below 2**53, int64 otherwise.

Timing is Lava's (reference section 8): a synapse delivers at step k what its
input spiked at step k-1, every layer integrates a bias-only step at k = 0, and
input spikes enter the input neuron's current directly (files with an input
layer) or the first synapse (files without).
"""

from __future__ import annotations

import time
import warnings
import weakref
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, default_dense_neuron
from hw_targets import constants as C
from hw_targets.errors import SimulationError
from sims.counts import synaptic_ops
from sims.kernels import netx_dense_synapse
from sims.jit_kernels import (
    expand_param,
    lif_layer,
    scatter_conv_nhwc,
    scatter_dense,
    scatter_weight,
    split_run,
)
from sims.result import SimResult

#: Largest synaptic-input tensor (bytes) built at once; bigger batches are split.
_CHUNK_BYTES = 192 * 1024 * 1024


@dataclass(frozen=True)
class _NeuronPlan:
    """Flat (N,) int64 constants of one neuron layer, for the compiled loop."""

    i_mult: npt.NDArray[np.int64]
    v_mult: npt.NDArray[np.int64]
    bias_eff: npt.NDArray[np.int64]
    vth_eff: npt.NDArray[np.int64]


def _neuron_plan(neuron: CubaNeuron, bias: npt.ArrayLike | None, shape: tuple[int, ...]) -> _NeuronPlan:
    # Lava keeps bias_mant as int16 and shifts it by bias_exp = 6 in int32.
    b = np.zeros((), np.int64) if bias is None else np.asarray(bias).astype(np.int16).astype(np.int64) << C.BIAS_EXP
    return _NeuronPlan(
        i_mult=expand_param(C.DECAY_UNITY - np.asarray(neuron.i_decay, np.int64), shape),
        v_mult=expand_param(C.DECAY_UNITY - np.asarray(neuron.v_decay, np.int64), shape),
        bias_eff=expand_param(b, shape),
        vth_eff=expand_param(np.asarray(neuron.v_th_mant, np.int64) << C.VTH_SHIFT, shape),
    )


@dataclass(frozen=True)
class _DensePlan:
    weight_t: npt.NDArray[np.int64]  # (D, in, out): effective weights per distinct delay, transposed
    delays: tuple[int, ...]
    weight_exp: int


@dataclass(frozen=True)
class _ConvPlan:
    scatter_weight: npt.NDArray[np.int32]
    all_active: npt.NDArray[np.int32]  # (C, H, W): the sums for an input frame of all ones, wrapped to int32


#: Plans depend only on the (immutable) layer; built once per layer object.
_PLANS: "weakref.WeakKeyDictionary[Layer, _DensePlan | _ConvPlan]" = weakref.WeakKeyDictionary()


def _plan_dense(layer: Dense, where: str) -> _DensePlan:
    cached = _PLANS.get(layer)
    if isinstance(cached, _DensePlan):
        return cached
    plan = _build_dense_plan(layer, where)
    _PLANS[layer] = plan
    return plan


def _plan_conv(layer: Conv, in_shape: tuple[int, ...]) -> _ConvPlan:
    cached = _PLANS.get(layer)
    if isinstance(cached, _ConvPlan):
        return cached
    plan = _build_conv_plan(layer, in_shape)
    _PLANS[layer] = plan
    return plan


def _build_dense_plan(layer: Dense, where: str) -> _DensePlan:
    try:
        syn = netx_dense_synapse(layer.weight)
    except ValueError as exc:
        raise SimulationError(f"{where}: {exc}") from None
    if not syn.exact:
        warnings.warn(
            f"{where}: Lava's netx loader does not deliver these weights exactly (all weights <= 0, or "
            "outside netx's 8-bit range; reference section 6.1). The simulation reproduces what Lava does.",
            stacklevel=3,
        )
    eff = syn.weight_eff
    delays_arr = np.zeros(eff.shape, dtype=np.int64) if layer.delay is None else np.asarray(layer.delay, dtype=np.int64)
    delays = tuple(int(d) for d in np.unique(delays_arr))
    stack = np.stack([np.where(delays_arr == d, eff, 0).T for d in delays]).astype(np.int64)
    return _DensePlan(np.ascontiguousarray(stack), delays, syn.weight_exp)


def _build_conv_plan(layer: Conv, in_shape: tuple[int, ...]) -> _ConvPlan:
    w = np.asarray(layer.weight, dtype=np.int64)
    ones = torch.ones((1, *in_shape), dtype=torch.float64)
    full = F.conv2d(ones, torch.from_numpy(w).double(), stride=layer.stride, padding=layer.padding,
                    dilation=layer.dilation, groups=layer.groups)[0]
    # |sum| < 2**53 for any int32 weights and realistic fan-in, so float64 is exact; int32 wrap as the scatter does.
    all_active = full.round().to(torch.int64).numpy().astype(np.int32)
    return _ConvPlan(scatter_weight(w, layer.groups), all_active)


def _dense_accumulator(plan: _DensePlan, s: torch.Tensor, steps: int) -> npt.NDArray[np.int64]:
    """Accumulator rows (steps - 1, B * out) int64 for presynaptic spikes s (steps, B, in).

    Each delay's sums are shifted by the weight exponent before they are added,
    as Lava's DelayDense does; without delays the neuron loop could shift, but
    doing it here keeps one path.
    """
    _, batch, n_in = s.shape
    n_out = plan.weight_t.shape[2]
    span = steps - 1
    total = np.zeros((span, batch * n_out), dtype=np.int64)
    frames = s.reshape(steps, batch, n_in).numpy()
    for i, d in enumerate(plan.delays):
        rows = span - d  # a spike at step k arrives at k + 1 + d
        if rows <= 0:
            continue
        acc = np.zeros((rows * batch, n_out), dtype=np.int64)
        split_run(scatter_dense, rows * batch, frames[:rows].reshape(rows * batch, n_in), plan.weight_t[i], acc)
        if plan.weight_exp > 0:
            acc <<= plan.weight_exp
        elif plan.weight_exp < 0:
            acc >>= -plan.weight_exp
        total[d:] += acc.reshape(rows, batch * n_out)
    return total


def _conv_accumulator(layer: Conv, plan: _ConvPlan, s: torch.Tensor, steps: int) -> npt.NDArray[np.int32]:
    """Accumulator rows (steps - 1, B * C * H * W) int32 for presynaptic spikes s (steps, B, Cin, Hin, Win).

    Event-driven: each active input adds its kernel column. When most inputs are
    active, the silent ones are scattered instead and subtracted from the
    response to an all-active frame. int32 sums wrap modulo 2**32, so Lava's
    24-bit accumulator wrap (applied in the neuron loop) comes out exact.
    """
    batch = s.shape[1]
    span = steps - 1
    frames = s[:span].reshape(span * batch, *s.shape[2:]).numpy()
    n_frames = span * batch
    if frames.size == 0:
        return np.zeros((span, batch * int(np.prod(layer.shape))), dtype=np.int32)
    dense_input = np.count_nonzero(frames) > frames.size // 2
    if dense_input:
        frames = ~frames
    geometry = (*layer.stride, *layer.padding, *layer.dilation, layer.groups)
    nhwc = np.zeros((n_frames, layer.shape[1], layer.shape[2], layer.shape[0]), dtype=np.int32)
    split_run(scatter_conv_nhwc, n_frames, frames, plan.scatter_weight, *geometry, nhwc)
    out = np.ascontiguousarray(nhwc.transpose(0, 3, 1, 2))
    if dense_input:
        np.subtract(plan.all_active, out, out=out)
    return out.reshape(span, -1)


def _run_neurons(
    acc: torch.Tensor, delay: int, steps: int, batch: int, shape: tuple[int, ...], plan: _NeuronPlan,
    reset: npt.NDArray[np.bool_], acc_wrap_bits: int, weight_exp: int, record_state: bool,
) -> tuple[torch.Tensor, npt.NDArray[np.int32] | None, npt.NDArray[np.int32] | None]:
    """Spikes (steps, B, *shape) of one neuron layer, plus u and v (B, steps, *shape) when recorded."""
    n = int(np.prod(shape))
    spikes = np.empty((steps, batch * n), dtype=np.bool_)
    rec = (steps, batch * n) if record_state else (1, 1)
    u_rec = np.empty(rec, dtype=np.int32)
    v_rec = np.empty(rec, dtype=np.int32)
    a = acc.numpy() if acc.numel() else np.zeros((0, batch * n), dtype=np.int32)
    split_run(lif_layer, batch * n, a, delay, n, plan.i_mult, plan.v_mult, plan.bias_eff, plan.vth_eff, reset,
              acc_wrap_bits, weight_exp, spikes, u_rec, v_rec, record_state, min_chunk=4096)
    full = (steps, batch, *shape)
    if not record_state:
        return torch.from_numpy(spikes).view(full), None, None
    return (torch.from_numpy(spikes).view(full), np.moveaxis(u_rec.reshape(full), 0, 1),
            np.moveaxis(v_rec.reshape(full), 0, 1))


def _reset_steps(steps: int, reset_interval: int | None, offset: int) -> npt.NDArray[np.bool_]:
    """0-based steps at whose start a layer resets; netx gives neuron layer i offset ``reset_offset + 1 + i``.

    Lava's LIFReset resets when ``t % R == offset % R`` with t = k + 1 (``PyLifResetModelBitAcc``).
    """
    reset = np.zeros(steps, dtype=np.bool_)
    if reset_interval is not None:
        k = np.arange(steps)
        reset = (k + 1) % reset_interval == offset % reset_interval
    return reset


def normalize_input(net: Network, spikes: npt.ArrayLike, steps: int | None) -> tuple[npt.NDArray[np.int32], int]:
    """Check and bring an input array to (B, steps, *input_shape) int32, padded with zeros.

    Raises:
        SimulationError: wrong shape, dtype, NaN/inf, or steps <= 0.
    """
    x = np.asarray(spikes)
    in_shape = tuple(net.input_shape)
    if x.dtype == np.bool_:
        x = x.astype(np.int32)
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise SimulationError(f"input has dtype {x.dtype}; expected bool or integer spikes")
    if np.issubdtype(x.dtype, np.floating):
        if not np.all(np.isfinite(x)):
            raise SimulationError("input contains NaN or inf")
        if not np.all(x == np.trunc(x)):
            raise SimulationError("input holds non-integer values; spikes must be 0/1 or integer payloads")
    if x.shape[1:] == in_shape:
        x = x[None]
    if x.ndim != len(in_shape) + 2 or x.shape[2:] != in_shape:
        raise SimulationError(f"input has shape {x.shape}; expected (T, *{in_shape}) or (B, T, *{in_shape})")
    if x.size and (x.min() < np.iinfo(np.int32).min or x.max() > np.iinfo(np.int32).max):
        raise SimulationError("input values do not fit int32")
    if steps is None:
        steps = x.shape[1] + sum(isinstance(l, (Dense, Conv)) for l in net.layers)
    if steps <= 0:
        raise SimulationError(f"steps must be positive, got {steps}")
    out = np.zeros((x.shape[0], steps, *in_shape), dtype=np.int32)
    n = min(steps, x.shape[1])
    out[:, :n] = x[:, :n]
    return out, steps


def simulate(
    net: Network,
    spikes: npt.ArrayLike,
    steps: int | None = None,
    *,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    record_state: bool = False,
    input_bias: npt.ArrayLike | None = None,
) -> SimResult:
    """Simulate ``net`` on a batch of inputs, bit-exactly as Lava's fixed_pt run would.

    Args:
        net: the integer network.
        spikes: (T, *input_shape) or (B, T, *input_shape), bool or integer. Into a
            synapse, nonzero means a spike; into an input neuron, the integer is
            added to its current (``a << 6``), as a Lava RingBuffer source would.
        steps: steps to run; inputs past T are zero. Default: T plus one step per
            synaptic layer, so the last input frame reaches the output.
        reset_interval, reset_offset: Lava's LIFReset (netx ``reset_interval``).
        record_state: also return every neuron layer's ``u`` and ``v``.
        input_bias: (C, H, W) or (N,) ``bias_mant`` for the input neuron (the way
            lava-dl's hardware test drives PilotNet).

    Returns:
        A :class:`SimResult` with bool spikes (B, steps, *shape) for every layer.

    Raises:
        SimulationError: bad input, or a layer netx itself cannot load.
    """
    x_np, steps = normalize_input(net, spikes, steps)
    if reset_interval is not None and reset_interval < 1:
        raise SimulationError(f"reset_interval must be >= 1, got {reset_interval}")
    if reset_offset < 0:
        raise SimulationError(f"reset_offset must be >= 0, got {reset_offset}")
    t0 = time.perf_counter()
    batch = x_np.shape[0]
    largest = max(int(np.prod(l.out_shape)) for l in net.layers) * steps * 8
    chunk = max(1, min(batch, _CHUNK_BYTES // max(largest, 1)))
    parts = [
        _simulate_chunk(net, x_np[i : i + chunk], steps, reset_interval, reset_offset, record_state, input_bias)
        for i in range(0, batch, chunk)
    ]
    result = SimResult(
        layer_names=[l.name for l in net.layers],
        spikes=[np.concatenate([p.spikes[i] for p in parts]) for i in range(len(net.layers))],
        synops=np.zeros((batch, len(net.layers)), np.int64),
        u=[_cat([p.u[i] for p in parts]) for i in range(len(net.layers))],
        v=[_cat([p.v[i] for p in parts]) for i in range(len(net.layers))],
        backend="native",
    )
    result.synops = synaptic_ops(net, x_np != 0, result.spikes)
    result.wall_s = time.perf_counter() - t0
    return result


def _cat(parts: list[npt.NDArray[np.int32] | None]) -> npt.NDArray[np.int32] | None:
    arrays = [p for p in parts if p is not None]
    return np.concatenate(arrays) if arrays else None


def _simulate_chunk(
    net: Network,
    x_np: npt.NDArray[np.int32],
    steps: int,
    reset_interval: int | None,
    reset_offset: int,
    record_state: bool,
    input_bias: npt.ArrayLike | None,
) -> SimResult:
    batch = x_np.shape[0]
    x = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x_np, 1, 0)))  # (steps, B, *in)
    prev: torch.Tensor = x != 0
    spikes_out: list[npt.NDArray[np.bool_]] = []
    us: list[npt.NDArray[np.int32] | None] = []
    vs: list[npt.NDArray[np.int32] | None] = []
    neuron_index = 0
    for i, layer in enumerate(net.layers):
        where = net.describe(i)
        shape = tuple(layer.out_shape)
        acc: torch.Tensor | None = None
        delay, wrap_bits, weight_exp = 1, 0, 0
        neuron: CubaNeuron | None = None
        bias: npt.ArrayLike | None = None
        if isinstance(layer, InputLayer):
            if layer.neuron is not None:
                # Input spikes enter the input neuron's current directly (no synapse, no latency).
                acc, delay, neuron = x.reshape(steps, -1), 0, layer.neuron
                if input_bias is not None:
                    bias = np.asarray(input_bias, dtype=np.int64)
                    if bias.shape not in ((), shape, (shape[0],)):
                        raise SimulationError(f"{where}: input_bias has shape {bias.shape}; expected {shape}")
        elif isinstance(layer, Flatten):
            prev = prev.reshape(steps, batch, -1)
        elif isinstance(layer, Dense):
            acc = torch.from_numpy(_dense_accumulator(_plan_dense(layer, where), prev, steps))
            neuron, bias = layer.neuron or default_dense_neuron(), layer.bias
        elif isinstance(layer, Conv):
            acc = torch.from_numpy(_conv_accumulator(layer, _plan_conv(layer, tuple(prev.shape[2:])), prev, steps))
            neuron, bias, wrap_bits = layer.neuron, layer.bias, C.CONV_ACC_BITS
        if acc is not None and neuron is not None:
            reset = _reset_steps(steps, reset_interval, reset_offset + 1 + neuron_index)
            neuron_index += 1
            prev, u, v = _run_neurons(acc, delay, steps, batch, shape, _neuron_plan(neuron, bias, shape), reset,
                                      wrap_bits, weight_exp, record_state)
            us.append(u)
            vs.append(v)
        else:
            us.append(None)
            vs.append(None)
        spikes_out.append(np.moveaxis(prev.numpy(), 0, 1).reshape(batch, steps, *shape))
    return SimResult([l.name for l in net.layers], spikes_out, np.zeros((batch, 0), np.int64), us, vs)
