"""Native simulation of sigma-delta (graded-spike) networks, exactly as Lava's fixed_pt run.

The arithmetic is in :mod:`sims.sdnn_kernels`. Timing is Lava's, as for CUBA
networks: the input layer's ``Delta`` encodes the input integers of step k at
step k; a synapse delivers at step k the messages of step k - 1; step 0 of every
later layer is bias only. A network without an input layer feeds the input to
its first synapse as binary spikes (netx's ``input_message_bits = 0``).

Every layer's messages come back as int32 (B, steps, *shape); with
``record_state``, ``u`` holds each layer's ``sigma`` (None for the Delta input)
and ``v`` its ``act`` (None for a Sigma readout), as Lava's variables of those
names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.ir import Conv, Dense, InputLayer, Layer, Network, SigmaDeltaNeuron, sdnn_role
from hw_targets.errors import SimulationError
from sims.cache import SIM_CACHE
from sims.counts import dense_fanout
from sims.jit_kernels import expand_param, split_run
from sims.native import ConvBands, conv_bands, dense_synapse, parts
from sims.result import SimResult
from sims.sdnn_kernels import (
    ROLE_SIGMA,
    ROLE_SIGMA_DELTA,
    delta_input_layer,
    sdnn_conv_layer,
    sdnn_dense_layer,
)

_ROLES = {"SigmaDelta": ROLE_SIGMA_DELTA, "Sigma": ROLE_SIGMA}


@dataclass(frozen=True)
class _SdnnNeurons:
    """One layer's neuron constants: its role, ``vth << E``, ``bias << E`` per neuron (int32)."""

    role: int
    vth: int
    state_exp: int
    bias: npt.NDArray[np.int32]


def _neurons(layer: Layer, where: str, channels_last: bool = False) -> _SdnnNeurons:
    neuron = getattr(layer, "neuron", None)
    assert isinstance(neuron, SigmaDeltaNeuron)
    shift = neuron.spike_exp + neuron.state_exp
    shape = tuple(layer.out_shape)
    bias_mant = getattr(layer, "bias", None)
    # netx casts the bias to int32; SigmaDelta multiplies it by 2**E in int32.
    bias = expand_param(0 if bias_mant is None else np.asarray(bias_mant, np.int64), shape) << shift
    if bias.size and (bias.min() < -(2**31) or bias.max() >= 2**31):
        raise SimulationError(f"{where}: bias << {shift} leaves int32 (Lava's SigmaDelta bias register)")
    if channels_last:
        bias = np.ascontiguousarray(bias.reshape(shape).transpose(1, 2, 0).reshape(-1))
    return _SdnnNeurons(_ROLES.get(sdnn_role(layer), ROLE_SIGMA_DELTA), int(neuron.v_th_mant) << shift,
                        neuron.state_exp, bias.astype(np.int32))


@dataclass(frozen=True)
class _DensePlan:
    w_t: npt.NDArray[np.int32]
    weight_exp: int
    fan: npt.NDArray[np.int64]
    neurons: _SdnnNeurons


@dataclass(frozen=True)
class _ConvPlan:
    bands: ConvBands
    neurons: _SdnnNeurons


def _dense_plan(layer: Dense, where: str) -> _DensePlan:
    def build() -> _DensePlan:
        syn = dense_synapse(layer, where)
        fan = dense_fanout(layer)[0][1]
        if syn.weight_eff.size and int(np.abs(syn.weight_eff).max()) >= 2**31:
            raise SimulationError(f"{where}: effective weights leave int32 (Lava's Dense weights are int32)")
        return _DensePlan(np.ascontiguousarray(syn.weight_eff.T.astype(np.int32)), syn.weight_exp, fan,
                          _neurons(layer, where))
    return SIM_CACHE.plan(layer, ("sdnn-dense",), build)


def _conv_plan(layer: Conv, in_shape: tuple[int, ...], n_bands: int, where: str) -> _ConvPlan:
    return SIM_CACHE.plan(layer, ("sdnn-conv", in_shape, n_bands), lambda: _ConvPlan(
        conv_bands(layer, in_shape, n_bands), _neurons(layer, where, channels_last=True)))


@dataclass
class _Run:
    """One layer's kernel call over samples: ``kernel(b_start, b_stop, *args)``."""

    kernel: Callable[..., None]
    args: tuple[Any, ...]
    out: npt.NDArray[np.int32]
    synops: npt.NDArray[np.int64] | None
    sigma: npt.NDArray[np.int32] | None
    act: npt.NDArray[np.int32] | None
    parts: int = 1  # work items per sample


@dataclass
class _Pass:
    x: npt.NDArray[Any]
    prev: npt.NDArray[np.int32]
    steps: int
    record_state: bool

    @property
    def batch(self) -> int:
        return int(self.x.shape[0])

    def arrays(self, n: int) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32], npt.NDArray[np.int32]]:
        """A layer's message array and its two state records (1 x 1 x 1 when not recorded)."""
        full = (self.batch, self.steps, n)
        rec = full if self.record_state else (1, 1, 1)
        return np.zeros(full, np.int32), np.zeros(rec, np.int32), np.zeros(rec, np.int32)


