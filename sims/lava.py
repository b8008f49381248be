"""Run a netx file in Lava (``Loihi2SimCfg(select_tag='fixed_pt')``), the reference.

Each sample gets a fresh network, fed by a ``RingBuffer`` source (into the input
neuron's current when the file has an input layer, else into the first
synapse) and read by one ``RingBuffer`` sink per neuron layer, so every layer's
spikes come back. The runtime is always stopped, also when the run fails:
after a failure its processes are killed rather than asked to stop (Lava's
``stop()`` waits for answers a failed process never sends), so no process or
thread is left behind.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.ir import Layer, Network
from export.netx import read_netx
from hw_targets.errors import SimulationError
from sims.lava_compat import import_netx
from sims.native import normalize_input
from sims.result import SimResult


#: Whether lava-dl's netx builds a block (neurons with an ``out`` port) for a layer of each IR kind.
LAVA_BLOCK: dict[str, Callable[[Layer], bool]] = {
    "input": lambda layer: layer.has_neurons,  # a shape-only input layer builds nothing
    "dense": lambda layer: True,
    "conv": lambda layer: True,
    "flatten": lambda layer: False,  # folded into the next dense layer's input
}


def _to_xyz(frames: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """(T, C, H, W) -> (W, H, C, T); (T, N) -> (N, T)."""
    return np.ascontiguousarray(np.transpose(frames, tuple(range(frames.ndim - 1, -1, -1))))


def _from_xyz(data: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """(W, H, C, T) -> (T, C, H, W); (N, T) -> (T, N)."""
    return np.transpose(data, tuple(range(data.ndim - 1, -1, -1)))


def run_lava(
    path: str | os.PathLike[str],
    spikes: npt.ArrayLike,
    steps: int | None = None,
    *,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    record_state: bool = False,
    input_bias: npt.ArrayLike | None = None,
    net: Network | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> SimResult:
    """Run the netx file at ``path`` in Lava on each sample of ``spikes``.

    Arguments mean what they mean in :func:`sims.native.simulate`; the result has
    the same structure. ``build_s`` holds the time spent building and compiling,
    ``wall_s`` the time spent running steps. ``net`` is the file's IR (read here
    when None, with ``input_shape`` for a file that starts with a conv layer);
    Lava gets the network's (C, H, W) input shape as netx's ``input_shape=(W, H, C)``.

    Raises:
        MissingDependencyError: Lava is not installed.
        SimulationError: Lava failed; the message carries Lava's error.
    """
    netx = import_netx()
    from lava.magma.core.run_conditions import RunSteps  # noqa: PLC0415
    from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: PLC0415
    from lava.proc import io  # noqa: PLC0415
    from lava.proc.monitor.process import Monitor  # noqa: PLC0415

    ir = net if net is not None else read_netx(path, input_shape)
    x, steps = normalize_input(ir, spikes, steps)
    graded = ir.family == "SDNN"
    if graded and input_bias is not None:
        raise SimulationError(f"{path}: input_bias drives CUBA input neurons; a sigma-delta input layer (Delta) has no bias")
    has_input_neuron = ir.layers[0].has_neurons and not ir.layers[0].synaptic
    neuron_layers = [i for i, l in enumerate(ir.layers) if LAVA_BLOCK[l.kind](l)]
    batch = x.shape[0]
    per_sample: list[dict[int, tuple[Any, Any, Any]]] = []
    build_s = run_s = 0.0
    for b in range(batch):
        t0 = time.perf_counter()
        kwargs: dict[str, Any] = {"net_config": str(path)}
        if len(ir.input_shape) == 3:  # needed by files that start with a conv layer; ignored by the others
            kwargs["input_shape"] = tuple(reversed(ir.input_shape))
        if reset_interval is not None:
            kwargs.update(reset_interval=reset_interval, reset_offset=reset_offset)
        if graded:
            kwargs["spike_exp"] = ir.spike_exp
        lava_net = netx.hdf5.Network(**kwargs)
        if len(lava_net.layers) != len(neuron_layers):
            raise SimulationError(f"{path}: Lava built {len(lava_net.layers)} blocks, expected {len(neuron_layers)}")
        source = io.source.RingBuffer(data=_to_xyz(x[b]))
        if has_input_neuron:
            source.s_out.connect(lava_net.in_layer.neuron.a_in)
            if input_bias is not None:
                lava_net.in_layer.neuron.bias_mant.init = _to_xyz(np.asarray(input_bias)[None])[..., 0]
        else:
            source.s_out.connect(lava_net.inp)
        sinks, monitors = [], []
        for block in lava_net.layers:
            sink = io.sink.RingBuffer(shape=block.out.shape, buffer=steps)
            block.out.connect(sink.a_in)
            sinks.append(sink)
            if record_state:
                monitors.append(tuple(_probe(Monitor, block.neuron, var, steps) for var in _state_vars(block.neuron)))
        run_cfg = Loihi2SimCfg(select_tag="fixed_pt")
        got: dict[int, tuple[Any, Any, Any]] = {}
        done = False
        try:
            lava_net.create_runtime(run_cfg=run_cfg)
            t1 = time.perf_counter()
            build_s += t1 - t0
            lava_net.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)
            run_s += time.perf_counter() - t1
            for j, (i, sink) in enumerate(zip(neuron_layers, sinks)):
                data = _from_xyz(sink.data.get())
                s = data.astype(np.int32) if graded else data.astype(bool)
                u = v = None
                if record_state:
                    u, v = (None if m is None else _from_xyz(_monitor_data(m, var)).astype(np.int32)
                            for m, var in zip(monitors[j], _state_vars(lava_net.layers[j].neuron)))
                got[i] = (s, u, v)
            done = True
        except Exception as exc:  # Lava raises plain Exceptions from its runtime
            message = " ".join(str(exc).split())
            raise SimulationError(f"{path}: Lava run failed: {type(exc).__name__}: {message}") from exc
        finally:
            if done:
                lava_net.stop()
            else:  # failed or interrupted, possibly half-way through create_runtime
                _tear_down(lava_net)
        per_sample.append(got)
    return _assemble(ir, x, steps, per_sample, build_s, run_s)


def _tear_down(process: Any) -> None:
    """Kill what a failed Lava run started: its processes, their shared-memory server, its port threads.

    ``Runtime.stop()`` sends STOP and waits for every runtime service to answer; a
    service whose process model raised (or died) never answers, so it would hang.
    This reaches into Lava 0.10's runtime (``_messaging_infrastructure``, the
    ``SystemProcess`` actors) and never raises: it runs while another error is
    being reported.
    """
    runtime = getattr(process, "runtime", None)
    if runtime is None:  # compilation failed: nothing was started
        return
    infra = getattr(runtime, "_messaging_infrastructure", None)
    actors = list(getattr(infra, "actors", None) or [])
    for actor in actors:
        try:
            if actor.pid is not None and actor.pid != os.getpid() and actor.exitcode is None:
                actor.kill()
        except (ValueError, OSError, AttributeError):  # already closed or gone
            pass
    for step in (runtime.join,  # ports: releases their daemon threads
                 getattr(infra, "stop", None),  # joins the (dead) actors, shuts the shared-memory server down
                 getattr(getattr(runtime, "_watchdog_manager", None), "stop", None)):
        if step is None:
            continue
        try:
            step()
        except Exception:  # noqa: BLE001 - best effort while another error is reported
            pass
    # Runtime.__del__ calls stop() on a started runtime, which would hang at garbage collection.
    runtime._is_started = False
    runtime._is_running = False


def _state_vars(neuron: Any) -> tuple[Any, Any]:
    """The two state variables recorded as ``u`` and ``v``: a LIF's current and voltage; a sigma-delta
    neuron's ``sigma`` (None for a Delta encoder, which has none in use) and ``act`` (None for Sigma)."""
    if hasattr(neuron, "u"):
        return neuron.u, neuron.v
    kind = type(neuron).__name__
    return (None if kind == "Delta" else neuron.sigma), (None if kind == "Sigma" else neuron.act)


