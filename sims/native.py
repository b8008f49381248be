"""Native integer simulator: Lava's fixed_pt semantics, batched and event-driven.

The simulator runs layer by layer. Each layer is one compiled kernel (see
:mod:`sims.jit_kernels`) that walks every sample through all steps: it adds
the kernel column or weight row of each presynaptic spike into a small
accumulator that stays in cache, runs the CUBA-LIF neurons on it, and writes
the spikes straight into the result array. Samples run in parallel threads.
Sums are integer and exact (conv: int16 where no output's sum can leave it,
else int32 wrapping, as Lava's 24-bit wrap needs; dense: int32 where no sum can
leave it, else int64); the neurons run in int32 arithmetic.

Timing is Lava's (reference section 8): a synapse delivers at step k what its
input spiked at step k-1, every layer integrates a bias-only step at k = 0, and
input spikes enter the input neuron's current directly (files with an input
layer) or the first synapse (files without)."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.geometry import ConvGeometry
from export.ir import (
    Conv,
    CubaNeuron,
    Dense,
    InputLayer,
    Layer,
    Network,
    Neuron,
    SigmaDeltaNeuron,
    default_dense_neuron,
)
from export.netx_dense import DenseSynapse, netx_dense_synapse
from hw_targets import constants as C
from hw_targets.errors import SimulationError
from sims.cache import SIM_CACHE
from sims.counts import conv_fanout, dense_fanout
from sims.jit_kernels import (
    conv_current_layer,
    conv_lif_layer,
    conv_band_taps,
    conv_taps,
    dense_current_layer,
    dense_lif_layer,
    expand_param,
    input_lif_layer,
    scatter_weight,
    sim_threads,
    split_run,
)
from sims.result import SimResult



@dataclass(frozen=True)
class _NeuronPlan:
    """Flat (N,) int32 constants of one neuron layer for the compiled loop."""

    i_mult: npt.NDArray[np.int32]
    v_mult: npt.NDArray[np.int32]
    bias_eff: npt.NDArray[np.int32]
    vth_eff: npt.NDArray[np.int32]


def _neuron_plan(neuron: Neuron, bias: npt.ArrayLike | None, shape: tuple[int, ...], where: str) -> _NeuronPlan:
    assert isinstance(neuron, CubaNeuron)  # sigma-delta networks run in sims.sdnn
    # Lava keeps bias_mant as int16 and shifts it by bias_exp = 6 in int32.
    b = np.zeros((), np.int64) if bias is None else np.asarray(bias).astype(np.int16).astype(np.int64) << C.BIAS_EXP
    params: tuple[npt.NDArray[np.signedinteger[Any]], ...] = (
        expand_param(C.DECAY_UNITY - np.asarray(neuron.i_decay, np.int64), shape),
        expand_param(C.DECAY_UNITY - np.asarray(neuron.v_decay, np.int64), shape),
        expand_param(b, shape),
        expand_param(np.asarray(neuron.v_th_mant, np.int64) << C.VTH_SHIFT, shape),
    )
    # The compiled neurons compute in int32 (sims.jit_kernels._lif_frame): every constant must fit,
    # the decay factors lie in [0, 4096]. The IR's ranges guarantee both; checked here all the same.
    if not all(p.size == 0 or (p.min() >= -(2**31) and p.max() < 2**31) for p in params) or not all(
        p.size == 0 or (p.min() >= 0 and p.max() <= C.DECAY_UNITY) for p in params[:2]
    ):
        raise SimulationError(f"{where}: neuron constants outside the ranges of the IR (decays 0..4096, "
                              "17-bit threshold)")
    i_mult, v_mult, bias_eff, vth_eff = (p.astype(np.int32) for p in params)
    return _NeuronPlan(i_mult, v_mult, bias_eff, vth_eff)


@dataclass(frozen=True)
class _DensePlan:
    weight_t: npt.NDArray[np.integer[Any]]  # (D, in, out): effective weights per distinct delay, transposed
    delays: npt.NDArray[np.int64]  # (D,)
    weight_exp: int
    fan: npt.NDArray[np.int64]  # (D, in) nonzero synapses of each delay leaving each input
    neuron: _NeuronPlan


@dataclass(frozen=True)
class _ConvPlan:
    scatter_weight: npt.NDArray[np.int16 | np.int32]  # int16 where no sum of the weights can leave int16
    tap_ptr: npt.NDArray[np.int64]  # (P, pixels + 1) the conv's taps per band and input pixel (conv_band_taps)
    tap_dst: npt.NDArray[np.int64]
    tap_src: npt.NDArray[np.int64]
    tap_len: npt.NDArray[np.int64]
    bands: npt.NDArray[np.int64]  # (P + 1,) output-pixel boundaries of the row bands a sample is cut into
    band_inputs: npt.NDArray[np.int64]  # (P, 2) input pixels [lo, hi) that reach each band
    fan: npt.NDArray[np.int64]  # (P, C_in * H_in * W_in) nonzero synapses from each input into each band
    all_active: npt.NDArray[np.int32]  # (N,) channels-last sums of an all-ones frame, wrapped to int32
    neuron: _NeuronPlan  # channels-last


def _input_plan(layer: InputLayer, bias: npt.NDArray[np.int64] | None, shape: tuple[int, ...],
                where: str) -> _NeuronPlan:
    """The input neurons' constants; the last ``input_bias`` is remembered, as runs often repeat it."""
    assert layer.neuron is not None
    per_layer = SIM_CACHE.plans.setdefault(layer, {})
    last = per_layer.get(("input", shape))
    if last is not None and (last[0] is None) == (bias is None) and (bias is None or np.array_equal(last[0], bias)):
        plan: _NeuronPlan = last[1]
        return plan
    plan = _neuron_plan(layer.neuron, bias, shape, where)
    per_layer[("input", shape)] = (None if bias is None else bias.copy(), plan)
    return plan