def _run_input(layer: Layer, where: str, p: _Pass) -> _Run | None:
    assert isinstance(layer, InputLayer)
    if layer.neuron is None:
        return None
    neuron = layer.neuron
    assert isinstance(neuron, SigmaDeltaNeuron)
    shift = neuron.spike_exp + neuron.state_exp
    n = int(np.prod(layer.shape))
    out, _, act = p.arrays(n)
    x = p.x.reshape(p.batch, p.x.shape[1], -1)
    if x.dtype.kind == "f" or x.dtype.itemsize > 4 or x.dtype == np.uint32:
        x = x.astype(np.int64)
    if x.dtype == np.bool_:
        x = x.astype(np.int32)
    return _Run(delta_input_layer, (x, shift, int(neuron.v_th_mant) << shift, neuron.state_exp, out, act,
                                    p.record_state), out, None, None, act)


def _run_flatten(layer: Layer, where: str, p: _Pass) -> _Run | None:
    p.prev = p.prev.reshape(p.batch, p.steps, -1)
    return None


def _run_dense(layer: Layer, where: str, p: _Pass) -> _Run | None:
    assert isinstance(layer, Dense)
    plan = _dense_plan(layer, where)
    out, sigma, act = p.arrays(layer.shape[0])
    synops = np.zeros(p.batch, np.int64)
    nr = plan.neurons
    return _Run(sdnn_dense_layer, (p.prev.reshape(p.batch, p.steps, -1), plan.w_t, plan.weight_exp, plan.fan,
                                   nr.role, nr.bias, nr.vth, nr.state_exp, out, sigma, act, p.record_state, synops),
                out, synops, sigma, act)


def _run_conv(layer: Layer, where: str, p: _Pass) -> _Run | None:
    assert isinstance(layer, Conv)
    in_shape = tuple(int(s) for s in p.prev.shape[2:])
    n_bands = parts(p.batch, layer.shape[1])  # bands of output rows, so that one sample uses every thread
    plan = _conv_plan(layer, in_shape, n_bands, where)
    out, sigma, act = p.arrays(int(np.prod(layer.shape)))
    synops = np.zeros(p.batch * n_bands, np.int64)
    nr, t = plan.neurons, plan.bands
    s = p.prev.reshape(p.batch, p.steps, in_shape[0], in_shape[1] * in_shape[2])
    return _Run(sdnn_conv_layer, (s, t.scatter_weight, t.tap_ptr, t.tap_dst, t.tap_src, t.tap_len, layer.groups,
                                  t.bands, t.band_inputs, t.fan, nr.role, nr.bias, nr.vth, nr.state_exp, out,
                                  sigma, act, p.record_state, synops),
                out, synops, sigma, act, n_bands)


#: One runner per IR layer kind for sigma-delta networks: ``runner(layer, where, pass)`` returns the
#: layer's kernel call (None when the layer computes nothing) and may reshape ``pass.prev``.
SDNN_RUNNERS: dict[str, Callable[[Layer, str, _Pass], "_Run | None"]] = {
    "input": _run_input,
    "flatten": _run_flatten,
    "dense": _run_dense,
    "conv": _run_conv,
}


def simulate_sdnn(net: Network, x: npt.NDArray[Any], steps: int, record_state: bool) -> SimResult:
    """Run a sigma-delta ``net`` on checked input ``x`` (B, T, *input_shape); see the module docstring."""
    batch = x.shape[0]
    first = net.layers[0]
    if first.has_neurons and not first.synaptic:
        prev = np.zeros((batch, steps, *x.shape[2:]), np.int32)  # the input drives the Delta encoder
    else:  # into the first synapse: binary spikes, as netx's input_message_bits = 0 delivers them
        prev = np.zeros((batch, steps, *x.shape[2:]), np.int32)
        t_in = min(steps, x.shape[1])
        prev[:, :t_in] = x[:, :t_in] != 0
    p = _Pass(x, prev, steps, record_state)
    runs: list[_Run | None] = []
    messages: list[npt.NDArray[np.int32]] = []
    for i, layer in enumerate(net.layers):
        shape = tuple(layer.out_shape)
        run = SDNN_RUNNERS[layer.kind](layer, net.describe(i), p)
        if run is not None:
            split_run(run.kernel, batch * run.parts, *run.args)
            p.prev = run.out.reshape(batch, steps, *shape)
        runs.append(run)
        messages.append(p.prev.reshape(batch, steps, *shape))
    synops = np.zeros((batch, len(net.layers)), np.int64)
    us: list[npt.NDArray[np.int32] | None] = []
    vs: list[npt.NDArray[np.int32] | None] = []
    for i, run in enumerate(runs):
        full = (batch, steps, *net.layers[i].out_shape)
        if run is not None and run.synops is not None:
            synops[:, i] = run.synops.reshape(batch, run.parts).sum(axis=1)
        role = sdnn_role(net.layers[i]) if run is not None else ""
        us.append(run.sigma.reshape(full) if record_state and run is not None and run.sigma is not None
                  and role != "Delta" else None)
        vs.append(run.act.reshape(full) if record_state and run is not None and run.act is not None
                  and role != "Sigma" else None)
    return SimResult([l.name for l in net.layers], messages, synops, us, vs, backend="native")
