"""A plain reference simulation of residual graphs: one synapse process per source, summed at the neurons.

:func:`sims.native.simulate` runs graphs with the compiled kernels (``_run_merge``: the chain's conv
scatter and dense synapse, one process per source, summed in the port). This module computes the
same thing a different way, with integer sparse products and numpy, so that the fast path has an
independent model to be checked against on many random graphs (``tests/sims/test_graph_native.py``)
beside the slower checks against Lava. It is not on any user path.

A merge layer (:attr:`export.ir.Network.sources` naming several layers) is, on the chip and
in Lava, one synapse process per source, all connected to the same neurons' ``a_in`` port.
Each process computes on its own, with its own arithmetic: a conv process wraps its
accumulator to 24 bits (``signed_clamp``), a dense process shifts its sums by netx's weight
exponent and holds them in an int32 ``a_buff`` (reference ``loihi_netx.md`` sections 6.1,
7.3, 7.4). The port then adds the processes' outputs in int32 (section 7.5), and the neurons
apply their own single ``u`` wrap and ``v`` saturation. So the sum of the wrapped currents is
simulated, not the wrap of the summed one.

Timing is the chain's: a synapse delivers at step k what its source spiked at step k - 1
(plus a dense synapse's delay), so every hop costs one step and two branches of a block
arrive with their own latencies.

Per layer, the synaptic current of all steps, (B, steps, N) int32, is computed for every
source from that source's spikes (an integer sparse product: exact), summed, and handed to the
compiled input-neuron kernel (:func:`sims.jit_kernels.input_lif_layer`), which adds it to the
current as ``a << 6`` and runs the same CUBA-LIF arithmetic as the chain kernels.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from export.geometry import tap_positions
from export.ir import Conv, Dense, InputLayer, Layer, Network, default_dense_neuron
from hw_targets import constants as C
from hw_targets.errors import SimulationError
from sims.cache import SIM_CACHE
from sims.counts import synaptic_ops
from sims.jit_kernels import input_lif_layer, split_run
from sims.native import _input_plan, _layer_run, _neuron_plan, _NeuronPlan, _reset_steps, dense_synapse, parts
from sims.result import SimResult

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def conv_matrix(layer: Conv, in_shape: tuple[int, ...]) -> sp.csr_matrix:
    """The conv as an (N_out, N_in) int64 sparse matrix on C, H, W-flattened neurons.

    Cross-correlation in torch layout, as the IR stores it (netx flips the kernel for Lava's true
    convolution, which gives the same sums); zero weights are left out.
    """
    w = np.asarray(layer.weight, dtype=np.int64)
    c_out, per_group_in, k_h, k_w = w.shape
    _, h_in, w_in = in_shape
    _, h_out, w_out = layer.shape
    per_group_out = c_out // layer.groups
    pos_y = tap_positions(h_out, k_h, layer.stride[0], layer.padding[0], layer.dilation[0])  # (H_out, kH)
    pos_x = tap_positions(w_out, k_w, layer.stride[1], layer.padding[1], layer.dilation[1])  # (W_out, kW)
    # Every (c_out, c_in of its group, ky, kx, oy, ox) combination, broadcast.
    co = np.arange(c_out).reshape(-1, 1, 1, 1, 1, 1)
    ci_local = np.arange(per_group_in).reshape(1, -1, 1, 1, 1, 1)
    ky = np.arange(k_h).reshape(1, 1, -1, 1, 1, 1)
    kx = np.arange(k_w).reshape(1, 1, 1, -1, 1, 1)
    oy = np.arange(h_out).reshape(1, 1, 1, 1, -1, 1)
    ox = np.arange(w_out).reshape(1, 1, 1, 1, 1, -1)
    iy = pos_y[oy, ky]
    ix = pos_x[ox, kx]
    ci = (co // per_group_out) * per_group_in + ci_local
    weight = w[co, ci_local, ky, kx]
    full = np.broadcast_shapes(co.shape, ci_local.shape, ky.shape, kx.shape, oy.shape, ox.shape)
    keep = np.broadcast_to((iy >= 0) & (iy < h_in) & (ix >= 0) & (ix < w_in) & (weight != 0), full)
    rows = np.broadcast_to((co * h_out + oy) * w_out + ox, full)[keep]
    cols = np.broadcast_to((ci * h_in + iy) * w_in + ix, full)[keep]
    data = np.broadcast_to(weight, full)[keep]
    n_out, n_in = c_out * h_out * w_out, in_shape[0] * h_in * w_in
    return sp.csr_matrix((data, (rows, cols)), shape=(n_out, n_in), dtype=np.int64)


def _wrap(x: Int64Array, bits: int) -> Int64Array:
    """Two's-complement wrap to ``bits`` (Lava's conv ``signed_clamp``, which wraps)."""
    half = np.int64(1 << (bits - 1))
    wrapped: Int64Array = ((x + half) & np.int64((1 << bits) - 1)) - half
    return wrapped


def _delayed_products(matrix_t: sp.csr_matrix, spikes: BoolArray, delay: int) -> Int64Array:
    """(B, steps, N_out) int64: at step k the product of the spikes of step k - 1 - delay (0 before)."""
    batch, steps = spikes.shape[:2]
    out = np.zeros((batch, steps, matrix_t.shape[1]), dtype=np.int64)
    lag = 1 + delay
    if steps > lag:
        active = sp.csr_matrix(spikes[:, : steps - lag].reshape(batch * (steps - lag), -1).astype(np.int64))
        out[:, lag:] = (active @ matrix_t).toarray().reshape(batch, steps - lag, -1)
    return out


def conv_current(layer: Conv, in_shape: tuple[int, ...], spikes: BoolArray) -> Int32Array:
    """One conv synapse process's output into the neurons, every step: (B, steps, N_out) int32.

    Args:
        layer: the conv layer (its weights and geometry are the process's).
        in_shape: (C, H, W) of the source.
        spikes: (B, steps, N_in) bool spikes of the source, C, H, W-flattened.
    """
    matrix_t = SIM_CACHE.plan(layer, ("graph-conv", in_shape), lambda: conv_matrix(layer, in_shape).T.tocsr())
    return _wrap(_delayed_products(matrix_t, spikes, 0), C.CONV_ACC_BITS).astype(np.int32)


def _dense_plan(layer: Dense, where: str) -> tuple[list[tuple[int, sp.csr_matrix]], int]:
    """Per distinct delay, the transposed effective weights netx delivers, and the weight exponent."""
    syn = dense_synapse(layer, where)
    eff = np.asarray(syn.weight_eff, dtype=np.int64)
    delay = np.zeros(eff.shape, np.int64) if layer.delay is None else np.asarray(layer.delay, np.int64)
    per_delay = [(int(d), sp.csr_matrix(np.where(delay == d, eff, 0).T)) for d in np.unique(delay)]
    return per_delay, int(syn.weight_exp)


def dense_current(layer: Dense, where: str, spikes: BoolArray) -> Int32Array:
    """One dense synapse process's output into the neurons, every step: (B, steps, N_out) int32.

    Each delay's sums are shifted by the weight exponent (arithmetic, floor) and added in int64,
    then held in the process's int32 ``a_buff`` (as the chain kernel does for one process).
    """
    per_delay, weight_exp = SIM_CACHE.plan(layer, ("graph-dense",), lambda: _dense_plan(layer, where))
    total = np.zeros((spikes.shape[0], spikes.shape[1], layer.shape[0]), dtype=np.int64)
    for d, matrix_t in per_delay:
        part = _delayed_products(matrix_t, spikes, d)
        total += part << weight_exp if weight_exp >= 0 else part >> -weight_exp
    return total.astype(np.int32)


def _neurons(plan: _NeuronPlan, current: npt.NDArray[Any], steps: int, reset: BoolArray,
             record_state: bool) -> tuple[BoolArray, Int32Array | None, Int32Array | None]:
    """Run one layer's CUBA-LIF neurons on ``current`` (B, T, N), added as ``a << 6``, zero past T."""
    batch, n = current.shape[0], current.shape[2]
    spikes = np.empty((batch, steps, n), dtype=np.bool_)
    n_parts = parts(batch, n)
    run = _layer_run(input_lif_layer, n_parts, spikes, (n,), plan, reset, record_state, current, n_parts)
    split_run(run.kernel, batch * run.parts, *run.args)
    return spikes, run.u, run.v


def simulate_graph(
    net: Network,
    x: npt.NDArray[Any],
    steps: int,
    reset_interval: int | None,
    reset_offset: int,
    record_state: bool,
    input_bias: npt.ArrayLike | None,
) -> SimResult:
    """Simulate a residual graph of CUBA-LIF layers, bit-exactly as the Lava process graph runs.

    Args:
        net: a CUBA network (``net.is_graph`` or a chain: both are simulated exactly).
        x: (B, T, *input_shape) checked input (:func:`sims.native.check_input`).
        steps: steps to run; inputs past T are zero.
        reset_interval, reset_offset, record_state, input_bias: as :func:`sims.native.simulate`.
            Neuron layers get netx's reset offsets in layer order, as in a chain.

    Returns:
        A :class:`SimResult` per layer in layer order (flatten and shape-only input layers carry
        their source's spikes, reshaped).

    Raises:
        SimulationError: a layer netx cannot load, or a bad ``input_bias``.
    """
    batch = x.shape[0]
    t_in = min(steps, x.shape[1])
    input_spikes = np.zeros((batch, steps, *x.shape[2:]), dtype=np.bool_)
    np.not_equal(x[:, :t_in], 0, out=input_spikes[:, :t_in])
    layer_spikes: list[BoolArray] = []
    us: list[Int32Array | None] = []
    vs: list[Int32Array | None] = []
    neuron_index = 0
    for i, layer in enumerate(net.layers):
        where = net.describe(i)
        shape = tuple(layer.out_shape)
        u = v = None
        if layer.has_neurons:
            neuron_index += 1
            reset = _reset_steps(steps, reset_interval, reset_offset + neuron_index)
            spikes, u, v = _neuron_layer(net, i, layer, where, x, input_spikes, layer_spikes, steps, reset,
                                         record_state, input_bias)
        else:  # a flatten or a shape-only input layer: its source's spikes, reshaped
            srcs = net.sources(i)
            spikes = input_spikes if not srcs else layer_spikes[srcs[0]]
        layer_spikes.append(spikes.reshape(batch, steps, *shape))
        us.append(None if u is None else u.reshape(batch, steps, *shape))
        vs.append(None if v is None else v.reshape(batch, steps, *shape))
    synops = synaptic_ops(net, input_spikes, layer_spikes)
    return SimResult([l.name for l in net.layers], layer_spikes, synops, us, vs, backend="native")


def _neuron_layer(
    net: Network, i: int, layer: Layer, where: str, x: npt.NDArray[Any], input_spikes: BoolArray,
    layer_spikes: list[BoolArray], steps: int, reset: BoolArray, record_state: bool,
    input_bias: npt.ArrayLike | None,
) -> tuple[BoolArray, Int32Array | None, Int32Array | None]:
    batch = x.shape[0]
    shape = tuple(layer.out_shape)
    if isinstance(layer, InputLayer):
        # Input integers enter the input neurons' current directly (no synapse, no latency).
        bias: Int64Array | None = None
        if input_bias is not None:
            bias = np.asarray(input_bias, dtype=np.int64)
            if bias.shape not in ((), shape, (shape[0],)):
                raise SimulationError(f"{where}: input_bias has shape {bias.shape}; expected {shape}")
        plan = _input_plan(layer, bias, shape, where)
        x_flat = x.reshape(batch, x.shape[1], -1)
        if x_flat.dtype.kind == "f" or x_flat.dtype.itemsize > 4 or x_flat.dtype == np.uint32:
            x_flat = x_flat.astype(np.int64)  # integral and inside int32 (checked)
        return _neurons(plan, x_flat, steps, reset, record_state)
    if not isinstance(layer, (Dense, Conv)):
        raise SimulationError(f"{where}: no graph runner for layer kind {layer.kind!r}")
    current = np.zeros((batch, steps, int(np.prod(shape))), dtype=np.int32)
    # One synapse process per source; Lava's InPort adds their outputs in int32 (wrapping).
    for j in net.sources(i) or (None,):
        src = input_spikes if j is None else layer_spikes[j]
        src_flat = src.reshape(batch, steps, -1)
        if isinstance(layer, Conv):
            part = conv_current(layer, tuple(src.shape[2:]), src_flat)
        else:
            part = dense_current(layer, where, src_flat)
        current += part
    if isinstance(layer, Conv):
        if layer.neuron is None:
            raise SimulationError(f"{where}: a conv layer needs a neuron (netx has no synapse-only layers)")
        neuron = layer.neuron
    else:
        neuron = layer.neuron or default_dense_neuron()
    plan = SIM_CACHE.plan(layer, ("graph-neuron",), lambda: _neuron_plan(neuron, layer.bias, shape, where))
    return _neurons(plan, current, steps, reset, record_state)
