"""Random integer networks for property tests: every layer kind and parameter form.

``random_case(seed, kind)`` returns a network, an input batch and run options.
Kinds: ``dense`` (chains, optional bias/delays/per-channel decays), ``conv``
(conv -> flatten -> dense, random geometry), ``depthwise`` (grouped conv),
``input_neuron`` (an input layer carrying a neuron, graded input), and
``extreme`` (weights and thresholds that drive u into wrap and v into saturation).
``random_graph_case(seed, extreme)`` returns residual graphs (skips, merges, flatten on a branch).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from export.examples import dense_weight
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, conv_output_hw

KINDS = ("dense", "conv", "depthwise", "input_neuron", "extreme")


@dataclass
class Case:
    net: Network
    spikes: np.ndarray
    steps: int
    options: dict[str, Any]


def _neuron(rng: np.random.Generator, channels: int, extreme: bool = False) -> CubaNeuron:
    per_channel = rng.random() < 0.3

    def draw(values: np.ndarray) -> np.ndarray:
        if per_channel:
            return rng.choice(values, size=channels).astype(np.int32)
        return np.int32(rng.choice(values))

    decays = np.array([0, 1, 7, 100, 410, 1024, 2048, 4000, 4095, 4096])
    if extreme:
        vth = np.array([131071, 131072, 100000, 5])
        return CubaNeuron(draw(np.array([0, 0, 1, 4096])), draw(np.array([0, 1, 4096])), np.int32(rng.choice(vth)))
    vth_values = np.array([0, 1, 3, 10, 25, 64, 100, 300, 1000])
    return CubaNeuron(draw(decays), draw(decays), draw(vth_values))


def _bias(rng: np.random.Generator, shape: tuple[int, ...], conv: bool) -> np.ndarray | None:
    r = rng.random()
    if r < 0.35:
        return None
    if conv:
        if r < 0.8:
            return rng.integers(-100, 150, size=shape[0]).astype(np.int32)
        return rng.integers(-100, 150, size=shape).astype(np.int32)
    if r < 0.5:
        return np.int32(rng.integers(-50, 80))
    return rng.integers(-100, 150, size=shape[0]).astype(np.int32)


def _dense(rng: np.random.Generator, name: str, n_in: int, n_out: int, extreme: bool = False) -> Dense:
    mode = rng.random()
    if extreme:
        w = dense_weight(rng, n_out, n_in, -256, 254)
    elif mode < 0.15:  # excitatory only
        w = rng.integers(0, 256, size=(n_out, n_in)).astype(np.int32)
        w[0, 0] = max(int(w.max()), 1)
    elif mode < 0.3:  # small odd weights (netx shifts them up)
        w = dense_weight(rng, n_out, n_in, -3, 3)
    else:
        w = dense_weight(rng, n_out, n_in, -256, 254)
    delay = rng.integers(0, 4, size=(n_out, n_in)).astype(np.int32) if rng.random() < 0.15 else None
    neuron = _neuron(rng, n_out, extreme) if rng.random() < 0.9 else None
    return Dense(name, (n_out,), w, _bias(rng, (n_out,), False), neuron, delay)


def _conv(rng: np.random.Generator, name: str, in_shape: tuple[int, ...], depthwise: bool, extreme: bool) -> Conv:
    groups = in_shape[0] if depthwise else 1
    cout = in_shape[0] * int(rng.integers(1, 3)) if depthwise else int(rng.integers(1, 6))
    while True:
        k = int(rng.integers(1, 4))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
        dilation = (int(rng.integers(1, 3)), 1)
        hw = conv_output_hw(in_shape[1:], (k, k), stride, padding, dilation)  # type: ignore[arg-type]
        if min(hw) >= 1:
            break
    wr = 20000 if extreme else int(rng.choice([3, 30, 200]))
    w = rng.integers(-wr, wr + 1, size=(cout, in_shape[0] // groups, k, k)).astype(np.int32)
    shape = (cout, *hw)
    return Conv(name, shape, w, stride, padding, dilation, groups, _bias(rng, shape, True), _neuron(rng, cout, extreme))


def random_case(seed: int, kind: str) -> Case:
    """A random network of ``kind`` with an input batch and Lava run options."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    graded = False
    if kind == "dense":
        sizes = [int(rng.integers(2, 20)) for _ in range(int(rng.integers(2, 5)))]
        in_shape: tuple[int, ...] = (sizes[0],)
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(_dense(rng, f"dense{i}", a, b))
    else:
        in_shape = (int(rng.integers(1, 4)), int(rng.integers(4, 9)), int(rng.integers(4, 9)))
        shape: tuple[int, ...] = in_shape
        if kind == "input_neuron":
            layers.append(InputLayer("input0", in_shape, _neuron(rng, in_shape[0])))
            graded = True
        for i in range(int(rng.integers(1, 3))):
            conv = _conv(rng, f"conv{len(layers)}", shape, kind == "depthwise", kind == "extreme")
            layers.append(conv)
            shape = conv.shape
        if rng.random() < 0.7:
            n = int(np.prod(shape))
            layers.append(Flatten(f"flatten{len(layers)}", (n,)))
            layers.append(_dense(rng, f"dense{len(layers)}", n, int(rng.integers(2, 8)), kind == "extreme"))
    net = Network(tuple(layers), in_shape)
    t = int(rng.integers(2, 8))
    batch = int(rng.integers(1, 3))
    if graded:
        x = rng.integers(-30, 120, size=(batch, t, *in_shape)).astype(np.int32)
    else:
        x = (rng.random((batch, t, *in_shape)) < rng.uniform(0.1, 0.6)).astype(np.int32)
    steps = t + len(layers) + int(rng.integers(0, 3))
    options: dict[str, Any] = {}
    if rng.random() < 0.35:
        options = {"reset_interval": int(rng.integers(2, 7)), "reset_offset": int(rng.integers(0, 4))}
    return Case(net, x, steps, options)