def _plan_dense(layer: Dense, where: str) -> _DensePlan:
    return SIM_CACHE.plan(layer, ("dense",), lambda: _build_dense_plan(layer, where))


def _plan_conv(layer: Conv, in_shape: tuple[int, ...], n_parts: int) -> _ConvPlan:
    return SIM_CACHE.plan(layer, ("conv", in_shape, n_parts), lambda: _build_conv_plan(layer, in_shape, n_parts))


def dense_synapse(layer: Dense, where: str) -> DenseSynapse:
    """The weights Lava's netx loader delivers for ``layer`` (both neuron families), with a warning
    where they differ from the file's.

    Raises:
        SimulationError: an all-zero matrix (netx's loader crashes on it).
    """
    try:
        syn = netx_dense_synapse(layer.weight)
    except ValueError as exc:
        raise SimulationError(f"{where}: {exc}") from None
    if not syn.exact:
        warnings.warn(
            f"{where}: Lava's netx loader does not deliver these weights exactly (all weights <= 0, or "
            "outside netx's 8-bit range; reference section 6.1). The simulation reproduces what Lava does.",
            stacklevel=7,
        )
    return syn


def _build_dense_plan(layer: Dense, where: str) -> _DensePlan:
    syn = dense_synapse(layer, where)
    eff = syn.weight_eff
    delays_arr = np.zeros(eff.shape, dtype=np.int64) if layer.delay is None else np.asarray(layer.delay, dtype=np.int64)
    delays = np.unique(delays_arr).astype(np.int64)
    stack = np.stack([np.where(delays_arr == d, eff, 0).T for d in delays]).astype(np.int64)
    if int(np.abs(stack).sum(axis=1).max(initial=0)) < 2**31:  # no sum of these weights leaves int32
        stack = stack.astype(np.int32)
    neuron = _neuron_plan(layer.neuron or default_dense_neuron(), layer.bias, tuple(layer.out_shape), where)
    fan = np.zeros((len(delays), eff.shape[1]), dtype=np.int64)
    for d, per_input in dense_fanout(layer):
        fan[int(np.searchsorted(delays, d))] = per_input
    return _DensePlan(np.ascontiguousarray(stack), delays, syn.weight_exp, fan, neuron)


