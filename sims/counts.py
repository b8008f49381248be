"""Operation counts from simulated spikes: delivered synaptic events per layer.

A spike of presynaptic neuron j at step k is delivered at step k + 1 (+ its
delay) to every nonzero synapse leaving j (reference section 15.2); spikes
whose delivery falls past the last simulated step are not counted.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import numpy.typing as npt

from export.geometry import ConvGeometry
from export.ir import Conv, Dense, Layer, Network
from sims.cache import SIM_CACHE


def conv_fanout(
    layer: Conv, in_shape: tuple[int, ...], rows: tuple[int, int] | None = None
) -> npt.NDArray[np.int64]:
    """Number of nonzero synapses leaving each input neuron of a conv layer, shape (C, H, W).

    ``rows=(lo, hi)`` counts only the synapses into output rows ``lo:hi``.
    """
    if rows is not None and tuple(rows) != (0, layer.shape[1]):
        return _conv_fanout(layer, in_shape, rows)
    cached = SIM_CACHE.fanout.get(layer)
    if cached is not None and cached.shape == tuple(in_shape):
        return cached
    SIM_CACHE.fanout[layer] = fan = _conv_fanout(layer, in_shape, (0, layer.shape[1]))
    return fan


def _conv_fanout(layer: Conv, in_shape: tuple[int, ...], rows: tuple[int, int]) -> npt.NDArray[np.int64]:
    geometry = ConvGeometry.of(layer, in_shape)
    # per_tap[c_in, kh, kw]: nonzero weights from input channel c_in through tap (kh, kw), over its group.
    per_tap = geometry.per_input_channel(np.asarray(layer.weight) != 0)
    return geometry.input_sums(per_tap, rows)


def dense_fanout(layer: Dense) -> list[tuple[int, npt.NDArray[np.int64]]]:
    """Per distinct delay d: (d, number of nonzero synapses with that delay leaving each input)."""
    nonzero = np.asarray(layer.weight) != 0
    if layer.delay is None:
        return [(0, nonzero.sum(axis=0).astype(np.int64))]
    delay = np.asarray(layer.delay)
    return [(int(d), (nonzero & (delay == d)).sum(axis=0).astype(np.int64)) for d in np.unique(delay)]


def synaptic_ops(
    net: Network, input_active: npt.NDArray[np.bool_], spikes: Sequence[npt.NDArray[np.bool_]]
) -> npt.NDArray[np.int64]:
    """Delivered synaptic events into each layer, (B, n_layers).

    Args:
        net: the network.
        input_active: (B, steps, *input_shape) bool, the input spikes.
        spikes: per layer (B, steps, *shape) bool.
    """
    batch, steps = input_active.shape[:2]
    out = np.zeros((batch, len(net.layers)), dtype=np.int64)
    prev = input_active
    for i, layer in enumerate(net.layers):
        count = LAYER_SYNOPS[layer.kind]
        if count is not None:
            out[:, i] = count(layer, prev)
        prev = spikes[i]
    return out


def _dense_synops(layer: Layer, prev: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    assert isinstance(layer, Dense)
    batch, steps = prev.shape[:2]
    flat = prev.reshape(batch, steps, -1)
    total = np.zeros(batch, dtype=np.int64)
    for d, fan in dense_fanout(layer):
        window = max(steps - 1 - d, 0)
        counts = flat[:, :window].sum(axis=1, dtype=np.int64)
        total += counts @ fan
    return total


def _conv_synops(layer: Layer, prev: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
    assert isinstance(layer, Conv)
    batch, steps = prev.shape[:2]
    counts = prev[:, : max(steps - 1, 0)].sum(axis=1, dtype=np.int64).reshape(batch, -1)
    fan = conv_fanout(layer, tuple(prev.shape[2:]))
    result: npt.NDArray[np.int64] = counts @ fan.reshape(-1)
    return result


#: Delivered synaptic events into a layer of each IR kind, ``count(layer, input_spikes) -> (B,)``;
#: None for kinds no synapse delivers into.
LAYER_SYNOPS: dict[str, Callable[[Layer, npt.NDArray[np.bool_]], npt.NDArray[np.int64]] | None] = {
    "input": None,  # input neurons take the input directly
    "dense": _dense_synops,
    "conv": _conv_synops,
    "flatten": None,
}
