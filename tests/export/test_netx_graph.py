"""Residual graphs in a file: chains stay byte-identical netx, graphs get neuromoco's graph layout
(lava-dl refuses it loudly), round trips are exact, and bad graph files give one clear line."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from export.examples import dense_network, kind_examples, small_conv_network, small_residual_network
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Network, networks_equal
from export.netx import read_netx, write_netx
from export.netx_graph import GRAPH_FORMAT, GRAPH_VERSION
from hw_targets.errors import ExportError

NEURON = CubaNeuron(np.int32(0), np.int32(410), np.int32(64))

#: SHA-256 of what the writer made for these chains before graphs existed (h5py 3.16, HDF5 2.0.0):
#: a chain is still written byte for byte as it was. Another HDF5 library lays files out differently.
CHAIN_SHA256 = {
    "small_conv": "e2d5f5f39847bdd3ead79c2506fa8af187286441febcf61e7f7f567340c156d6",
    "kind_input_neuron": "8ab9666d35cc44cbd9e81307367ae04e43d88884d3982733887e4f7b98822702",
    "kind_conv_first_delays": "d72337b3290a8eb86e90633623941ded46a51678ac1a87c58b2060bfcdde34d5",
    "dense": "49dec6dd4e5cee8d1d53fd88e6688a2299d283ea8d1cb6eb7e4914a996452cbf",
}
PINNED_HDF5 = "2.0.0"


def _chains() -> dict[str, Network]:
    first, second = kind_examples()
    return {"small_conv": small_conv_network(0, input_shape=(2, 10, 10), classes=4), "kind_input_neuron": first,
            "kind_conv_first_delays": second, "dense": dense_network(0, (20, 8, 4))}


@pytest.mark.parametrize("name", sorted(CHAIN_SHA256))
def test_chains_are_written_byte_for_byte_as_before(name: str, tmp_path: Path) -> None:
    if h5py.version.hdf5_version != PINNED_HDF5:
        pytest.skip(f"hashes pinned with HDF5 {PINNED_HDF5}; this is HDF5 {h5py.version.hdf5_version}")
    net = _chains()[name]
    assert not net.is_graph
    path = write_netx(net, tmp_path / "chain.net")
    assert hashlib.sha256(path.read_bytes()).hexdigest() == CHAIN_SHA256[name]
    with h5py.File(path) as f:
        assert "graph" not in f and "layer" in f


# ----------------------------------------------------------------------------- layout and round trip


def test_graph_layout(tmp_path: Path) -> None:
    net = small_residual_network(0)
    path = write_netx(net, tmp_path / "g.net")
    with h5py.File(path) as f:
        assert "layer" not in f  # lava-dl finds no chain to load
        assert f["graph/format"][()] == GRAPH_FORMAT.encode()
        assert int(f["graph/version"][()]) == GRAPH_VERSION
        layers = f["graph/layer"]
        assert len(layers) == len(net.layers) + 1  # a shape-only input declaration first, as in netx
        assert layers["0/type"][()].tolist() == [b"input"] and "name" not in layers["0"]
        assert layers["0/shape"][()].tolist() == [2, 16, 16]
        for i, layer in enumerate(net.layers):
            g = layers[str(i + 1)]
            assert g["name"][()].decode() == layer.name
            assert g["type"][()].tolist() == [layer.kind.encode()]
            if layer.sources:  # type: ignore[union-attr]
                assert g["sources"].dtype == np.int64
                assert g["sources"][()].tolist() == [j + 1 for j in net.sources(i)]
            else:
                assert "sources" not in g
        # a merge layer is a netx conv group plus name and sources, nothing else
        assert sorted(layers["4"].keys()) == sorted(["bias", "dilation", "groups", "inChannels", "kernelSize", "name",
                                                     "neuron", "outChannels", "padding", "shape", "sources", "stride",
                                                     "type", "weight"])


def test_graph_round_trip_is_exact(tmp_path: Path) -> None:
    for seed, dense_merge in ((0, True), (1, False)):
        net = small_residual_network(seed, dense_merge=dense_merge)
        back = read_netx(write_netx(net, tmp_path / f"g{seed}.net"))
        assert back.is_graph and networks_equal(back, net)
        assert [layer.name for layer in back.layers] == [layer.name for layer in net.layers]


def _graph_from_input(neuron: CubaNeuron | None) -> Network:
    """An input layer (with or without a neuron) that a later merge reads directly."""
    def conv(name: str, sources: tuple[str, ...] = ()) -> Conv:
        return Conv(name, (2, 6, 6), np.ones((2, 2, 3, 3), np.int32), padding=(1, 1), neuron=NEURON, sources=sources)

    return Network((
        InputLayer("in", (2, 6, 6), neuron),
        conv("c0"),
        conv("c1", ("c0", "in")),
        Flatten("flat", (72,), sources=("c1",)),
        Dense("fc", (3,), np.ones((3, 72), np.int32), neuron=NEURON),
    ), simulation=(("Ts", 1),))


@pytest.mark.parametrize("neuron", [NEURON, None], ids=["input_neuron", "shape_only_input"])
def test_input_layers_in_graphs_round_trip(neuron: CubaNeuron | None, tmp_path: Path) -> None:
    net = _graph_from_input(neuron)
    path = write_netx(net, tmp_path / "g.net")
    with h5py.File(path) as f:
        assert f["graph/layer/0/name"][()] == b"in"  # an IR input layer is no mere declaration
        assert f["graph/layer/2/sources"][()].tolist() == [1, 0]
    back = read_netx(path)
    assert networks_equal(back, net)
    assert read_netx(path, input_shape=(2, 6, 6)).input_shape == (2, 6, 6)
    with pytest.raises(ExportError, match=r"differs from the given input shape"):
        read_netx(path, input_shape=(2, 5, 5))


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from([(1, 8, 8), (2, 12, 10), (3, 16, 16)]),
       widths=st.sampled_from([(2, 3), (4, 4), (3, 6)]), dense_merge=st.booleans())
def test_random_residual_graphs_round_trip(seed: int, size: tuple[int, int, int], widths: tuple[int, int],
                                           dense_merge: bool, tmp_path_factory: pytest.TempPathFactory) -> None:
    net = small_residual_network(seed, size, 5, widths, dense_merge)
    path = write_netx(net, tmp_path_factory.mktemp("g") / "g.net")
    assert networks_equal(read_netx(path), net)


# ----------------------------------------------------------------------------- lava-dl


@pytest.mark.lava
def test_lava_dl_refuses_a_graph_and_loads_a_chain(lava_netx: Any, tmp_path: Path) -> None:
    graph = write_netx(small_residual_network(0), tmp_path / "graph.net")
    with pytest.raises(KeyError, match=r"object 'layer' doesn't exist"):
        lava_netx.hdf5.Network(net_config=str(graph))
    chain = write_netx(small_conv_network(0, input_shape=(2, 10, 10), classes=4), tmp_path / "chain.net")
    loaded = lava_netx.hdf5.Network(net_config=str(chain))
    assert len(loaded.layers) == 4


# ----------------------------------------------------------------------------- bad graph files
# File indices of small_residual_network(0): 0 input declaration, 1 stem, 2 block1_conv1, 3 block1_conv2,
# 4 block2_conv1 (sources [3, 1]), 5 block2_conv2, 6 block2_down ([3, 1]), 7 pool ([5, 6]), 8 flatten,
# 9 fc1, 10 fc2, 11 fc3 ([9, 10]).


def _set(key: str, value: Any) -> Callable[[h5py.File], None]:
    def edit(f: h5py.File) -> None:
        if key in f:
            del f[key]
        f.create_dataset(key, data=value)

    return edit


def _delete(key: str) -> Callable[[h5py.File], None]:
    return lambda f: f.__delitem__(key)


BAD: list[tuple[str, Callable[[h5py.File], None], str]] = [
    ("format", _set("graph/format", np.bytes_(b"neuromoco-grph")), r"'graph/format': unknown format 'neuromoco-grph'"),
    ("format missing", _delete("graph/format"), r"'graph/format': is missing"),
    ("version", _set("graph/version", np.int64(2)), r"'graph/version': is 2; this reader reads version 1"),
    ("version dtype", _set("graph/version", 1.0), r"'graph/version': must be one integer"),
    ("missing layer", _delete("graph/layer/5"), r"'graph/layer': layer groups must be named 0\.\.10"),
    ("gap", lambda f: f["graph/layer"].move("11", "13"), r"'graph/layer': layer groups must be named 0\.\.11"),
    ("extra layer", lambda f: f["graph/layer"].copy("11", "12"), r"layer 12 \(dense\): 'name': 'fc3' is already the name of "
                                                                   r"layer 11"),
    ("negative source", _set("graph/layer/4/sources", np.array([3, -1])), r"layer 4 \(conv\): 'sources': index -1 "
                                                                          r"is out of range 0\.\.3"),
    ("beyond the end", _set("graph/layer/4/sources", np.array([3, 99])), r"layer 4 \(conv\): 'sources': names layer "
                                                                         r"99, which comes later"),
    ("self edge", _set("graph/layer/4/sources", np.array([4, 1])), r"'sources': names the layer itself \(4\)"),
    ("forward edge", _set("graph/layer/4/sources", np.array([5, 1])), r"'sources': names layer 5, which comes later"),
    ("duplicate", _set("graph/layer/4/sources", np.array([3, 3])), r"'sources': names layer 3 twice"),
    ("float sources", _set("graph/layer/4/sources", np.array([3.0, 1.0])), r"'sources': has dtype float64"),
    ("bool sources", _set("graph/layer/4/sources", np.array([True, True])), r"'sources': has dtype"),
    ("2-D sources", _set("graph/layer/4/sources", np.array([[3, 1]])), r"'sources': must be a non-empty 1-D"),
    ("empty sources", _set("graph/layer/4/sources", np.zeros(0, np.int64)), r"'sources': must be a non-empty 1-D"),
    ("string sources", _set("graph/layer/4/sources", "3,1"), r"layer 4 \(conv\): 'sources'"),
    ("declaration as source", _set("graph/layer/4/sources", np.array([3, 0])), r"'sources': names layer 0, the "
                                                                               r"input-shape declaration"),
    ("merge into flatten", _set("graph/layer/8/sources", np.array([7, 6])), r"layer 8 \(flatten\): 'sources': 2 "
                                                                            r"sources into a flatten layer"),
    ("shape mismatch", _set("graph/layer/7/sources", np.array([5, 3])), r"layer 7 \(conv\): 'sources': the merged "
                                                                        r"layers \[5, 3\] have different shapes"),
    ("wrong input shape", _set("graph/layer/5/sources", np.array([3])), r"layer 5 \(conv\).*weight has shape"),
    ("dead end", _set("graph/layer/7/sources", np.array([5])), r"'graph/layer': layer 'block2_down' \(#5, conv\): "
                                                               r"its output reaches no layer"),
    ("both groups", lambda f: f.copy("graph/layer", "layer"), r"'layer': a file holds either a netx chain"),
    ("name missing", _delete("graph/layer/3/name"), r"layer 3 \(conv\): 'name': is missing"),
    ("name repeated", _set("graph/layer/3/name", "stem"), r"layer 3 \(conv\): 'name': 'stem' is already the name of "
                                                          r"layer 1"),
    ("name with newline", _set("graph/layer/3/name", "a\nb"), r"layer 3 \(conv\): 'name': must be a non-empty "
                                                              r"printable string"),
    ("name a number", _set("graph/layer/3/name", 7), r"'name': must be a non-empty printable string"),
    ("first layer sources", _set("graph/layer/0/sources", np.array([0])), r"layer 0 \(input\): 'sources'"),
    ("graph a dataset", lambda f: f.__delitem__("graph") or f.create_dataset("graph", data=1), r"'graph': must be a "
                                                                                               r"group"),
]


@pytest.mark.parametrize("edit,match", [(e, m) for _, e, m in BAD], ids=[n for n, _, _ in BAD])
def test_bad_graph_files_give_one_clear_line(edit: Callable[[h5py.File], None], match: str, tmp_path: Path) -> None:
    path = write_netx(small_residual_network(0), tmp_path / "graph.net")
    with h5py.File(path, "a") as f:
        edit(f)
    with pytest.raises(ExportError, match=match) as info:
        read_netx(path)
    message = str(info.value)
    assert message.startswith(str(path)) and "\n" not in message


def test_a_chain_written_as_a_graph_is_refused(tmp_path: Path) -> None:
    """What a writer that put chains in the graph layout would make: refused, pointing at plain netx."""
    path = write_netx(small_conv_network(0, input_shape=(2, 10, 10), classes=4), tmp_path / "chain.net")
    with h5py.File(path, "a") as f:
        f.create_group("graph")
        f.move("layer", "graph/layer")
        f["graph"].create_dataset("format", data=np.bytes_(GRAPH_FORMAT))
        f["graph"].create_dataset("version", data=np.int64(GRAPH_VERSION))
        for k in range(1, len(f["graph/layer"])):
            f[f"graph/layer/{k}"].create_dataset("name", data=f"layer{k}")
    with pytest.raises(ExportError, match=r"'graph/layer': no layer reads anything but the layer before it: this is a "
                                          r"chain, which is written as plain netx") as info:
        read_netx(path)
    assert "\n" not in str(info.value)


def test_a_name_holding_code_is_only_a_name(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path = write_netx(small_residual_network(0), tmp_path / "graph.net")
    with h5py.File(path, "a") as f:
        _set("graph/layer/3/name", code)(f)
    net = read_netx(path)
    assert net.layers[2].name == code and net.layers[3].sources == (code, "stem")  # type: ignore[union-attr]
    assert not marker.exists()
