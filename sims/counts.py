"""Operation counts from simulated spikes: delivered synaptic events per layer.

A spike of presynaptic neuron j at step k is delivered at step k + 1 (+ its
delay) to every nonzero synapse leaving j (reference section 15.2); spikes
whose delivery falls past the last simulated step are not counted.

Graded messages (sigma-delta networks, int32, 0 = no message) count the same
way: one event per nonzero message and nonzero synapse, whatever the payload.
That is NeuroBench's *effective* synaptic operation (nonzero weight x nonzero
input; reference section 16). :func:`graded_counts` adds what graded messages
carry: their payload bits, and which of the events are effective MACs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

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


def _active(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Where a message is sent: bool spikes as they are, graded payloads where nonzero (never summed)."""
    return values if values.dtype == np.bool_ else np.asarray(values != 0)


def synaptic_ops(
    net: Network, input_active: npt.NDArray[Any], spikes: Sequence[npt.NDArray[Any]]
) -> npt.NDArray[np.int64]:
    """Delivered synaptic events into each layer, (B, n_layers); a merge layer counts every source's.

    Args:
        net: the network.
        input_active: (B, steps, *input_shape) bool (or integer: nonzero = a spike), the input spikes.
        spikes: per layer (B, steps, *shape): bool spikes, or int32 graded messages, each nonzero
            message one event per nonzero synapse (the payload is not summed).
    """
    batch, steps = input_active.shape[:2]
    out = np.zeros((batch, len(net.layers)), dtype=np.int64)
    for i, layer in enumerate(net.layers):
        count = LAYER_SYNOPS[layer.kind]
        if count is None:
            continue
        # A merge is one synapse per source: each source's events are delivered through its own copy.
        for j in net.sources(i) or (None,):
            out[:, i] += count(layer, _active(input_active if j is None else spikes[j]))
    return out


def payload_bits(values: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    """Bits each value needs as a signed two's-complement payload, elementwise; 0 for 0 (no message).

    ``v > 0`` needs ``bit_length(v) + 1`` bits, ``v < 0`` needs ``bit_length(-v - 1) + 1``:
    1 -> 2, -1 -> 1, 127 -> 8, -128 -> 8, 128 -> 9.
    """
    v = np.asarray(values, dtype=np.int64)
    magnitude = np.where(v < 0, -v - 1, v)  # int64: -(-2**31) - 1 does not overflow
    # frexp gives m = f * 2**e with f in [0.5, 1): e is bit_length(m), exact below 2**53; frexp(0) = (0, 0).
    bits = np.frexp(magnitude.astype(np.float64))[1].astype(np.int64) + 1
    result: npt.NDArray[np.int64] = np.where(v == 0, 0, bits)
    return result


@dataclass(frozen=True)
class GradedCounts:
    """What the messages of a simulation carry, per sample and layer, all (B, n_layers) int64.

    Attributes:
        messages: nonzero outputs of each layer (the spike counts; 0 at flatten and neuron-less layers).
        payload_bits: sum over those messages of :func:`payload_bits` of each value (binary spikes: 1).
        mac_synops: the delivered synaptic events into each layer that are effective MACs in
            NeuroBench's sense: their source step carried a value outside {-1, 0, 1}. The rest
            of :func:`synaptic_ops` are effective ACs.
    """

    messages: npt.NDArray[np.int64]
    payload_bits: npt.NDArray[np.int64]
    mac_synops: npt.NDArray[np.int64]


def graded_counts(net: Network, messages: Sequence[npt.NDArray[Any]]) -> GradedCounts:
    """Messages, payload bits and effective MACs of one simulation (``SimResult.spikes``).

    NeuroBench (reference section 16) counts a layer call as MACs when any input value is outside
    {-1, 0, 1}, else as ACs. Here a call is one sample's input to one synapse at one step (NeuroBench
    with batch size 1): the events delivered from the source layer's messages of step k are MACs if
    any message of that sample at step k is outside {-1, 0, 1}. The external input into a first
    synapse is binary (netx's ``input_message_bits = 0``), so its events are ACs.

    Args:
        net: the simulated network.
        messages: per layer (B, steps, *shape), bool spikes or int32 graded messages.
    """
    batch, steps = messages[0].shape[:2]
    n_layers = len(net.layers)
    counts = np.zeros((batch, n_layers), np.int64)
    bits = np.zeros((batch, n_layers), np.int64)
    graded_only: list[npt.NDArray[Any]] = []
    for i, (layer, m) in enumerate(zip(net.layers, messages)):
        flat = m.reshape(batch, steps, -1)
        if layer.has_neurons:
            counts[:, i] = np.count_nonzero(flat, axis=(1, 2))
            bits[:, i] = counts[:, i] if m.dtype == np.bool_ else payload_bits(flat).sum(axis=(1, 2))
        if m.dtype == np.bool_:
            graded_only.append(np.zeros(m.shape, np.bool_))
            continue
        call_is_mac = np.any((flat > 1) | (flat < -1), axis=2)  # (B, steps): NeuroBench's MAC calls
        graded_only.append(np.where(call_is_mac[:, :, None], flat, 0).reshape(m.shape))
    no_input = np.zeros((batch, steps, *net.input_shape), np.bool_)
    return GradedCounts(counts, bits, synaptic_ops(net, no_input, graded_only))


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


#: Delivered synaptic events into a layer of each IR kind, ``count(layer, input_spikes) -> (B,)``
#: (``input_spikes`` bool: where a spike or a nonzero graded message was sent); None for kinds no
#: synapse delivers into.
LAYER_SYNOPS: dict[str, Callable[[Layer, npt.NDArray[np.bool_]], npt.NDArray[np.int64]] | None] = {
    "input": None,  # input neurons take the input directly
    "dense": _dense_synops,
    "conv": _conv_synops,
    "flatten": None,
}
