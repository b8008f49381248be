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
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, default_dense_neuron
from hw_targets import constants as C
from hw_targets.errors import SimulationError
from sims.counts import synaptic_ops
from sims.kernels import LifParams, apply_weight_exp, lif_step, netx_dense_synapse, wrap_signed
from sims.result import SimResult

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


def _lif_params(neuron: CubaNeuron, bias: npt.NDArray[np.int32] | None, shape: tuple[int, ...]) -> LifParams:
    i_mult = _param(C.DECAY_UNITY - neuron.i_decay, shape)
    v_mult = _param(C.DECAY_UNITY - neuron.v_decay, shape)
    vth = _param(neuron.v_th_mant, shape)
    vth_eff = vth << C.VTH_SHIFT
    bias_eff: torch.Tensor | int = 0
    if bias is not None:
        # Lava keeps bias_mant as int16 and shifts it by bias_exp = 6 in int32.
        b = torch.from_numpy(np.asarray(bias).astype(np.int16).astype(np.int32)) << C.BIAS_EXP
        if b.ndim == 1 and len(shape) == 3:
            b = b.view(-1, 1, 1)
        bias_eff = b if b.ndim else int(b)
    if isinstance(vth_eff, torch.Tensor):
        vth_eff = vth_eff.to(torch.int32)
    return LifParams(i_mult=i_mult, v_mult=v_mult, bias_eff=bias_eff, vth_eff=vth_eff)


@dataclass(frozen=True)
class _DensePlan:
    weight: torch.Tensor  # (out, in) in the exact dtype, or per-delay stack (D, out, in)
    delays: tuple[int, ...]
    weight_exp: int


@dataclass(frozen=True)
class _ConvPlan:
    weight: torch.Tensor
    dtype: torch.dtype


def _plan_dense(layer: Dense, where: str) -> _DensePlan:
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


def _plan_conv(layer: Conv) -> _ConvPlan:
    w = np.asarray(layer.weight, dtype=np.int64)
    bound = int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max())
    dtype = _exact_dtype(bound)
    if dtype == torch.int64:
        dtype = torch.float64  # sums beyond 2**53 wrap at 24 bits anyway; float64 keeps the low bits only below it
    return _ConvPlan(torch.from_numpy(w).to(dtype), dtype)


def _synapse_dense(plan: _DensePlan, s: torch.Tensor, steps: int) -> torch.Tensor:
    """Synaptic input (steps, B, out) from presynaptic spikes s (steps, B, in)."""
    _, batch, _ = s.shape
    n_out = plan.weight.shape[1]
    a = torch.zeros((steps, batch, n_out), dtype=torch.int64)
    for i, d in enumerate(plan.delays):
        span = steps - 1 - d  # a spike at step k arrives at k + 1 + d
        if span <= 0:
            continue
        x = s[:span].reshape(span * batch, -1).to(plan.weight.dtype)
        acc = (x @ plan.weight[i].T).round().to(torch.int64) if plan.weight.dtype.is_floating_point else x @ plan.weight[i].T
        a[1 + d :] += apply_weight_exp(acc, plan.weight_exp).view(span, batch, n_out)
    # Lava sends a_buff through an int32 port: wrap to int32 exactly as numpy does.
    return a.to(torch.int32)


def _synapse_conv(layer: Conv, plan: _ConvPlan, s: torch.Tensor, steps: int) -> torch.Tensor:
    """Synaptic input (steps, B, C, H, W) from presynaptic spikes s (steps, B, Cin, Hin, Win)."""
    batch = s.shape[1]
    a = torch.zeros((steps, batch, *layer.shape), dtype=torch.int32)
    span = steps - 1
    if span <= 0:
        return a
    x = s[:span].reshape(span * batch, *s.shape[2:]).to(plan.dtype)
    out = F.conv2d(x, plan.weight, stride=layer.stride, padding=layer.padding, dilation=layer.dilation,
                   groups=layer.groups)
    acc = out.round().to(torch.int64)
    # Lava's conv accumulator wraps to a signed 24-bit value (signed_clamp).
    acc = wrap_signed(acc, C.CONV_ACC_BITS)
    a[1:] = acc.view(span, batch, *layer.shape).to(torch.int32)
    return a


