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
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import numpy.typing as npt

from export.ir import Conv, CubaNeuron, Dense, InputLayer, Layer, Network, Neuron
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
    A residual graph (``net.is_graph``) is built by :func:`build_lava_graph`, which
    netx's loader cannot do.

    Raises:
        MissingDependencyError: Lava is not installed.
        SimulationError: Lava failed; the message carries Lava's error.
    """
    netx = import_netx()
    ir = net if net is not None else read_netx(path, input_shape)
    if ir.is_graph:
        return run_lava_net(ir, spikes, steps, reset_interval=reset_interval, reset_offset=reset_offset,
                            record_state=record_state, input_bias=input_bias, label=str(path))
    x, steps = normalize_input(ir, spikes, steps)
    graded = ir.family == "SDNN"
    if graded and input_bias is not None:
        raise SimulationError(f"{path}: input_bias drives CUBA input neurons; a sigma-delta input layer (Delta) has no bias")
    has_input_neuron = ir.layers[0].has_neurons and not ir.layers[0].synaptic
    neuron_layers = [i for i, l in enumerate(ir.layers) if LAVA_BLOCK[l.kind](l)]
    per_sample: list[dict[int, tuple[Any, Any, Any]]] = []
    build_s = run_s = 0.0
    for b in range(x.shape[0]):
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
        source = _source(x[b])
        if has_input_neuron:
            source.s_out.connect(lava_net.in_layer.neuron.a_in)
            if input_bias is not None:
                lava_net.in_layer.neuron.bias_mant.init = _to_xyz(np.asarray(input_bias)[None])[..., 0]
        else:
            source.s_out.connect(lava_net.inp)
        got, t_build, t_run = _run_blocks(lava_net, dict(zip(neuron_layers, lava_net.layers)), steps, record_state,
                                          graded, str(path), t0)
        build_s += t_build
        run_s += t_run
        per_sample.append(got)
    return _assemble(ir, x, steps, per_sample, build_s, run_s)


def _source(frames: npt.NDArray[np.int32]) -> Any:
    """A RingBuffer source sending ``frames[k]`` (T, *shape) at step k + 1, in Lava's XYZ order."""
    from lava.proc import io  # noqa: PLC0415

    return io.source.RingBuffer(data=_to_xyz(frames))


def _run_blocks(
    anchor: Any, blocks: dict[int, Any], steps: int, record_state: bool, graded: bool, label: str, t0: float,
) -> tuple[dict[int, tuple[Any, Any, Any]], float, float]:
    """Attach a sink (and, with ``record_state``, monitors) to every block, run ``steps`` steps, and
    read them back: per IR layer index (spikes, u, v) in (steps, *shape) order; also the build and
    run times. The runtime is stopped, or torn down after a failure.

    Args:
        anchor: a process of the graph (the runtime is created on it; Lava compiles all it reaches).
        blocks: IR layer index -> netx block (``out`` port and ``neuron``).
        t0: when building started (``time.perf_counter()``).
    """
    from lava.magma.core.run_conditions import RunSteps  # noqa: PLC0415
    from lava.magma.core.run_configs import Loihi2SimCfg  # noqa: PLC0415
    from lava.proc import io  # noqa: PLC0415
    from lava.proc.monitor.process import Monitor  # noqa: PLC0415

    sinks: dict[int, Any] = {}
    monitors: dict[int, tuple[Any, Any]] = {}
    for i, block in blocks.items():
        sink = io.sink.RingBuffer(shape=block.out.shape, buffer=steps)
        block.out.connect(sink.a_in)
        sinks[i] = sink
        if record_state:
            monitors[i] = (_probe(Monitor, block.neuron, _state_vars(block.neuron)[0], steps),
                           _probe(Monitor, block.neuron, _state_vars(block.neuron)[1], steps))
    run_cfg = Loihi2SimCfg(select_tag="fixed_pt")
    got: dict[int, tuple[Any, Any, Any]] = {}
    done = False
    try:
        anchor.create_runtime(run_cfg=run_cfg)
        t1 = time.perf_counter()
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=run_cfg)
        t2 = time.perf_counter()
        for i, block in blocks.items():
            data = _from_xyz(sinks[i].data.get())
            s = data.astype(np.int32) if graded else data.astype(bool)
            u = v = None
            if record_state:
                u, v = (None if m is None else _from_xyz(_monitor_data(m, var)).astype(np.int32)
                        for m, var in zip(monitors[i], _state_vars(block.neuron)))
            got[i] = (s, u, v)
        done = True
    except Exception as exc:  # Lava raises plain Exceptions from its runtime
        message = " ".join(str(exc).split())
        raise SimulationError(f"{label}: Lava run failed: {type(exc).__name__}: {message}") from exc
    finally:
        if done:
            anchor.stop()
        else:  # failed or interrupted, possibly half-way through create_runtime
            _tear_down(anchor)
    return got, t1 - t0, t2 - t1


