"""The IR: validation that names the layer, and lossless dict round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from export.examples import pilotnet_shaped_network, small_conv_network, dense_network
from export.ir import Conv, CubaNeuron, Dense, Flatten, Network, from_dict, networks_equal, to_dict
from hw_targets.errors import IRError

NEURON = CubaNeuron(np.int32(100), np.int32(200), np.int32(50))


def test_dense_weight_shape_mismatch_names_layer() -> None:
    with pytest.raises(IRError, match="fc1.*weight has shape"):
        Network((Dense("fc0", (4,), np.ones((4, 3), np.int32), neuron=NEURON),
                 Dense("fc1", (2,), np.ones((2, 5), np.int32), neuron=NEURON)), (3,))


def test_conv_output_shape_checked() -> None:
    w = np.ones((4, 2, 3, 3), np.int32)
    with pytest.raises(IRError, match="conv0.*does not match the convolution"):
        Network((Conv("conv0", (4, 9, 9), w, neuron=NEURON),), (2, 10, 10))


def test_dense_after_conv_needs_flatten() -> None:
    w = np.ones((4, 2, 3, 3), np.int32)
    with pytest.raises(IRError, match="fc1.*insert a flatten"):
        Network((Conv("conv0", (4, 8, 8), w, neuron=NEURON), Dense("fc1", (2,), np.ones((2, 256), np.int32))), (2, 10, 10))


def test_decay_out_of_range() -> None:
    with pytest.raises(IRError, match="v_decay"):
        CubaNeuron(np.int32(0), np.int32(5000), np.int32(10))


def test_non_integer_weights_refused() -> None:
    with pytest.raises(IRError, match="non-integer"):
        Network((Dense("fc0", (2,), np.full((2, 3), 0.5)),), (3,))


def test_per_channel_length_checked() -> None:
    n = CubaNeuron(np.array([1, 2, 3], np.int32), np.int32(0), np.int32(10))
    with pytest.raises(IRError, match="one per channel"):
        Network((Dense("fc0", (4,), np.ones((4, 3), np.int32), neuron=n),), (3,))


def test_flatten_size_checked() -> None:
    w = np.ones((4, 2, 3, 3), np.int32)
    with pytest.raises(IRError, match="flat.*does not flatten"):
        Network((Conv("conv0", (4, 8, 8), w, neuron=NEURON), Flatten("flat", (10,))), (2, 10, 10))


def test_duplicate_names() -> None:
    with pytest.raises(IRError, match="unique"):
        Network((Dense("a", (3,), np.ones((3, 3), np.int32)), Dense("a", (3,), np.ones((3, 3), np.int32))), (3,))


@pytest.mark.parametrize("make", [small_conv_network, pilotnet_shaped_network, dense_network])
def test_examples_dict_round_trip(make) -> None:  # type: ignore[no-untyped-def]
    net = make(3)
    d = to_dict(net)
    again = from_dict(json.loads(json.dumps(d)))
    assert networks_equal(net, again)
    assert to_dict(again) == d


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1))
def test_random_networks_dict_round_trip(seed: int) -> None:
    net = small_conv_network(seed)
    assert networks_equal(from_dict(to_dict(net)), net)


def test_arrays_are_read_only() -> None:
    net = dense_network(0)
    with pytest.raises(ValueError):
        net.layers[0].weight[0, 0] = 1  # type: ignore[union-attr]
