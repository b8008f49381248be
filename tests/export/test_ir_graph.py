"""The IR as a directed acyclic graph: sources, merges, what is refused and the derived timing."""

from __future__ import annotations

import json

import numpy as np
import pytest

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Network, from_dict, networks_equal, to_dict
from hw_targets.errors import IRError

NEURON = CubaNeuron(np.int32(0), np.int32(410), np.int32(64))


def _conv(name: str, c_in: int, c_out: int, sources: tuple[str, ...] = (), stride: int = 1) -> Conv:
    w = np.ones((c_out, c_in, 3, 3), np.int32)
    hw = 8 // stride
    return Conv(name, (c_out, hw, hw), w, stride=stride, padding=1, neuron=NEURON, sources=sources)


def sew_block() -> Network:
    """input -> c0 -> (c1 -> c2) + c0 -> c3 -> flatten -> fc: one SEW ADD feeding c3."""
    return Network((
        InputLayer("in", (2, 8, 8), neuron=NEURON),
        _conv("c0", 2, 4),
        _conv("c1", 4, 4),
        _conv("c2", 4, 4),
        _conv("c3", 4, 4, sources=("c2", "c0")),
        Flatten("flat", (256,)),
        Dense("fc", (10,), np.ones((10, 256), np.int32), neuron=NEURON),
    ))


def test_merge_sources_resolved_and_timing() -> None:
    net = sew_block()
    assert net.is_graph
    assert net.sources(0) == ()
    assert net.sources(1) == (0,)
    assert net.sources(4) == (3, 1)
    assert net.consumers(1) == (2, 4)
    # every synapse is one hop; c3 waits for its slower branch (in->c0->c1->c2->c3)
    assert net.hops() == (0, 1, 2, 3, 4, 4, 5)
    assert net.depth == 5


def test_sources_naming_the_layer_before_is_a_chain() -> None:
    net = Network((
        Dense("a", (4,), np.ones((4, 3), np.int32), neuron=NEURON),
        Dense("b", (2,), np.ones((2, 4), np.int32), neuron=NEURON, sources=("a",)),
    ), (3,))
    assert not net.is_graph
    assert net.layers[1].sources == ()
    net.require_chain("anything")  # does not raise
    assert net.depth == 2


def test_require_chain_names_the_merge() -> None:
    with pytest.raises(IRError, match=r"'c3' \(#4, conv\).*sources.*c2.*c0.*the netx writer handles chains only"):
        sew_block().require_chain("the netx writer")


def test_graph_dict_round_trip() -> None:
    net = sew_block()
    d = json.loads(json.dumps(to_dict(net)))
    back = from_dict(d)
    assert networks_equal(net, back)
    assert back.sources(4) == (3, 1)


@pytest.mark.parametrize("sources, message", [
    (("c2", "nope"), r"'c3'.*names 'nope', which is no layer of the network \(a dangling edge\)"),
    (("c2", "c2"), r"'c3'.*names 'c2' twice \(a duplicate edge\)"),
    (("c2", "c3"), r"'c3'.*names 'c3' \(#4\), which does not come before it.*cycle"),
    (("c2", "flat"), r"'c3'.*names 'flat' \(#5\), which does not come before it"),
    ("c2", r"'c3'.*field 'sources' must be a list of layer names"),
])
def test_bad_edges_refused_naming_layer(sources: object, message: str) -> None:
    layers = list(sew_block().layers)
    layers[4] = _conv("c3", 4, 4, sources=sources)  # type: ignore[arg-type]
    with pytest.raises(IRError, match=message):
        Network(tuple(layers))


def test_merge_of_different_shapes_refused() -> None:
    layers = list(sew_block().layers)
    layers[2] = _conv("c1", 4, 4, stride=2)
    layers[3] = Conv("c2", (4, 4, 4), np.ones((4, 4, 3, 3), np.int32), padding=1, neuron=NEURON)
    with pytest.raises(IRError, match=r"'c3'.*merged layers have different shapes"):
        Network(tuple(layers))


def test_merge_into_flatten_refused() -> None:
    layers = list(sew_block().layers)
    layers[4] = _conv("c3", 4, 4)
    layers[5] = Flatten("flat", (256,), sources=("c3", "c0"))
    with pytest.raises(IRError, match=r"'flat'.*only a dense or conv layer may read several layers"):
        Network(tuple(layers))


def test_dead_end_layer_refused() -> None:
    layers = list(sew_block().layers)
    layers[4] = _conv("c3", 4, 4, sources=("c0",))  # c1 -> c2 now reach nothing
    with pytest.raises(IRError, match=r"'c2' \(#3, conv\): its output reaches no layer"):
        Network(tuple(layers))


def test_first_layer_cannot_name_sources() -> None:
    with pytest.raises(IRError, match=r"the first layer reads the network's input"):
        Network((Dense("a", (4,), np.ones((4, 3), np.int32), neuron=NEURON, sources=("a",)),), (3,))


def test_sigma_delta_graph_refused() -> None:
    from export.ir import SigmaDeltaNeuron

    sd = SigmaDeltaNeuron(v_th_mant=np.int32(16), spike_exp=6, state_exp=6, sigma_output=False, activation="relu")
    out = SigmaDeltaNeuron(v_th_mant=np.int32(16), spike_exp=6, state_exp=6, sigma_output=True, activation="none")
    with pytest.raises(IRError, match=r"'c'.*a residual graph; a sigma-delta network handles chains only"):
        Network((
            Dense("a", (4,), np.ones((4, 3), np.int32), neuron=sd),
            Dense("b", (4,), np.ones((4, 4), np.int32), neuron=sd),
            Dense("c", (4,), np.ones((4, 4), np.int32), neuron=out, sources=("b", "a")),
        ), (3,))
