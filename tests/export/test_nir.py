"""NIR export: the graph rereads with ``nir.read`` and means what the integer network computes.

Structure: every layer kind (the netgen registry) and Intel's MNIST network are
written, reread with ``nir.read`` and checked node by node (types, shapes,
edges, weights, the CubaLIF parameters against the documented mapping and the
integers recovered from them).

Numbers: a float64 re-implementation of the NIR CubaLIF equations
(:func:`run_nir_float`, forward Euler at ``dt = 1``, written from the NIR
equations, not from the simulator) runs the reread graph and is compared with
``sims.native.simulate``:

* with decays of 0, 2048 and 4096 only, no integer truncation happens in the
  first 7 steps and no float rounding either, so spikes are equal and
  ``u = 64 I``, ``v = 64 v_nir`` hold exactly, at every layer and step (Loihi
  timing from the metadata), for dense, conv and grouped-conv layers;
* with other decays (the demo conv network, Intel's MNIST network) spikes are
  equal over a few steps and the states differ by no more than the truncation
  bound;
* with plain NIR timing (no synaptic delay), a bias-free network equals the
  native output shifted by one step per layer.

nirtorch 2.6 (``nir_to_torch``, needs the user's module for CubaLIF) rebuilds
a dense network from the file; with a torch CubaLIF written from the same NIR
equations it reproduces the native spikes, shifted by the layer depth.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from export.examples import dense_network, random_spikes, small_conv_network
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, default_dense_neuron
from export.netx import read_netx
from hw_targets import constants as C
from hw_targets.errors import ExportError, MissingDependencyError
from netgen import KINDS, random_case
from shared_data import shared_file

nir = pytest.importorskip("nir")

from export.nir import (  # noqa: E402
    INPUT_NODE,
    OUTPUT_NODE,
    TAU_NO_DECAY,
    cuba_integer_params,
    read_nir,
    to_nir,
    write_nir,
)

#: Loihi keeps u and v in units of 2**-6 weight steps (inputs, biases and threshold are shifted by 6).
LSB_PER_UNIT = 1 << C.ACT_SHIFT
FloatArray = npt.NDArray[np.float64]


# ----------------------------------------------------------------------------- reference


def _chain(graph: Any) -> list[str]:
    """Node names from the Input to the Output along the edges (the graphs are chains)."""
    nxt = dict(graph.edges)
    assert len(nxt) == len(graph.edges), "a chain has one edge out of each node"
    names = [INPUT_NODE]
    while names[-1] in nxt:
        names.append(nxt[names[-1]])
    assert names[-1] == OUTPUT_NODE and len(names) == len(graph.nodes)
    return names


def _conv2d(x: FloatArray, node: Any) -> FloatArray:
    import torch
    import torch.nn.functional as F

    batch, steps = x.shape[:2]
    y = F.conv2d(torch.from_numpy(x.reshape(batch * steps, *x.shape[2:])), torch.from_numpy(node.weight),
                 torch.from_numpy(node.bias), stride=tuple(int(s) for s in node.stride),
                 padding=tuple(int(p) for p in node.padding), dilation=tuple(int(d) for d in node.dilation),
                 groups=int(node.groups))
    return y.numpy().reshape(batch, steps, *y.shape[1:])


def run_nir_float(graph: Any, frames: npt.ArrayLike, loihi_timing: bool) -> dict[str, tuple[FloatArray, ...]]:
    """Run a NIR chain in float64 from the NIR equations, with ``dt = 1``.

    CubaLIF, forward Euler, current first (the module docstring's discretisation)::

        I = (1 - dt/tau_syn) I + (dt/tau_syn) w_in S
        v = (1 - dt/tau_mem) v + (dt/tau_mem) (v_leak + r I)
        z = v > v_threshold;  v = v_reset where z

    Args:
        graph: the NIR graph.
        frames: (B, T, *input_shape).
        loihi_timing: delay each CubaLIF's input by its ``synaptic_delay_steps``
            metadata (Loihi's one step per synapse); plain NIR has no delay.

    Returns:
        For every CubaLIF node: spikes, I and v, each (B, T, *shape).
    """
    x = np.asarray(frames, dtype=np.float64)
    batch, steps = x.shape[:2]
    out: dict[str, tuple[FloatArray, ...]] = {}
    for name in _chain(graph):
        node = graph.nodes[name]
        if isinstance(node, nir.Linear):
            x = x @ node.weight.T
        elif isinstance(node, nir.Affine):
            x = x @ node.weight.T + node.bias
        elif isinstance(node, nir.Conv2d):
            x = _conv2d(x, node)
        elif isinstance(node, nir.Flatten):
            assert node.start_dim == 0  # NIR shapes have no batch axis
            x = x.reshape(batch, steps, -1)
        elif isinstance(node, nir.CubaLIF):
            delay = int(node.metadata["synaptic_delay_steps"]) if loihi_timing else 0
            drive = np.zeros_like(x)
            drive[:, delay:] = x[:, : steps - delay]
            current = np.zeros(x.shape[:1] + x.shape[2:])
            voltage = np.zeros_like(current)
            spikes, currents, voltages = np.zeros_like(x), np.zeros_like(x), np.zeros_like(x)
            for t in range(steps):
                current = (1 - 1 / node.tau_syn) * current + (1 / node.tau_syn) * node.w_in * drive[:, t]
                voltage = (1 - 1 / node.tau_mem) * voltage + (1 / node.tau_mem) * (node.v_leak + node.r * current)
                fired = voltage > node.v_threshold
                voltage = np.where(fired, node.v_reset, voltage)
                spikes[:, t], currents[:, t], voltages[:, t] = fired, current, voltage
            out[name] = (spikes, currents, voltages)
            x = spikes
    return out


def _native(net: Network, frames: npt.NDArray[Any], steps: int) -> Any:
    sims_native = pytest.importorskip("sims.native")
    return sims_native.simulate(net, frames, steps, record_state=True)


def _neuron_layers(net: Network) -> list[int]:
    """Indices of the layers with neurons (a dense layer without one gets netx's default neuron)."""
    return [i for i, l in enumerate(net.layers)
            if isinstance(l, (Dense, Conv)) or (isinstance(l, InputLayer) and l.neuron is not None)]


def _truncation_bounds(steps: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """LSBs by which Loihi's truncating decays can differ from exact ones after step 0..steps-1.

    Each decay truncates u and v by less than one LSB and never amplifies an old
    error, so after n steps u is off by < n; v also receives u's error every step.
    """
    n = np.arange(1, steps + 1)
    return n, n * (n + 1) // 2 + n


def _compare_with_native(net: Network, frames: npt.NDArray[Any], steps: int, exact: bool, tmp_path: Path) -> int:
    """Loihi-timed float run of the reread NIR file vs the native simulator; returns the spike count."""
    graph = read_nir(write_nir(net, tmp_path / "net.nir"))
    padded = np.zeros((frames.shape[0], steps, *frames.shape[2:]), dtype=frames.dtype)
    padded[:, : frames.shape[1]] = frames[:, :steps]
    ref = run_nir_float(graph, padded, loihi_timing=True)
    sim = _native(net, frames, steps)
    total = 0
    for i in _neuron_layers(net):
        layer = net.layers[i]
        spikes, current, voltage = ref[f"{layer.name}.neuron"]
        got = sim.spikes[i].astype(bool)
        bad = np.argwhere(spikes.astype(bool) != got)
        assert bad.size == 0, f"{net.describe(i)}: spikes differ first at (sample, step, ...) {tuple(bad[0])}"
        total += int(got.sum())
        u, v = sim.u[i].astype(np.float64), sim.v[i].astype(np.float64)
        assert np.abs(u).max() < C.STATE_HALF and np.abs(v).max() < C.V_MAX, "wrap or saturation reached"
        if exact:
            # Decays 0, 1/2 and 1 are exact in float64 (tau = 2**60, 2, 1), so nothing is rounded either side.
            np.testing.assert_array_equal(current * LSB_PER_UNIT, u, err_msg=net.describe(i))
            np.testing.assert_array_equal(voltage * LSB_PER_UNIT, v, err_msg=net.describe(i))
        else:
            u_bound, v_bound = (b.reshape(1, -1, *([1] * len(layer.shape))) for b in _truncation_bounds(steps))
            assert np.all(np.abs(current * LSB_PER_UNIT - u) < u_bound), f"{net.describe(i)}: u beyond truncation"
            assert np.all(np.abs(voltage * LSB_PER_UNIT - v) < v_bound), f"{net.describe(i)}: v beyond truncation"
    return total


# ----------------------------------------------------------------------------- structure


def _ungrouped(conv: Conv) -> npt.NDArray[np.float64]:
    """Expected NIR weight: the grouped kernel placed in its group's input channels, zero elsewhere."""
    c_out, c_in_group = conv.weight.shape[:2]
    full = np.zeros((c_out, c_in_group * conv.groups, *conv.weight.shape[2:]))
    for o in range(c_out):
        g = o // (c_out // conv.groups)
        full[o, g * c_in_group : (g + 1) * c_in_group] = conv.weight[o]
    return full


def _expected_names(net: Network) -> list[tuple[str, type]]:
    names: list[tuple[str, type]] = [(INPUT_NODE, nir.Input)]
    for layer in net.layers:
        if isinstance(layer, InputLayer):
            if layer.neuron is not None:
                names.append((f"{layer.name}.neuron", nir.CubaLIF))
        elif isinstance(layer, Flatten):
            names.append((layer.name, nir.Flatten))
        else:
            names.append((f"{layer.name}.synapse", nir.Linear if isinstance(layer, Dense) else nir.Conv2d))
            names.append((f"{layer.name}.neuron", nir.CubaLIF))
    return names + [(OUTPUT_NODE, nir.Output)]


def _broadcast(value: Any, shape: tuple[int, ...]) -> npt.NDArray[np.int64]:
    arr = np.asarray(0 if value is None else value, dtype=np.int64)
    if arr.ndim == 1 and len(shape) == 3:
        arr = arr.reshape(-1, 1, 1)
    return np.broadcast_to(arr, shape)


def _check_neuron(node: Any, layer: Layer, neuron: CubaNeuron, bias: Any, delay: int) -> None:
    shape = tuple(layer.shape)
    ints = {k: _broadcast(getattr(neuron, k), shape) for k in ("i_decay", "v_decay", "v_th_mant")}
    ints["bias_mant"] = _broadcast(bias, shape)
    assert tuple(node.input_type["input"]) == tuple(node.output_type["output"]) == shape
    # The documented mapping, computed independently.
    for tau_name, decay in (("tau_syn", ints["i_decay"]), ("tau_mem", ints["v_decay"])):
        tau = getattr(node, tau_name)
        np.testing.assert_array_equal(tau[decay == 0], TAU_NO_DECAY)
        np.testing.assert_allclose(tau[decay > 0], 4096.0 / decay[decay > 0], rtol=1e-12)
    np.testing.assert_array_equal(node.w_in, node.tau_syn)
    np.testing.assert_array_equal(node.r, node.tau_mem)
    np.testing.assert_allclose(node.v_leak, ints["bias_mant"] * node.tau_mem, rtol=1e-12)
    np.testing.assert_array_equal(node.v_threshold, ints["v_th_mant"])
    np.testing.assert_array_equal(node.v_reset, 0.0)
    # The inverse recovers the integers exactly.
    for key, value in cuba_integer_params(node).items():
        np.testing.assert_array_equal(value, ints[key], err_msg=f"{layer.name}: {key}")
    meta = node.metadata
    assert meta["layer"] == layer.name and int(meta["synaptic_delay_steps"]) == delay
    np.testing.assert_array_equal(meta["v_th_mant"], np.atleast_1d(neuron.v_th_mant))
    assert meta["current_overflow"] == "wrap" and meta["voltage_overflow"] == "saturate"


def check_round_trip(net: Network, graph: Any) -> None:
    """Node types, shapes, edges and parameter values of a reread graph against the IR."""
    names = _chain(graph)
    assert [(n, type(graph.nodes[n])) for n in names] == _expected_names(net)
    assert graph.edges == list(zip(names[:-1], names[1:]))
    assert tuple(graph.nodes[INPUT_NODE].input_type["input"]) == tuple(net.input_shape)
    assert tuple(graph.nodes[OUTPUT_NODE].output_type["output"]) == tuple(net.out_shape)
    assert float(graph.metadata["dt"]) == 1.0
    for layer in net.layers:
        if isinstance(layer, InputLayer):
            if layer.neuron is not None:
                _check_neuron(graph.nodes[f"{layer.name}.neuron"], layer, layer.neuron, None, 0)
        elif isinstance(layer, Flatten):
            node = graph.nodes[layer.name]
            assert tuple(node.output_type["output"]) == layer.shape and node.start_dim == 0
        elif isinstance(layer, Dense):
            np.testing.assert_array_equal(graph.nodes[f"{layer.name}.synapse"].weight, layer.weight)
            _check_neuron(graph.nodes[f"{layer.name}.neuron"], layer, layer.neuron or default_dense_neuron(),
                          layer.bias, 1)
        elif isinstance(layer, Conv):
            syn = graph.nodes[f"{layer.name}.synapse"]
            np.testing.assert_array_equal(syn.weight, _ungrouped(layer))
            assert (tuple(syn.stride), tuple(syn.padding), tuple(syn.dilation), int(syn.groups)) == (
                layer.stride, layer.padding, layer.dilation, 1)
            assert int(syn.metadata["groups"]) == layer.groups
            np.testing.assert_array_equal(syn.bias, 0.0)
            assert tuple(syn.output_type["output"]) == layer.shape
            assert layer.neuron is not None
            _check_neuron(graph.nodes[f"{layer.name}.neuron"], layer, layer.neuron, layer.bias, 1)


@pytest.mark.parametrize("make", [small_conv_network, dense_network], ids=["small_conv", "dense"])
def test_examples_round_trip(make: Any, tmp_path: Path) -> None:
    net = make(seed=3)
    path = write_nir(net, tmp_path / "net.nir")
    check_round_trip(net, nir.read(path))
    check_round_trip(net, read_nir(path))
    assert not list(tmp_path.glob(".nir-*")), "temporary file left behind"


def test_intel_mnist_round_trip(tmp_path: Path) -> None:
    net = read_netx(shared_file("lava_netx", "mnist", "trained_mnist_network.net"))
    check_round_trip(net, nir.read(write_nir(net, tmp_path / "mnist.nir")))


def _has_delays(net: Network) -> bool:
    return any(isinstance(l, Dense) and l.delay is not None and np.any(l.delay) for l in net.layers)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), kind=st.sampled_from(KINDS))
def test_every_layer_kind_round_trips(seed: int, kind: str, tmp_path: Path) -> None:
    net = random_case(seed, kind).net
    if _has_delays(net):
        with pytest.raises(ExportError, match="per-synapse delays"):
            write_nir(net, tmp_path / "n.nir")
        return
    check_round_trip(net, read_nir(write_nir(net, tmp_path / "n.nir")))


# ----------------------------------------------------------------------------- numbers


def _exact_decay_network(seed: int = 0) -> Network:
    """Input neuron, three dense layers; decays 0, 2048, 4096 (no truncation in 7 steps), all bias forms."""
    rng = np.random.default_rng(seed)

    def neuron(n: int, per_channel: bool) -> CubaNeuron:
        pick = (lambda vals: rng.choice(vals, size=n).astype(np.int32)) if per_channel else (
            lambda vals: np.int32(rng.choice(vals)))
        return CubaNeuron(pick([0, 2048, 4096]), pick([0, 2048, 4096]), pick([20, 40, 90]))

    layers: list[Layer] = [InputLayer("input0", (12,), CubaNeuron(np.int32(2048), np.int32(0), np.int32(30)))]
    sizes = (12, 16, 10, 6)
    biases = (rng.integers(-10, 20, size=16).astype(np.int32), np.int32(7), None)
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(-30, 60, size=(n_out, n_in)).astype(np.int32)
        layers.append(Dense(f"dense{i + 1}", (n_out,), w, biases[i], neuron(n_out, per_channel=i != 1)))
    return Network(tuple(layers), (12,))


def _exact_decay_conv_network(seed: int = 0) -> Network:
    """conv -> depthwise conv (groups = channels) -> flatten -> dense; decays 0, 2048, 4096 only."""
    rng = np.random.default_rng(seed)

    def neuron(channels: int) -> CubaNeuron:
        return CubaNeuron(rng.choice([0, 2048, 4096], size=channels).astype(np.int32),
                          rng.choice([0, 2048, 4096], size=channels).astype(np.int32), np.int32(50))

    conv = Conv("conv0", (4, 5, 5), rng.integers(-20, 40, size=(4, 2, 3, 3)).astype(np.int32), (2, 2), (1, 1),
                bias=rng.integers(-5, 10, size=4).astype(np.int32), neuron=neuron(4))
    depthwise = Conv("conv1", (8, 5, 5), rng.integers(-10, 60, size=(8, 1, 3, 3)).astype(np.int32), padding=(1, 1),
                     groups=4, bias=rng.integers(-5, 10, size=(8, 5, 5)).astype(np.int32), neuron=neuron(8))
    dense = Dense("dense3", (5,), rng.integers(-10, 20, size=(5, 200)).astype(np.int32), None, neuron(5))
    return Network((conv, depthwise, Flatten("flatten2", (200,)), dense), (2, 9, 9))


@pytest.mark.parametrize("make,shape", [(_exact_decay_network, (12,)), (_exact_decay_conv_network, (2, 9, 9))],
                         ids=["input_neuron_dense", "conv_depthwise"])
def test_float_nir_equals_native_exactly_without_truncation(make: Any, shape: tuple[int, ...], tmp_path: Path) -> None:
    net = make()
    rng = np.random.default_rng(1)
    if isinstance(net.layers[0], InputLayer):
        frames = rng.integers(0, 40, size=(3, 7, *shape)).astype(np.int32)  # graded input into the input neuron
    else:
        frames = (rng.random((3, 7, *shape)) < 0.4).astype(np.int32)
    assert _compare_with_native(net, frames, steps=7, exact=True, tmp_path=tmp_path) > 0


def test_float_nir_tracks_native_on_conv_network(tmp_path: Path) -> None:
    net = small_conv_network(seed=0, input_shape=(2, 16, 16))
    frames = random_spikes(2, (2, 6, 2, 16, 16), 0.3).astype(np.int32)
    assert _compare_with_native(net, frames, steps=6, exact=False, tmp_path=tmp_path) > 0


def test_float_nir_tracks_native_on_intel_mnist(tmp_path: Path) -> None:
    net = read_netx(shared_file("lava_netx", "mnist", "trained_mnist_network.net"))
    frames = random_spikes(3, (2, 8, 784), 0.3).astype(np.int32)
    assert _compare_with_native(net, frames, steps=8, exact=False, tmp_path=tmp_path) > 0


def _small_dense() -> Network:
    return dense_network(seed=4, sizes=(40, 24, 16, 8))  # bias-free, decays 410/4096, threshold 64


def _shifted_native(net: Network, frames: npt.NDArray[Any], steps: int) -> list[npt.NDArray[np.bool_]]:
    """Native spikes of each dense layer moved back by its depth: plain NIR has no synaptic delay."""
    sim = _native(net, frames, steps + len(net.layers))
    return [sim.spikes[i][:, depth : depth + steps] for depth, i in enumerate(range(len(net.layers)), start=1)]


def test_plain_nir_timing_equals_native_shifted(tmp_path: Path) -> None:
    net = _small_dense()
    steps = 8
    frames = random_spikes(5, (2, steps, 40), 0.4).astype(np.int32)
    graph = read_nir(write_nir(net, tmp_path / "d.nir"))
    ref = run_nir_float(graph, frames, loihi_timing=False)
    shifted = _shifted_native(net, frames, steps)
    for layer, expected in zip(net.layers, shifted):
        np.testing.assert_array_equal(ref[f"{layer.name}.neuron"][0].astype(bool), expected, err_msg=layer.name)
    assert shifted[-1].any()


def test_nirtorch_rebuilds_dense_network(tmp_path: Path) -> None:
    nirtorch = pytest.importorskip("nirtorch")
    import torch

    class CubaLIF(torch.nn.Module):
        """The NIR CubaLIF equations (as in run_nir_float), stepped once per call with nirtorch's state."""

        def __init__(self, node: Any) -> None:
            super().__init__()
            for key in ("tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "v_reset", "w_in"):
                self.register_buffer(key, torch.from_numpy(np.asarray(getattr(node, key), dtype=np.float64)))

        def forward(self, x: Any, state: Any = None) -> tuple[Any, Any]:
            current, voltage = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
            current = (1 - 1 / self.tau_syn) * current + (1 / self.tau_syn) * self.w_in * x
            voltage = (1 - 1 / self.tau_mem) * voltage + (1 / self.tau_mem) * (self.v_leak + self.r * current)
            fired = voltage > self.v_threshold
            voltage = torch.where(fired, self.v_reset, voltage)
            return fired.to(x.dtype), (current, voltage)

    net = _small_dense()
    steps = 8
    frames = random_spikes(5, (2, steps, 40), 0.4).astype(np.int32)
    path = write_nir(net, tmp_path / "d.nir")
    module = nirtorch.nir_to_torch(path, {nir.CubaLIF: CubaLIF}, dtype=torch.float64)
    state = None
    outputs = []
    with torch.no_grad():
        for t in range(steps):
            out, state = module(torch.from_numpy(frames[:, t].astype(np.float64)), state)
            outputs.append(out.numpy())
    got = np.stack(outputs, axis=1).astype(bool)  # (B, T, classes)
    expected = _shifted_native(net, frames, steps)[-1]
    np.testing.assert_array_equal(got, expected)
    assert expected.any()


# ----------------------------------------------------------------------------- errors


def test_delays_refused_with_layer_name(tmp_path: Path) -> None:
    net = dense_network(seed=0, sizes=(6, 4))
    layer = net.layers[0]
    assert isinstance(layer, Dense)
    delayed = Network((Dense("dense0", layer.shape, layer.weight, None, layer.neuron,
                             np.ones_like(layer.weight)),), (6,))
    with pytest.raises(ExportError, match="dense0.*per-synapse delays"):
        to_nir(delayed)


def test_non_square_kernel_refused_with_layer_name() -> None:
    w = np.ones((2, 1, 3, 1), dtype=np.int32)
    net = Network((Conv("conv0", (2, 4, 6), w, neuron=CubaNeuron(np.int32(0), np.int32(0), np.int32(5))),), (1, 6, 6))
    with pytest.raises(ExportError, match="conv0.*not square"):
        to_nir(net)


def test_bad_output_folder(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="does not exist"):
        write_nir(dense_network(sizes=(4, 3)), tmp_path / "missing" / "n.nir")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such NIR file"):
        read_nir(tmp_path / "absent.nir")
    junk = tmp_path / "junk.nir"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ExportError, match="junk.nir"):
        read_nir(junk)


def test_inverse_refuses_foreign_nodes() -> None:
    node = nir.CubaLIF(tau_syn=np.array([2.0]), tau_mem=np.array([3.0]), r=np.array([1.0]),
                       v_leak=np.array([0.0]), v_threshold=np.array([1.0]))
    with pytest.raises(ExportError, match="w_in"):
        cuba_integer_params(node, "lif")


def test_missing_nir_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"'nir'.*neuromoco\[export\]"):
        to_nir(dense_network(sizes=(4, 3)))


def test_residual_graph_merges_are_edges_into_one_synapse(tmp_path: Path) -> None:
    """A merge of k layers is k edges into the merge layer's synapse node (NIR sums a node's inputs)."""
    from export.examples import small_residual_network

    net = small_residual_network(0)
    graph = read_nir(write_nir(net, tmp_path / "residual.nir"))
    incoming: dict[str, list[str]] = {}
    for src, dst in graph.edges:
        incoming.setdefault(dst, []).append(src)
    assert sorted(incoming["block2_conv1.synapse"]) == ["block1_conv2.neuron", "stem.neuron"]
    assert sorted(incoming["block2_down.synapse"]) == ["block1_conv2.neuron", "stem.neuron"]
    assert sorted(incoming["pool.synapse"]) == ["block2_conv2.neuron", "block2_down.neuron"]
    assert sorted(incoming["fc3.synapse"]) == ["fc1.neuron", "fc2.neuron"]
    assert incoming["stem.synapse"] == [INPUT_NODE] and incoming[OUTPUT_NODE] == ["fc3.neuron"]
    # every other node has exactly one input; every layer's parameters are written as for a chain
    assert all(len(v) == 1 for k, v in incoming.items() if k not in (
        "block2_conv1.synapse", "block2_down.synapse", "pool.synapse", "fc3.synapse"))
    assert len(graph.edges) == sum(len(v) for v in incoming.values()) == 26
    for layer in net.layers:
        if isinstance(layer, Conv):
            np.testing.assert_array_equal(graph.nodes[f"{layer.name}.synapse"].weight, _ungrouped(layer))
            assert tuple(graph.nodes[f"{layer.name}.synapse"].output_type["output"]) == layer.shape
