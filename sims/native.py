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
from sims.kernels import apply_weight_exp, netx_dense_synapse
from sims.jit_kernels import expand_param, lif_layer, scatter_conv, scatter_weight, split_run
from sims.result import SimResult

#: Above this fraction of active inputs a dense convolution beats the event-driven scatter.
_SCATTER_MAX_ACTIVITY = 0.5
#: Largest synaptic-input tensor (bytes) built at once; bigger batches are split.
_CHUNK_BYTES = 192 * 1024 * 1024


def _exact_dtype(bound: int) -> torch.dtype:
    """The cheapest float dtype in which every sum up to ``bound`` is an exact integer."""
    if bound < (1 << 24):
        return torch.float32
    if bound < (1 << 53):
        return torch.float64
    return torch.int64


def _param(value: npt.NDArray[np.int32], shape: tuple[int, ...]) -> torch.Tensor | int:
    """A scalar as int, a per-channel vector broadcast over (C, H, W) or (N,)."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return int(arr)
    t = torch.from_numpy(arr.astype(np.int64))
    if len(shape) == 3:
        t = t.view(-1, 1, 1)
    return t


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
    weight: torch.Tensor  # (out, in) in the exact dtype, or per-delay stack (D, out, in)
    delays: tuple[int, ...]
    weight_exp: int


@dataclass(frozen=True)
class _ConvPlan:
    weight: torch.Tensor
    dtype: torch.dtype
    scatter_weight: npt.NDArray[np.int32]


#: Plans depend only on the (immutable) layer; built once per layer object.
_PLANS: "weakref.WeakKeyDictionary[Layer, _DensePlan | _ConvPlan]" = weakref.WeakKeyDictionary()


def _plan_dense(layer: Dense, where: str) -> _DensePlan:
    cached = _PLANS.get(layer)
    if isinstance(cached, _DensePlan):
        return cached
    plan = _build_dense_plan(layer, where)
    _PLANS[layer] = plan
    return plan


def _plan_conv(layer: Conv) -> _ConvPlan:
    cached = _PLANS.get(layer)
    if isinstance(cached, _ConvPlan):
        return cached
    plan = _build_conv_plan(layer)
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
    delays = tuple(int(d) for d in np.unique(delays_arr)) if layer.delay is not None else (0,)
    mats = [np.where(delays_arr == d, eff, 0) for d in delays]
    bound = max(int(np.abs(m).sum(axis=1).max()) for m in mats)
    dtype = _exact_dtype(bound)
    stack = torch.from_numpy(np.stack(mats)).to(dtype)
    return _DensePlan(stack, delays, syn.weight_exp)


def _build_conv_plan(layer: Conv) -> _ConvPlan:
    w = np.asarray(layer.weight, dtype=np.int64)
    bound = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max())
    dtype = _exact_dtype(bound)
    if dtype == torch.int64:
        dtype = torch.float64  # sums beyond 2**53 wrap at 24 bits anyway; float64 keeps the low bits only below it
    return _ConvPlan(torch.from_numpy(w).to(dtype), dtype, scatter_weight(w, layer.groups))


def _dense_accumulator(plan: _DensePlan, s: torch.Tensor, steps: int) -> tuple[torch.Tensor, int]:
    """Accumulator rows (steps - 1, B * out) for presynaptic spikes s (steps, B, in), and the shift still to apply.

    Without delays the exact float sums go straight to the neuron loop, which applies
    the weight exponent. With delays Lava shifts each delay's sum before adding them,
    so that happens here in int64.
    """
    _, batch, _ = s.shape
    n_out = plan.weight.shape[1]
    span = steps - 1
    if plan.delays == (0,):
        x = s[:span].reshape(span * batch, -1).to(plan.weight.dtype)
        return (x @ plan.weight[0].T).reshape(span, batch * n_out), plan.weight_exp
    total = torch.zeros((span, batch * n_out), dtype=torch.int64)
    for i, d in enumerate(plan.delays):
        rows = span - d  # a spike at step k arrives at k + 1 + d
        if rows <= 0:
            continue
        x = s[:rows].reshape(rows * batch, -1).to(plan.weight.dtype)
        acc = x @ plan.weight[i].T
        acc = acc.round().to(torch.int64) if acc.dtype.is_floating_point else acc
        total[d:] += apply_weight_exp(acc, plan.weight_exp).view(rows, batch * n_out)
    return total, 0


def _conv_accumulator(layer: Conv, plan: _ConvPlan, s: torch.Tensor, steps: int) -> torch.Tensor:
    """Accumulator rows (steps - 1, B * C * H * W) for presynaptic spikes s (steps, B, Cin, Hin, Win).

    Sparse input (the usual case) goes through the event-driven scatter, dense input
    through torch's convolution; both give the exact sums (the 24-bit wrap follows).
    """
    batch = s.shape[1]
    span = steps - 1
    frames = s[:span].reshape(span * batch, *s.shape[2:])
    active = int(torch.count_nonzero(frames))
    if frames.numel() == 0 or active <= _SCATTER_MAX_ACTIVITY * frames.numel():
        out_i = np.zeros((span * batch, *layer.shape), dtype=np.int32)
        split_run(scatter_conv, span * batch, frames.numpy(), plan.scatter_weight, *layer.stride, *layer.padding,
                  *layer.dilation, layer.groups, out_i)
        return torch.from_numpy(out_i).reshape(span, -1)
    x = frames.to(plan.dtype)
    out = F.conv2d(x, plan.weight, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
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
            acc, weight_exp = _dense_accumulator(_plan_dense(layer, where), prev, steps)
            neuron, bias = layer.neuron or default_dense_neuron(), layer.bias
        elif isinstance(layer, Conv):
            acc = _conv_accumulator(layer, _plan_conv(layer), prev, steps)
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