class _LayerConfig(dict):  # type: ignore[type-arg]
    """One layer as netx's ``NetDict`` hands it to its ``create_*`` builders: ``type`` a string,
    ``weight``/``bias`` int64 copies, the other keys raw arrays, ``neuron`` a nested config.
    ``f`` stands for the file handle netx probes for complex weights (``"weight/imag" in cfg.f``)."""

    @property
    def f(self) -> "_LayerConfig":
        return self


def _neuron_config(neuron: Neuron | None) -> _LayerConfig | None:
    if neuron is None:
        return None
    if not isinstance(neuron, CubaNeuron):
        raise SimulationError("build_lava_graph builds CUBA-LIF networks; sigma-delta networks are chains "
                              "that netx loads (run_lava on the file)")
    return _LayerConfig(type=neuron.kind, iDecay=np.asarray(neuron.i_decay, np.int32),
                        vDecay=np.asarray(neuron.v_decay, np.int32), vThMant=np.asarray(neuron.v_th_mant, np.int32))


def netx_layer_config(layer: Layer) -> _LayerConfig:
    """What netx's loader reads for ``layer`` from the file :func:`export.netx.write_netx` writes."""
    cfg = _LayerConfig(type=layer.kind, shape=np.asarray(layer.shape, np.int64))
    neuron = _neuron_config(getattr(layer, "neuron", None))
    if neuron is not None:
        cfg["neuron"] = neuron
    if isinstance(layer, InputLayer):
        for key in ("weight", "bias"):
            if getattr(layer, key) is not None:
                cfg[key] = np.int64(getattr(layer, key))
    elif isinstance(layer, Dense):
        cfg["weight"] = np.asarray(layer.weight).astype(int)
        if layer.delay is not None:
            cfg["delay"] = np.asarray(layer.delay, np.int32)
    elif isinstance(layer, Conv):
        cfg["weight"] = np.asarray(layer.weight).astype(int)
        for key in ("stride", "padding", "dilation"):
            cfg[key] = np.asarray(getattr(layer, key), np.int64)
        cfg["groups"] = np.int64(layer.groups)
    bias = getattr(layer, "bias", None)
    if not isinstance(layer, InputLayer) and bias is not None:
        arr = np.asarray(bias)
        cfg["bias"] = (arr if arr.ndim < 3 else arr.transpose(2, 1, 0)).astype(int)  # netx: (W, H, C)
    return cfg


def _clone_synapse(synapse: Any) -> Any:
    """Another synapse process of the same type with the same constructor arguments (weights,
    weight_exp, num_weight_bits, delays, conv geometry, message bits): one more copy of a merge."""
    params = {k: v for k, v in synapse.proc_params._parameters.items() if k not in ("name", "log_config")}
    if "delays" not in params and hasattr(synapse, "delays"):  # DelayDense keeps its delays in a Var only
        params["delays"] = synapse.delays.init
    return type(synapse)(**params)


@dataclass
class LavaGraph:
    """A Lava process graph built from an IR by :func:`build_lava_graph`.

    Attributes:
        blocks: IR layer index -> the netx block (``Input``, ``Dense`` or ``Conv``) of that layer.
        extra_synapses: IR layer index -> the synapse processes added for its second, third, ...
            source, each connected into the block's ``neuron.a_in``.
        source: the process the input spikes come from (what the caller passed).
    """

    blocks: dict[int, Any]
    extra_synapses: dict[int, list[Any]]
    source: Any


