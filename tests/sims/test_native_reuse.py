"""What the native simulator keeps between calls (plans, the last input bias, a spare spike block)
never changes a result."""

from __future__ import annotations

import copy

import numpy as np

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