@dataclass(frozen=True)
class ConvBands:
    """A conv layer's scatter tables for a sample cut into P bands of output rows (both neuron families).

    Attributes:
        scatter_weight: (C_in, kH, kW, C_out / groups) int32 (:func:`sims.jit_kernels.scatter_weight`).
        tap_ptr, tap_dst, tap_src, tap_len: :func:`sims.jit_kernels.conv_band_taps`.
        bands: (P + 1,) output-pixel boundaries; band_inputs: (P, 2) input pixels [lo, hi) reaching
            each band; fan: (P, C_in * H_in * W_in) nonzero synapses from each input into each band.
    """

    scatter_weight: npt.NDArray[np.int32]
    tap_ptr: npt.NDArray[np.int64]
    tap_dst: npt.NDArray[np.int64]
    tap_src: npt.NDArray[np.int64]
    tap_len: npt.NDArray[np.int64]
    bands: npt.NDArray[np.int64]
    band_inputs: npt.NDArray[np.int64]
    fan: npt.NDArray[np.int64]


def conv_bands(layer: Conv, in_shape: tuple[int, ...], n_bands: int) -> ConvBands:
    """The scatter tables of ``layer`` for ``n_bands`` bands of output rows."""
    w = np.asarray(layer.weight, dtype=np.int64)
    c_out, h_out, w_out = layer.shape
    tap_ptr, tap_out, tap_k = conv_taps((in_shape[1], in_shape[2]), (w.shape[2], w.shape[3]), layer.stride,
                                        layer.padding, layer.dilation, (h_out, w_out))
    rows = np.linspace(0, h_out, n_bands + 1).round().astype(np.int64)
    bands = rows * w_out
    # Input pixels whose taps reach each band: a contiguous run of whole input rows.
    reach = np.repeat(np.arange(in_shape[1] * in_shape[2]), np.diff(tap_ptr))  # input pixel of each tap
    band_inputs = np.zeros((n_bands, 2), dtype=np.int64)
    fan = np.zeros((n_bands, int(np.prod(in_shape))), dtype=np.int64)
    for q in range(n_bands):
        hits = reach[(tap_out >= bands[q]) & (tap_out < bands[q + 1])]
        if hits.size:
            band_inputs[q] = (hits.min() // in_shape[2] * in_shape[2], (hits.max() // in_shape[2] + 1) * in_shape[2])
        fan[q] = conv_fanout(layer, in_shape, rows=(int(rows[q]), int(rows[q + 1]))).reshape(-1)
    band_taps = conv_band_taps((tap_ptr, tap_out, tap_k), in_shape[1] * in_shape[2], bands, c_out,
                               c_out // layer.groups, w.shape[3], layer.stride[1])
    return ConvBands(scatter_weight(w, layer.groups, layer.stride[1]), *band_taps, bands, band_inputs, fan)


def _build_conv_plan(layer: Conv, in_shape: tuple[int, ...], n_bands: int) -> _ConvPlan:
    w = np.asarray(layer.weight, dtype=np.int64)
    # The sums of an all-active frame, exact in int64, then wrapped to int32 as the scatter's sums wrap.
    all_active = ConvGeometry.of(layer, in_shape).output_sums(w.sum(axis=1)).astype(np.int32)
    if layer.neuron is None:
        raise SimulationError(f"{layer.name}: a conv layer needs a neuron (netx has no synapse-only layers)")
    flat = _neuron_plan(layer.neuron, layer.bias, tuple(layer.shape), layer.name)
    i_mult, v_mult, bias_eff, vth_eff = (_channels_last(p.reshape(layer.shape)) for p in
                                         (flat.i_mult, flat.v_mult, flat.bias_eff, flat.vth_eff))
    neuron = _NeuronPlan(i_mult, v_mult, bias_eff, vth_eff)
    t = conv_bands(layer, in_shape, n_bands)
    scatter: npt.NDArray[np.int16 | np.int32] = t.scatter_weight
    if int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0)) < 2**15:  # no sum leaves int16
        scatter = scatter.astype(np.int16)
    return _ConvPlan(scatter, t.tap_ptr, t.tap_dst, t.tap_src, t.tap_len, t.bands, t.band_inputs, t.fan,
                     _channels_last(all_active), neuron)


