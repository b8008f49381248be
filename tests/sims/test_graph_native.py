"""The native graph runner on its own: where graphs reduce to chains, and what the extreme cases reach."""

from __future__ import annotations

import numpy as np
import pytest

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Network
from netgen import KINDS, random_case, random_graph_case
from sims.graph import conv_matrix
from sims.native import simulate
from sims.result import SimResult, first_difference

HALF = 1 << 23  # u, v and the conv accumulator are 24-bit: [-2**23, 2**23)


def _assert_same(a: SimResult, b: SimResult) -> None:
    diff = first_difference(a, b, states=True)
    assert diff is None, diff
    assert np.array_equal(a.synops, b.synops)


def test_extreme_graphs_really_wrap_and_saturate() -> None:
    """The extreme variant drives u into its wrap, v into saturation, conv processes past 24 bits on
    their own, and merges where the sum of the wrapped outputs leaves 24 bits (where one accumulator
    per layer would be wrong); native only, from the spikes each merge's sources really sent."""
    found = {"u": False, "v": False, "process": False, "sum": False}
    for seed in range(30):
        case = random_graph_case(seed, extreme=True)
        r = simulate(case.net, case.spikes, case.steps, record_state=True, **case.options)
        for u, v in zip(r.u, r.v):
            if u is not None and v is not None:
                found["u"] |= bool(np.any(np.abs(u.astype(np.int64)) > (1 << 22)))
                found["v"] |= bool(np.any(np.abs(v) == HALF - 1))
        net = case.net
        for i, layer in enumerate(net.layers):
            if not isinstance(layer, Conv) or len(net.sources(i)) < 2:
                continue
            total = 0
            for j in net.sources(i):
                s = r.spikes[j]
                m = conv_matrix(layer, tuple(s.shape[2:]))
                flat = s.reshape(-1, int(np.prod(s.shape[2:]))).astype(np.int64)
                raw = np.asarray((m @ flat.T).T)
                found["process"] |= bool(np.any((raw < -HALF) | (raw >= HALF)))
                total = total + (((raw + HALF) & (2 * HALF - 1)) - HALF)
            found["sum"] |= bool(np.any((total < -HALF) | (total >= HALF)))
    assert all(found.values()), found



def test_silent_second_source_equals_the_chain() -> None:
    """A merge whose second source never spikes computes what the chain without it computes."""
    rng = np.random.default_rng(4)
    n1 = CubaNeuron(np.int32(1024), np.int32(512), np.int32(20))
    never = CubaNeuron(np.int32(0), np.int32(0), np.int32(131072))  # threshold above any v: silent
    w1 = rng.integers(-60, 120, size=(3, 2, 3, 3)).astype(np.int32)
    w2 = rng.integers(-60, 120, size=(3, 3, 3, 3)).astype(np.int32)
    wd = rng.integers(-100, 120, size=(5, 3 * 5 * 5)).astype(np.int32)
    pad = dict(padding=(1, 1))
    graph = Network((
        InputLayer("input0", (2, 5, 5)),
        Conv("c1", (3, 5, 5), w1, neuron=n1, **pad),  # type: ignore[arg-type]
        Conv("silent", (3, 5, 5), w2, neuron=never, **pad),  # type: ignore[arg-type]
        Conv("c2", (3, 5, 5), w2, neuron=n1, sources=("c1", "silent"), **pad),  # type: ignore[arg-type]
        Flatten("flat", (75,)),
        Dense("d", (5,), wd, neuron=n1),
    ))
    chain = Network((
        InputLayer("input0", (2, 5, 5)),
        Conv("c1", (3, 5, 5), w1, neuron=n1, **pad),  # type: ignore[arg-type]
        Conv("c2", (3, 5, 5), w2, neuron=n1, **pad),  # type: ignore[arg-type]
        Flatten("flat", (75,)),
        Dense("d", (5,), wd, neuron=n1),
    ))
    assert graph.is_graph and not chain.is_graph
    x = (rng.random((2, 6, 2, 5, 5)) < 0.4).astype(np.int32)
    g = simulate(graph, x, 10, record_state=True)
    c = simulate(chain, x, 10, record_state=True)
    assert not g.spikes[2].any()
    for gi, ci in ((0, 0), (1, 1), (3, 2), (4, 3), (5, 4)):
        assert np.array_equal(g.spikes[gi], c.spikes[ci]), graph.layers[gi].name
        for a, b in ((g.u[gi], c.u[ci]), (g.v[gi], c.v[ci])):
            assert (a is None and b is None) or np.array_equal(a, b), graph.layers[gi].name  # type: ignore[arg-type]
    assert np.array_equal(g.synops[:, [0, 1, 4, 5]], c.synops[:, [0, 1, 3, 4]])


@pytest.mark.parametrize("kind", KINDS)
def test_graph_runner_equals_chain_runner_on_chains(kind: str) -> None:
    """The graph runner (per-source currents, then the neurons) run on chains equals the chain's
    fused kernels, spikes, u, v and synops, on every chain kind including the extreme one."""
    from sims.graph import simulate_graph
    from sims.native import check_input

    for seed in range(12):
        case = random_case(500 + seed, kind)
        chain = simulate(case.net, case.spikes, case.steps, record_state=True, **case.options)
        x, steps = check_input(case.net, case.spikes, case.steps)
        graph = simulate_graph(case.net, x, steps, case.options.get("reset_interval"),
                               case.options.get("reset_offset", 0), True, None)
        _assert_same(chain, graph)


@pytest.mark.parametrize("extreme", [False, True])
def test_simulate_equals_the_per_source_graph_runner(extreme: bool) -> None:
    """``simulate`` on random graphs equals :func:`sims.graph.simulate_graph` (per-source currents
    summed in an int32 port, then the neurons; checked against Lava in test_graph_native_vs_lava),
    whichever kernels ``simulate`` runs them with; also at batch sizes that change its threading."""
    from sims.graph import simulate_graph
    from sims.native import check_input

    for seed in range(40):
        case = random_graph_case(700 + seed, extreme)
        spikes = case.spikes if seed % 4 else np.concatenate([case.spikes] * 5)  # batch 5-10
        ref_x, steps = check_input(case.net, spikes, case.steps)
        ref = simulate_graph(case.net, ref_x, steps, case.options.get("reset_interval"),
                             case.options.get("reset_offset", 0), True, None)
        _assert_same(simulate(case.net, spikes, case.steps, record_state=True, **case.options), ref)
