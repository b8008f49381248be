"""What the native simulator keeps between calls (plans, the last input bias, a spare spike block)
never changes a result."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from export.examples import pilotnet_shaped_network
from sims.native import simulate


def test_repeated_calls_with_other_biases_batches_and_kept_results() -> None:
    net = pilotnet_shaped_network(0)
    rng = np.random.default_rng(0)
    shape = tuple(net.input_shape)
    x = rng.integers(0, 3, (3, 6, *shape)).astype(np.int32)
    bias_a = rng.integers(-30, 60, shape)
    bias_b = rng.integers(-30, 60, shape)

    def fresh(inp: np.ndarray, bias: np.ndarray) -> list[np.ndarray]:
        return simulate(copy.deepcopy(net), inp, 9, input_bias=bias, record_state=True).spikes

    first = simulate(net, x, 9, input_bias=bias_a)
    kept = [s.copy() for s in first.spikes]
    for inp, bias in ((x, bias_b), (x[:1], bias_a), (x, bias_a), (x[:2], bias_b)):
        got = simulate(net, inp, 9, input_bias=bias).spikes
        want = fresh(inp, bias)
        assert all(np.array_equal(g, w) for g, w in zip(got, want))
        # The first result, still referenced, was never overwritten by a later call.
        assert all(np.array_equal(a, b) for a, b in zip(first.spikes, kept))


def test_depth_first_and_layer_by_layer_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both batch schedules (a sample through every layer per thread, or each layer over the batch)
    give the same spikes, states and synaptic counts; the size thresholds only pick one."""
    import sims.native as native
    from export.examples import small_conv_network

    net = small_conv_network(0)
    x = np.random.default_rng(1).random((4, 7, *net.input_shape)) < 0.2
    results = []
    schedules: list[bool] = []
    execute = native._execute

    def spy(runs: list, batch: int, depth_first: bool) -> None:  # type: ignore[type-arg]
        schedules.append(depth_first)
        execute(runs, batch, depth_first)

    monkeypatch.setattr(native, "_execute", spy)
    for low, high in ((0, 1 << 40), (1 << 40, 1 << 41)):  # always depth-first, never
        monkeypatch.setattr(native, "_DEPTH_FIRST_BYTES", low)
        monkeypatch.setattr(native, "_DEPTH_FIRST_MAX_BYTES", high)
        results.append(simulate(net, x, 11, record_state=True, reset_interval=5))
    assert schedules == [True, False]
    a, b = results
    assert all(np.array_equal(s, t) for s, t in zip(a.spikes, b.spikes))
    assert np.array_equal(a.synops, b.synops)
    assert all((u is None and w is None) or np.array_equal(u, w) for u, w in zip(a.u, b.u))


@pytest.mark.parametrize("kind", ["Conv", "Dense"])
def test_neuron_constants_outside_the_ir_name_the_layer(kind: str) -> None:
    """The compiled neurons compute in int32 with decay factors in [0, 4096]; a neuron changed in
    place after the IR checked it (the only way past those checks) is refused, naming its layer."""
    from export.examples import small_conv_network
    from export.ir import Conv, Dense
    from hw_targets.errors import SimulationError

    net = small_conv_network(0)
    layer = next(l for l in net.layers if isinstance(l, Conv if kind == "Conv" else Dense) and l.neuron is not None)
    assert layer.neuron is not None
    decay = np.array(layer.neuron.i_decay, copy=True)
    decay[...] = 5000  # above 4096: a negative decay factor
    object.__setattr__(layer.neuron, "i_decay", decay)
    x = np.zeros((1, 4, *net.input_shape), dtype=np.int32)
    with pytest.raises(SimulationError, match=rf"{layer.name}.*neuron constants outside the ranges"):
        simulate(net, x, 6)