def _channels_last(arr: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """A (C, H, W) array as a flat (H * W * C,) channels-last array."""
    return np.ascontiguousarray(arr.transpose(1, 2, 0).reshape(-1))


def parts(batch: int, units: int) -> int:
    """Parts each sample's neurons (or output rows) are cut into, so that small batches use every thread."""
    return max(1, min(sim_threads() // batch, units))


#: Spike bytes per sample above which batches run depth-first (one sample through every layer) ...
_DEPTH_FIRST_BYTES = 256 * 1024

#: ... and at most this many: beyond a core's L2 cache depth-first no longer keeps a sample's spikes
#: there, and switching layers per sample evicts each layer's constants (as large as its spikes):
#: on Intel's PilotNet (2.5 MB per sample) layer by layer ran ~5 % faster at batch 64 (median of
#: 16 alternating 1 s runs each, 2 threads; in 11 of the 16 pairs).
_DEPTH_FIRST_MAX_BYTES = 1 << 20

@dataclass
class _LayerRun:
    """One layer's kernel call, its outputs allocated: ``kernel(start, stop, *args)`` over items ``b * parts + q``."""

    kernel: Callable[..., None]
    parts: int
    args: tuple[Any, ...]
    spikes: npt.NDArray[np.bool_]  # (B, steps, N)
    synops: npt.NDArray[np.int64]  # (B * parts,)
    u: npt.NDArray[np.int32] | None
    v: npt.NDArray[np.int32] | None


def _layer_run(
    kernel: Callable[..., None], parts: int, spikes: npt.NDArray[np.bool_], shape: tuple[int, ...],
    plan: _NeuronPlan, reset: npt.NDArray[np.bool_], record_state: bool, *synapse: object,
) -> _LayerRun:
    batch, steps, n = spikes.shape
    synops = np.zeros(batch * parts, dtype=np.int64)
    rec = (batch, steps, n) if record_state else (1, 1, 1)
    u_rec = np.empty(rec, dtype=np.int32)
    v_rec = np.empty(rec, dtype=np.int32)
    args = (*synapse, plan.i_mult, plan.v_mult, plan.bias_eff, plan.vth_eff, reset, spikes, u_rec, v_rec,
            record_state, synops)
    return _LayerRun(kernel, parts, args, spikes, synops, u_rec if record_state else None,
                     v_rec if record_state else None)


def _execute(runs: list[_LayerRun], batch: int, depth_first: bool) -> None:
    """Run the layers: layer by layer (each split across threads), or, ``depth_first``, each thread
    taking whole samples through every layer in turn, so that a sample's spikes are still in cache
    when the next layer reads them."""
    if not depth_first:
        for run in runs:
            split_run(run.kernel, batch * run.parts, *run.args)
        return

    def samples(b_start: int, b_stop: int) -> None:
        for b in range(b_start, b_stop):
            for run in runs:
                run.kernel(b * run.parts, (b + 1) * run.parts, *run.args)

    split_run(samples, batch)


def _reset_steps(steps: int, reset_interval: int | None, offset: int) -> npt.NDArray[np.bool_]:
    """0-based steps at whose start a layer resets; netx gives neuron layer i offset ``reset_offset + 1 + i``.

    Lava's LIFReset resets when ``t % R == offset % R`` with t = k + 1 (``PyLifResetModelBitAcc``).
    """
    reset = np.zeros(steps, dtype=np.bool_)
    if reset_interval is not None:
        k = np.arange(steps)
        reset = (k + 1) % reset_interval == offset % reset_interval
    return reset


def check_input(net: Network, spikes: npt.ArrayLike, steps: int | None) -> tuple[npt.NDArray[Any], int]:
    """Check an input array and view it as (B, T, *input_shape), without copying; also the steps to run.

    Raises:
        SimulationError: wrong shape, dtype, NaN/inf, values outside int32, or steps <= 0.
    """
    x = np.asarray(spikes)
    in_shape = tuple(net.input_shape)
    if not (x.dtype == np.bool_ or np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
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
    wide = x.dtype.kind == "f" or (x.dtype.kind in "iu" and x.dtype.itemsize > 4) or x.dtype == np.uint32
    if wide and x.size and (x.min() < np.iinfo(np.int32).min or x.max() > np.iinfo(np.int32).max):
        raise SimulationError("input values do not fit int32")
    _check_graded_input(net, x)
    if steps is None:
        steps = x.shape[1] + net.depth
    if steps <= 0:
        raise SimulationError(f"steps must be positive, got {steps}")
    return x, steps


def graded_input_limit(net: Network) -> int | None:
    """The largest |x| a sigma-delta input layer takes, or None (no Delta encoder).

    The encoder's first message is ``x << spike_exp``; it must fit netx's signed
    ``SDNN_MESSAGE_BITS``-bit graded message (|x| <= 511 at netx's spike_exp 6)."""
    first = net.layers[0]
    neuron = getattr(first, "neuron", None)
    if not isinstance(first, InputLayer) or not isinstance(neuron, SigmaDeltaNeuron):
        return None
    return ((1 << (C.SDNN_MESSAGE_BITS - 1)) - 1) >> neuron.spike_exp


def _check_graded_input(net: Network, x: npt.NDArray[Any]) -> None:
    limit = graded_input_limit(net)
    if limit is None or not x.size:
        return
    lo, hi = int(x.min()), int(x.max())
    if lo < -limit or hi > limit:
        raise SimulationError(
            f"{net.describe(0)}: field 'input': values in [{lo}, {hi}] exceed the graded message range: "
            f"x << spike_exp must fit netx's {C.SDNN_MESSAGE_BITS}-bit message, so |x| <= {limit}")


def normalize_input(net: Network, spikes: npt.ArrayLike, steps: int | None) -> tuple[npt.NDArray[np.int32], int]:
    """Check and bring an input array to (B, steps, *input_shape) int32, padded with zeros.

    Raises:
        SimulationError: wrong shape, dtype, NaN/inf, or steps <= 0.
    """
    x, steps = check_input(net, spikes, steps)
    out = np.zeros((x.shape[0], steps, *x.shape[2:]), dtype=np.int32)
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
    x, steps = check_input(net, spikes, steps)
    if reset_interval is not None and reset_interval < 1:
        raise SimulationError(f"reset_interval must be >= 1, got {reset_interval}")
    if reset_offset < 0:
        raise SimulationError(f"reset_offset must be >= 0, got {reset_offset}")
    t0 = time.perf_counter()
    if net.family == "SDNN":
        if reset_interval is not None or input_bias is not None:
            raise SimulationError("reset_interval and input_bias apply to CUBA-LIF neurons; netx's sigma-delta "
                                  "neurons have neither")
        from sims.sdnn import simulate_sdnn  # noqa: PLC0415

        result = simulate_sdnn(net, x, steps, record_state)
    else:
        result = _simulate(net, x, steps, reset_interval, reset_offset, record_state, input_bias)
    result.wall_s = time.perf_counter() - t0
    return result


@dataclass
class _Pass:
    """One simulation call as the per-kind runners see it.

    Attributes:
        x: (B, T, *input_shape) the input as given; prev: (B, steps, *shape) bool spikes flowing
        into the next layer; depth_first: whether samples run through all layers in turn;
        spikes_out: allocates a layer's spike array in the call's arena.
    """

    x: npt.NDArray[Any]
    prev: npt.NDArray[np.bool_]
    steps: int
    depth_first: bool
    record_state: bool
    input_bias: npt.ArrayLike | None
    reset_interval: int | None
    reset_offset: int
    spikes_out: Callable[[tuple[int, ...]], npt.NDArray[np.bool_]]
    neuron_index: int = 0

    @property
    def batch(self) -> int:
        return int(self.x.shape[0])

    def reset(self) -> npt.NDArray[np.bool_]:
        """The reset steps of the next neuron layer (netx numbers them in order)."""
        self.neuron_index += 1
        return _reset_steps(self.steps, self.reset_interval, self.reset_offset + self.neuron_index)


def _run_input(layer: Layer, where: str, p: _Pass) -> _LayerRun | None:
    assert isinstance(layer, InputLayer)
    if layer.neuron is None:
        return None  # a shape declaration
    # Input spikes enter the input neuron's current directly (no synapse, no latency).
    shape, batch = tuple(layer.out_shape), p.batch
    bias: npt.NDArray[np.int64] | None = None
    if p.input_bias is not None:
        bias = np.asarray(p.input_bias, dtype=np.int64)
        if bias.shape not in ((), shape, (shape[0],)):
            raise SimulationError(f"{where}: input_bias has shape {bias.shape}; expected {shape}")
    plan = _input_plan(layer, bias, shape, where)
    x_flat = p.x.reshape(batch, p.x.shape[1], -1)  # a view where it can be: no copy of a large input
    if x_flat.dtype.kind == "f" or x_flat.dtype.itemsize > 4 or x_flat.dtype == np.uint32:
        x_flat = x_flat.astype(np.int64)  # integral and inside int32 (checked)
    n_parts = 1 if p.depth_first else parts(batch, int(np.prod(shape)))
    return _layer_run(input_lif_layer, n_parts, p.spikes_out(shape), shape, plan, p.reset(), p.record_state,
                      x_flat, n_parts)


def _run_flatten(layer: Layer, where: str, p: _Pass) -> _LayerRun | None:
    p.prev = p.prev.reshape(p.batch, p.steps, -1)
    return None


def _run_dense(layer: Layer, where: str, p: _Pass) -> _LayerRun | None:
    assert isinstance(layer, Dense)
    shape = tuple(layer.out_shape)
    plan = _plan_dense(layer, where)
    return _layer_run(dense_lif_layer, 1, p.spikes_out(shape), shape, plan.neuron, p.reset(), p.record_state,
                      p.prev.reshape(p.batch, p.steps, -1), plan.weight_t, plan.delays, plan.weight_exp, plan.fan)


def _run_conv(layer: Layer, where: str, p: _Pass) -> _LayerRun | None:
    assert isinstance(layer, Conv)
    shape = tuple(layer.out_shape)
    n_parts = 1 if p.depth_first else parts(p.batch, layer.shape[1])  # bands of output rows
    plan = _plan_conv(layer, tuple(p.prev.shape[2:]), n_parts)
    return _layer_run(conv_lif_layer, n_parts, p.spikes_out(shape), shape, plan.neuron, p.reset(), p.record_state,
                      p.prev, plan.scatter_weight, plan.tap_ptr, plan.tap_dst, plan.tap_src, plan.tap_len,
                      layer.groups, plan.bands, plan.band_inputs, plan.fan, plan.all_active, C.CONV_ACC_BITS)


def _merge_lif_layer(
    b_start: int, b_stop: int, synapses: list[tuple[Callable[..., None], tuple[Any, ...]]],
    current: npt.NDArray[np.int32], n_parts: int, *neuron: Any,
) -> None:
    """A merge layer for samples [b_start, b_stop): every synapse process (one per source) adds its own
    output, with its own wrap, into the int32 port ``current``; then the neurons run on the sum as on
    an input layer's current (``a << 6``, one u wrap, one v saturation)."""
    current[b_start:b_stop] = 0
    synops = neuron[-1]
    for kernel, args in synapses:
        kernel(b_start, b_stop, *args, current, synops)
    input_lif_layer(b_start, b_stop, current, n_parts, *neuron)


def _run_merge(layer: Layer, where: str, p: _Pass, sources: list[npt.NDArray[np.bool_]]) -> _LayerRun:
    """A layer reading several sources: on the chip and in Lava, one synapse process per source into
    the same ``a_in`` port, each computing on its own (a conv's 24-bit accumulator wraps per process,
    a dense process shifts by its weight exponent into its own int32 buffer), summed by the port."""
    shape = tuple(layer.out_shape)
    n = int(np.prod(shape))
    synapses: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
    if isinstance(layer, Conv):
        if layer.neuron is None:
            raise SimulationError(f"{where}: a conv layer needs a neuron (netx has no synapse-only layers)")
        neuron = layer.neuron
        plan = _plan_conv(layer, tuple(sources[0].shape[2:]), 1)  # every source has the same shape
        for src in sources:
            synapses.append((conv_current_layer, (src, plan.scatter_weight, plan.tap_ptr, plan.tap_dst, plan.tap_src,
                                                  plan.tap_len, layer.groups, plan.bands, plan.band_inputs,
                                                  plan.fan, plan.all_active, C.CONV_ACC_BITS)))
    elif isinstance(layer, Dense):
        neuron = layer.neuron or default_dense_neuron()
        dplan = _plan_dense(layer, where)
        for src in sources:
            synapses.append((dense_current_layer, (src.reshape(p.batch, p.steps, -1), dplan.weight_t, dplan.delays,
                                                   dplan.weight_exp, dplan.fan)))
    else:
        raise SimulationError(f"{where}: a {layer.kind} layer cannot merge several sources")
    # The neurons in C, H, W order, as the port's sum is laid out.
    flat = SIM_CACHE.plan(layer, ("merge-neuron",), lambda: _neuron_plan(neuron, layer.bias, shape, where))
    current = np.empty((p.batch, p.steps, n), dtype=np.int32)
    return _layer_run(_merge_lif_layer, 1, p.spikes_out(shape), shape, flat, p.reset(), p.record_state,
                      synapses, current, 1)


#: One runner per IR layer kind: ``runner(layer, where, pass)`` returns the layer's kernel call
#: (None when the layer computes nothing) and may reshape ``pass.prev``.
LAYER_RUNNERS: dict[str, Callable[[Layer, str, _Pass], "_LayerRun | None"]] = {
    "input": _run_input,
    "flatten": _run_flatten,
    "dense": _run_dense,
    "conv": _run_conv,
}


def _simulate(
    net: Network,
    x: npt.NDArray[Any],
    steps: int,
    reset_interval: int | None,
    reset_offset: int,
    record_state: bool,
    input_bias: npt.ArrayLike | None,
) -> SimResult:
    batch = x.shape[0]
    first = net.layers[0]
    if first.has_neurons and not first.synaptic:
        # The input integers drive the input neurons; no synapse sees them.
        prev: npt.NDArray[np.bool_] = np.broadcast_to(np.False_, (batch, steps, *x.shape[2:]))
    else:  # spikes into a synapse: nonzero is a spike
        prev = np.zeros((batch, steps, *x.shape[2:]), dtype=np.bool_)
        t_in = min(steps, x.shape[1])
        np.not_equal(x[:, :t_in], 0, out=prev[:, :t_in])
    sizes = [int(np.prod(l.out_shape)) for l in net.layers if l.has_neurons]
    # Batches at least as large as the thread count go depth-first, one sample through every layer,
    # when a sample's spikes would fall out of the core's cache between layers but fit its L2 (below,
    # the per-call cost of a kernel per sample and layer dominates; above, the layers' constants are
    # evicted at every switch); otherwise layer by layer, each layer cut into parts (conv: bands of
    # rows) across the threads when the batch is smaller than the thread count.
    depth_first = batch >= sim_threads() and _DEPTH_FIRST_BYTES < steps * sum(sizes) <= _DEPTH_FIRST_MAX_BYTES
    # Every layer's spikes in one allocation: fresh memory costs page faults (and, with numpy's
    # huge-page advice, compaction) per allocation; one large block pays that once.
    arena = SIM_CACHE.take_block(batch * steps * sum(sizes))
    offset = 0

    def spikes_out(shape: tuple[int, ...]) -> npt.NDArray[np.bool_]:
        nonlocal offset
        size = batch * steps * int(np.prod(shape))
        view = arena[offset : offset + size].reshape(batch, steps, -1)
        offset += size
        return view

    p = _Pass(x, prev, steps, depth_first, record_state, input_bias, reset_interval, reset_offset, spikes_out)
    runs: list[_LayerRun | None] = []
    layer_spikes: list[npt.NDArray[np.bool_]] = []
    graph = net.is_graph
    for i, layer in enumerate(net.layers):
        shape = tuple(layer.out_shape)
        srcs = net.sources(i)
        if graph and srcs:  # a residual graph: the layer reads its sources, not necessarily the layer before
            p.prev = layer_spikes[srcs[0]]
        if len(srcs) > 1:
            run: _LayerRun | None = _run_merge(layer, net.describe(i), p, [layer_spikes[j] for j in srcs])
        else:
            run = LAYER_RUNNERS[layer.kind](layer, net.describe(i), p)
        if run is not None:
            p.prev = run.spikes.reshape(batch, steps, *shape)
        runs.append(run)
        layer_spikes.append(p.prev.reshape(batch, steps, *shape))
    _execute([r for r in runs if r is not None], batch, depth_first)
    SIM_CACHE.keep_block(arena)
    synops = np.zeros((batch, len(net.layers)), dtype=np.int64)
    us: list[npt.NDArray[np.int32] | None] = []
    vs: list[npt.NDArray[np.int32] | None] = []
    for i, run in enumerate(runs):
        full = (batch, steps, *net.layers[i].out_shape)
        if run is not None:
            synops[:, i] = run.synops.reshape(batch, run.parts).sum(axis=1)
        us.append(None if run is None or run.u is None else run.u.reshape(full))
        vs.append(None if run is None or run.v is None else run.v.reshape(full))
    return SimResult([l.name for l in net.layers], layer_spikes, synops, us, vs, backend="native")