# ----------------------------------------------------------------------------- residual graphs

#: The largest layer the graph cases build (Lava's Python processes are slow on larger ones).
GRAPH_MAX_NEURONS = 200


def _graph_conv(rng: np.random.Generator, name: str, in_shape: tuple[int, ...], keep_shape: bool, extreme: bool,
                sources: tuple[str, ...]) -> Conv:
    """A conv layer reading ``sources``; ``keep_shape``: output shape equals the input's (a residual
    block's conv: stride 1, 'same' padding), so later layers can merge it with its sources."""
    c_in, h, w = in_shape
    groups = 1
    if keep_shape:
        cout = c_in
        k = int(rng.choice([1, 3]))
        dil = int(rng.integers(1, 3)) if k == 3 else 1
        stride, padding, dilation = (1, 1), ((k - 1) // 2 * dil, (k - 1) // 2 * dil), (dil, dil)
        if c_in > 1 and rng.random() < 0.25:
            groups = c_in  # depthwise
        hw = (h, w)
    else:
        while True:
            cout = int(rng.integers(1, 5))
            k = int(rng.integers(1, 4))
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            padding = (int(rng.integers(0, 2)), int(rng.integers(0, 2)))
            dilation = (int(rng.integers(1, 3)), 1)
            hw = conv_output_hw((h, w), (k, k), stride, padding, dilation)
            if min(hw) >= 2 and cout * hw[0] * hw[1] <= GRAPH_MAX_NEURONS:
                break
    # extreme: weights whose per-process sums leave 24 bits (each synapse process wraps on its own)
    wr = int(rng.choice([1 << 20, 3 << 20, 1 << 22])) if extreme else int(rng.choice([3, 30, 200]))
    weight = rng.integers(-wr, wr + 1, size=(cout, c_in // groups, k, k)).astype(np.int32)
    if extreme and rng.random() < 0.5:
        weight = np.abs(weight)  # all-positive: sums of many active inputs add up past 2**23
    shape = (cout, *hw)
    return Conv(name, shape, weight, stride, padding, dilation, groups, _bias(rng, shape, True),
                _neuron(rng, cout, extreme), sources)


def _graph_dense(rng: np.random.Generator, name: str, n_in: int, n_out: int, extreme: bool,
                 sources: tuple[str, ...]) -> Dense:
    d = _dense(rng, name, n_in, n_out, extreme)
    return Dense(name, d.shape, d.weight, d.bias, d.neuron, d.delay, sources)


def _merge_sources(rng: np.random.Generator, nodes: list[tuple[str, tuple[int, ...]]], primary: int) -> tuple[str, ...]:
    """The primary source (the layer before) plus, often, 1-2 earlier layers of its shape that lie
    1..3 layers back (skip connections); as names, primary first."""
    name, shape = nodes[primary]
    candidates = [n for n, s in nodes[max(0, primary - 4) : primary] if s == shape]
    if not candidates or rng.random() < 0.3:
        return (name,)
    k = int(rng.integers(1, min(2, len(candidates)) + 1))
    extra = [str(c) for c in rng.choice(candidates, size=k, replace=False)]
    return (name, *extra)


def random_graph_case(seed: int, extreme: bool = False) -> Case:
    """A random residual graph (a DAG with skips and merges) with an input batch and run options.

    The network always starts with an input layer (a shape declaration, so later layers may read the
    raw input spikes, or one carrying neurons, fed graded integers), then a conv stage of shape-keeping
    and shape-changing convs, each reading the layer before plus, often, earlier layers of the same
    shape 1..3 layers back (identity skips from the input layer and from conv outputs; merges of 2-3
    sources); then, usually, a flatten and a dense stage with merges of its own, sometimes with a
    second flatten of an earlier conv output on a branch into the first dense merge. ``extreme``
    draws weights and neurons that drive ``u`` into its wrap, ``v`` into saturation and each conv
    synapse process's accumulator past 24 bits.
    """
    rng = np.random.default_rng(seed)
    in_shape: tuple[int, ...] = (int(rng.integers(1, 4)), int(rng.integers(3, 7)), int(rng.integers(3, 7)))
    graded = rng.random() < 0.35
    first = InputLayer("input0", in_shape, _neuron(rng, in_shape[0], extreme) if graded else None)
    layers: list[Layer] = [first]
    nodes: list[tuple[str, tuple[int, ...]]] = [("input0", in_shape)]
    for _ in range(int(rng.integers(2, 6))):
        keep = rng.random() < 0.65
        srcs = _merge_sources(rng, nodes, len(nodes) - 1) if keep else (nodes[-1][0],)
        # a merge needs a synapse of the shape of all its sources: a shape-changing conv reads one source
        conv = _graph_conv(rng, f"conv{len(layers)}", nodes[-1][1], keep, extreme, srcs)
        layers.append(conv)
        nodes.append((conv.name, tuple(conv.shape)))
    if rng.random() < 0.75:
        last_name, last_shape = nodes[-1]
        n = int(np.prod(last_shape))
        layers.append(Flatten(f"flatten{len(layers)}", (n,), (last_name,)))
        dense_srcs: tuple[str, ...] = (layers[-1].name,)
        twins = [name for name, s in nodes[:-1] if s == last_shape]
        if twins and rng.random() < 0.6:  # a flatten on a branch: an earlier conv output into the same dense
            layers.append(Flatten(f"flatten{len(layers)}", (n,), (str(rng.choice(twins)),)))
            dense_srcs = (*dense_srcs, layers[-1].name)
        width = int(rng.integers(2, 12))
        dense = _graph_dense(rng, f"dense{len(layers)}", n, width, extreme, dense_srcs)
        layers.append(dense)
        dnodes: list[tuple[str, tuple[int, ...]]] = [(dense.name, (width,))]
        for _ in range(int(rng.integers(0, 4))):
            out = width if rng.random() < 0.7 else int(rng.integers(2, 12))
            srcs = _merge_sources(rng, dnodes, len(dnodes) - 1)
            dense = _graph_dense(rng, f"dense{len(layers)}", dnodes[-1][1][0], out, extreme, srcs)
            layers.append(dense)
            dnodes.append((dense.name, (out,)))
    net = Network(tuple(layers), in_shape)
    t = int(rng.integers(2, 9))
    batch = int(rng.integers(1, 3))
    if graded:
        hi = 30000 if extreme else 120
        x = rng.integers(-30, hi, size=(batch, t, *in_shape)).astype(np.int32)
    else:
        density = rng.uniform(0.5, 0.95) if extreme else rng.uniform(0.1, 0.6)
        x = (rng.random((batch, t, *in_shape)) < density).astype(np.int32)
    steps = t + net.depth + int(rng.integers(0, 3))
    options: dict[str, Any] = {}
    if rng.random() < 0.3:
        options = {"reset_interval": int(rng.integers(2, 7)), "reset_offset": int(rng.integers(0, 4))}
    return Case(net, x, steps, options)