def _neuron_loop(
    a: torch.Tensor, params: LifParams, reset_at: set[int], record_state: bool
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Run the LIF over steps. a: int32 (steps, B, *shape). Returns spikes (and u, v)."""
    steps = a.shape[0]
    u = torch.zeros(a.shape[1:], dtype=torch.int32)
    v = torch.zeros_like(u)
    spikes = torch.empty(a.shape, dtype=torch.bool)
    us = torch.empty(a.shape, dtype=torch.int32) if record_state else None
    vs = torch.empty(a.shape, dtype=torch.int32) if record_state else None
    for k in range(steps):
        if k in reset_at:
            u = torch.zeros_like(u)
            v = torch.zeros_like(v)
        u, v, s = lif_step(u, v, a[k], params)
        spikes[k] = s
        if us is not None and vs is not None:
            us[k] = u
            vs[k] = v
    return spikes, us, vs


def _reset_steps(steps: int, reset_interval: int | None, offset: int) -> set[int]:
    """0-based steps at whose start a layer resets; netx gives neuron layer i offset ``reset_offset + 1 + i``.

    Lava's LIFReset resets when ``t % R == offset % R`` with t = k + 1 (``PyLifResetModelBitAcc``).
    """
    if reset_interval is None:
        return set()
    return {k for k in range(steps) if (k + 1) % reset_interval == offset % reset_interval}


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
        synops=np.concatenate([p.synops for p in parts]),
        u=[None if parts[0].u[i] is None else np.concatenate([p.u[i] for p in parts]) for i in range(len(net.layers))],  # type: ignore[misc]
        v=[None if parts[0].v[i] is None else np.concatenate([p.v[i] for p in parts]) for i in range(len(net.layers))],  # type: ignore[misc]
        backend="native",
    )
    result.wall_s = time.perf_counter() - t0
    return result


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
        a: torch.Tensor | None = None
        neuron: CubaNeuron | None = None
        bias = None
        if isinstance(layer, InputLayer):
            if layer.neuron is not None:
                a = x.to(torch.int32)
                neuron = layer.neuron
                bias = None if input_bias is None else np.asarray(input_bias, dtype=np.int64)
                if bias is not None and bias.shape not in ((), tuple(layer.shape), (layer.shape[0],)):
                    raise SimulationError(f"{where}: input_bias has shape {bias.shape}; expected {tuple(layer.shape)}")
        elif isinstance(layer, Flatten):
            prev = prev.reshape(steps, batch, -1)
        elif isinstance(layer, Dense):
            plan = _plan_dense(layer, where)
            a = _synapse_dense(plan, prev, steps)
            neuron = layer.neuron or default_dense_neuron()
            bias = layer.bias
        elif isinstance(layer, Conv):
            a = _synapse_conv(layer, _plan_conv(layer), prev, steps)
            neuron = layer.neuron
            bias = layer.bias
        if a is not None and neuron is not None:
            params = _lif_params(neuron, bias, tuple(layer.out_shape))
            reset_at = _reset_steps(steps, reset_interval, reset_offset + 1 + neuron_index)
            neuron_index += 1
            prev, u, v = _neuron_loop(a, params, reset_at, record_state)
            us.append(None if u is None else np.moveaxis(u.numpy(), 0, 1))
            vs.append(None if v is None else np.moveaxis(v.numpy(), 0, 1))
        else:
            us.append(None)
            vs.append(None)
        spikes_out.append(np.moveaxis(prev.numpy(), 0, 1))
    synops = synaptic_ops(net, x_np != 0, spikes_out)
    return SimResult([l.name for l in net.layers], spikes_out, synops, us, vs)