def _probe(monitor_cls: Any, neuron: Any, var: Any, steps: int) -> Any:
    if var is None:
        return None
    monitor = monitor_cls()
    monitor.probe(var, steps)
    return monitor


def _monitor_data(monitor: Any, var: Any) -> npt.NDArray[Any]:
    data = monitor.get_data()
    proc = next(iter(data.values()))
    arr = np.asarray(proc[var.name])  # (steps, *xyz)
    return np.moveaxis(arr, 0, -1)


def _assemble(
    ir: Network,
    x: npt.NDArray[np.int32],
    steps: int,
    per_sample: list[dict[int, tuple[Any, Any, Any]]],
    build_s: float,
    run_s: float,
) -> SimResult:
    from sims.counts import synaptic_ops  # noqa: PLC0415

    batch = x.shape[0]
    spikes: list[npt.NDArray[Any]] = []
    us: list[npt.NDArray[np.int32] | None] = []
    vs: list[npt.NDArray[np.int32] | None] = []
    prev: npt.NDArray[Any] = x != 0
    for i, layer in enumerate(ir.layers):
        if i in per_sample[0]:
            cur = np.stack([per_sample[b][i][0] for b in range(batch)]).reshape(batch, steps, *layer.out_shape)
            u, v = per_sample[0][i][1], per_sample[0][i][2]
            us.append(None if u is None else np.stack([per_sample[b][i][1] for b in range(batch)]).reshape(cur.shape))
            vs.append(None if v is None else np.stack([per_sample[b][i][2] for b in range(batch)]).reshape(cur.shape))
        else:
            cur = prev if layer.synaptic else prev.reshape(batch, steps, *layer.out_shape)
            us.append(None)
            vs.append(None)
        spikes.append(cur)
        prev = cur
    synops = synaptic_ops(ir, x != 0, spikes)
    return SimResult([l.name for l in ir.layers], spikes, synops, us, vs, backend="lava", wall_s=run_s, build_s=build_s)
