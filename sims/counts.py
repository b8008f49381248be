"""Operation counts from simulated spikes: delivered synaptic events per layer.

A spike of presynaptic neuron j at step k is delivered at step k + 1 (+ its
delay) to every nonzero synapse leaving j (reference section 15.2); spikes
whose delivery falls past the last simulated step are not counted.
"""

from __future__ import annotations

import weakref
from typing import Sequence

import numpy as np
import numpy.typing as npt

from export.geometry import ConvGeometry
from export.ir import Conv, Dense, Network


_FANOUT: "weakref.WeakKeyDictionary[Conv, npt.NDArray[np.int64]]" = weakref.WeakKeyDictionary()


def conv_fanout(
    layer: Conv, in_shape: tuple[int, ...], rows: tuple[int, int] | None = None
) -> npt.NDArray[np.int64]:
    """Number of nonzero synapses leaving each input neuron of a conv layer, shape (C, H, W).

    ``rows=(lo, hi)`` counts only the synapses into output rows ``lo:hi``.
    """
    if rows is not None and tuple(rows) != (0, layer.shape[1]):
        return _conv_fanout(layer, in_shape, rows)
    cached = _FANOUT.get(layer)
    if cached is not None and cached.shape == tuple(in_shape):
        return cached
    _FANOUT[layer] = fan = _conv_fanout(layer, in_shape, (0, layer.shape[1]))
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
        if isinstance(layer, Dense):
            flat = prev.reshape(batch, steps, -1)
            for d, fan in dense_fanout(layer):
                window = max(steps - 1 - d, 0)
                counts = flat[:, :window].sum(axis=1, dtype=np.int64)
                out[:, i] += counts @ fan
        elif isinstance(layer, Conv):
            counts = prev[:, : max(steps - 1, 0)].sum(axis=1, dtype=np.int64).reshape(batch, -1)
            fan = conv_fanout(layer, tuple(prev.shape[2:]))
            out[:, i] = counts @ fan.reshape(-1)
        prev = spikes[i]
    return out