def build_lava_graph(
    net: Network, source_port: Any, *, reset_interval: int | None = None, reset_offset: int = 0,
) -> LavaGraph:
    """Build the Lava processes of ``net`` the way lava-dl's netx builds a chain, for any graph.

    Every layer with neurons becomes the block netx's own builders make from the file's layer
    group (``netx.hdf5.Network.create_input/create_dense/create_conv``: the same weight-bit
    optimisation, neuron process, bias broadcast and reset offsets). A layer's first source
    connects to the block's ``inp`` as netx connects a chain (through netx's ``transpose``/
    ``flatten`` where a flatten layer lies between); each further source gets another synapse
    process of the same type and arguments, from that source's output into the block's
    ``neuron.a_in``, whose port adds them. Nothing simulator-specific is used: the graph runs with
    ``Loihi2SimCfg(select_tag='fixed_pt')`` and, on a Loihi 2 system, ``Loihi2HwCfg``.

    Args:
        net: a CUBA-LIF network, chain or graph.
        source_port: the OutPort the input comes from: (W, H, C) or (N,) spikes into the first
            synapse, or, when the first layer is an input layer with a neuron, the integers added to
            that neuron's current (connected to its ``a_in``).
        reset_interval, reset_offset: netx's LIFReset arguments (offsets in layer order).

    Raises:
        MissingDependencyError: Lava is not installed.
        SimulationError: a sigma-delta network.
    """
    netx = import_netx()
    builders = netx.hdf5.Network
    if net.family != "CUBA":
        raise SimulationError("build_lava_graph builds CUBA-LIF networks; sigma-delta networks are chains "
                              "that netx loads (run_lava on the file)")
    blocks: dict[int, Any] = {}
    extra: dict[int, list[Any]] = {}
    offset = reset_offset + 1  # netx: "time starts from 1 in hardware", then one more per block
    kwargs: dict[str, Any] = {"reset_interval": reset_interval}

    def output_port(j: int | None) -> Any:
        """The OutPort carrying layer j's output (None: the network's input), in the order its
        consumers read it: a flatten is netx's transpose to (C, H, W) and flatten."""
        if j is None:
            return source_port
        layer = net.layers[j]
        if j in blocks:
            return blocks[j].out
        srcs = net.sources(j)
        port = output_port(srcs[0] if srcs else None)
        if layer.kind == "flatten" and len(port.shape) == 3:
            return port.transpose([2, 1, 0]).flatten()
        return port

    for i, layer in enumerate(net.layers):
        if not LAVA_BLOCK[layer.kind](layer):
            continue
        cfg = netx_layer_config(layer)
        srcs: tuple[int | None, ...] = net.sources(i) or (None,)
        if isinstance(layer, InputLayer):
            block, _ = builders.create_input(cfg, reset_offset=offset, **kwargs)
            source_port.connect(block.neuron.a_in)
        elif isinstance(layer, Dense):
            block, _ = builders.create_dense(cfg, input_message_bits=0, reset_offset=offset, **kwargs)
        else:
            in_shape = tuple(reversed(net.input_shape if srcs[0] is None else net.layers[srcs[0]].out_shape))
            block, _ = builders.create_conv(cfg, input_shape=in_shape, input_message_bits=0, reset_offset=offset,
                                            **kwargs)
        offset += 1
        blocks[i] = block
        if layer.synaptic:
            output_port(srcs[0]).connect(block.inp)
            extra[i] = []
            for j in srcs[1:]:
                synapse = _clone_synapse(block.synapse)
                output_port(j).connect(synapse.s_in)
                synapse.a_out.connect(block.neuron.a_in)
                extra[i].append(synapse)
    return LavaGraph(blocks, extra, source_port)


def run_lava_net(
    net: Network,
    spikes: npt.ArrayLike,
    steps: int | None = None,
    *,
    reset_interval: int | None = None,
    reset_offset: int = 0,
    record_state: bool = False,
    input_bias: npt.ArrayLike | None = None,
    label: str = "network",
) -> SimResult:
    """Run the IR ``net`` (chain or residual graph) in Lava, built by :func:`build_lava_graph`.

    Arguments and result as :func:`run_lava`; ``label`` names the network in error messages.

    Raises:
        MissingDependencyError: Lava is not installed.
        SimulationError: bad input, a sigma-delta network, or Lava failed.
    """
    import_netx()
    x, steps = normalize_input(net, spikes, steps)
    if reset_interval is not None and reset_interval < 1:
        raise SimulationError(f"reset_interval must be >= 1, got {reset_interval}")
    first = net.layers[0]
    if input_bias is not None and not (isinstance(first, InputLayer) and first.has_neurons):
        raise SimulationError(f"{label}: input_bias drives the input layer's neurons; {net.describe(0)} has none")
    per_sample: list[dict[int, tuple[Any, Any, Any]]] = []
    build_s = run_s = 0.0
    for b in range(x.shape[0]):
        t0 = time.perf_counter()
        source = _source(x[b])
        graph = build_lava_graph(net, source.s_out, reset_interval=reset_interval, reset_offset=reset_offset)
        if input_bias is not None:
            graph.blocks[0].neuron.bias_mant.init = _to_xyz(np.asarray(input_bias)[None])[..., 0]
        got, t_build, t_run = _run_blocks(source, graph.blocks, steps, record_state, False, label, t0)
        build_s += t_build
        run_s += t_run
        per_sample.append(got)
    return _assemble(net, x, steps, per_sample, build_s, run_s)


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
    input_active = np.zeros((batch, steps, *x.shape[2:]), dtype=np.bool_)
    t_in = min(steps, x.shape[1])
    input_active[:, :t_in] = x[:, :t_in] != 0
    for i, layer in enumerate(ir.layers):
        srcs = ir.sources(i)
        # A layer without neurons (flatten, shape-only input) passes its source's spikes on, reshaped.
        prev = input_active if not srcs else spikes[srcs[0]]
        if i in per_sample[0]:
            cur = np.stack([per_sample[b][i][0] for b in range(batch)]).reshape(batch, steps, *layer.out_shape)
            u, v = per_sample[0][i][1], per_sample[0][i][2]
            us.append(None if u is None else np.stack([per_sample[b][i][1] for b in range(batch)]).reshape(cur.shape))
            vs.append(None if v is None else np.stack([per_sample[b][i][2] for b in range(batch)]).reshape(cur.shape))
        else:
            cur = prev.reshape(batch, steps, *layer.out_shape)
            us.append(None)
            vs.append(None)
        spikes.append(cur)
    synops = synaptic_ops(ir, input_active, spikes)
    return SimResult([l.name for l in ir.layers], spikes, synops, us, vs, backend="lava", wall_s=run_s, build_s=build_s)
