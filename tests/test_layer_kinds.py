"""Every IR layer kind has an entry in every backend's table, and every kind runs through them.

Adding a kind is one class in ``export/ir.py`` (registered in ``LAYER_KINDS``) plus one
entry per table below; this test names the table that lacks one.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from export.examples import kind_examples
from export.ir import LAYER_KINDS, from_dict, networks_equal, to_dict

#: (module, table): the per-kind tables of the backends. An entry may be None where the kind
#: has nothing to do there (a flatten layer stores no weights); it may not be missing.
BACKEND_TABLES = [
    ("export.netx_read", "LAYER_READERS"),
    ("export.netx_write", "LAYER_WRITERS"),
    ("export.nir", "NIR_NODES"),
    ("export.resources", "LAYER_COUNTS"),
    ("export.resources", "LAYER_INPUT_AXONS"),
    ("export.check", "WEIGHT_MANTISSA"),
    ("sims.native", "LAYER_RUNNERS"),
    ("sims.counts", "LAYER_SYNOPS"),
    ("sims.energy", "ANN_MACS"),
    ("sims.lava", "LAVA_BLOCK"),
]


@pytest.mark.parametrize("module, table", BACKEND_TABLES, ids=[f"{m}.{t}" for m, t in BACKEND_TABLES])
def test_every_kind_has_an_entry(module: str, table: str) -> None:
    if module == "sims.lava":
        pytest.importorskip("lava.magma.core.run_configs", reason="Lava is not installed")
    entries = getattr(importlib.import_module(module), table)
    missing = sorted(set(LAYER_KINDS) - set(entries))
    assert not missing, f"{module}.{table} has no entry for layer kind(s) {missing}"
    unknown = sorted(set(entries) - set(LAYER_KINDS))
    assert not unknown, f"{module}.{table} has entries for kinds the IR does not declare: {unknown}"


def test_every_kind_has_an_example() -> None:
    nets = kind_examples()
    covered = {layer.kind for net in nets for layer in net.layers}
    assert covered == set(LAYER_KINDS), f"export.examples.kind_examples misses {set(LAYER_KINDS) - covered}"


@pytest.mark.parametrize("index", range(len(kind_examples())))
def test_every_kind_through_every_backend(index: int, tmp_path: object) -> None:
    """Each example goes through the dict serializer, netx, NIR, the target rules, resources,
    the native simulator, synaptic-op counts and energy."""
    from pathlib import Path

    from export.check import check_network
    from export.resources import estimate_resources
    from export.netx import read_netx, write_netx
    from hw_targets.base import get_target
    from sims.energy import ann_macs, neuron_counts
    from sims.native import simulate

    net = kind_examples()[index]
    assert networks_equal(from_dict(to_dict(net)), net)
    path = write_netx(net, Path(str(tmp_path)) / "net.net")
    back = read_netx(path)
    assert [layer.kind for layer in back.layers if layer.kind != "input" or layer.has_neurons] == [
        layer.kind for layer in net.layers if layer.kind != "input" or layer.has_neurons
    ]
    check_network(net, get_target("loihi2"))
    assert len(estimate_resources(net, get_target("loihi2")).layers) == len(net.layers)
    rng = np.random.default_rng(index)
    x = rng.random((2, 4, *net.input_shape)) < 0.3
    res = simulate(net, x)
    assert res.synops.shape == (2, len(net.layers))
    assert neuron_counts(net).shape == ann_macs(net).shape == (len(net.layers),)
    pytest.importorskip("nir", reason="nir is not installed")
    from export.nir import to_nir
    from hw_targets.errors import ExportError

    delayed = [layer.name for layer in net.layers if getattr(layer, "delay", None) is not None]
    if delayed:  # NIR has no synaptic delays: refused, naming the layer
        with pytest.raises(ExportError, match=f"'{delayed[0]}'.*per-synapse delays"):
            to_nir(net)
    else:
        to_nir(net)
