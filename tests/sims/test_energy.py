"""Energy from operation counts: hand-computed cases, linearity, zero activity, input checks."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from export.examples import random_spikes, small_conv_network
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Network
from hw_targets.base import EnergyTable, Sourced
from hw_targets.energy_tables import get_energy_table
from hw_targets.errors import SimulationError
from sims.energy import ann_macs, estimate_energy, neuron_counts

NEURON = CubaNeuron(np.int32(410), np.int32(410), np.int32(64))
LOIHI = get_energy_table("loihi")
CMOS = get_energy_table("cmos45nm")
#: Sums of a handful of float products: relative error stays near 1e-15; 1e-9 leaves room.
RTOL = 1e-9


def two_dense() -> Network:
    return Network((Dense("fc0", (4,), np.ones((4, 3), np.int32), None, NEURON),
                    Dense("fc1", (2,), np.ones((2, 4), np.int32), None, NEURON)), (3,))


def conv_net() -> Network:
    """input (no neuron) -> conv (2->4, 3x3, pad 1, groups 2) -> flatten -> dense 10."""
    conv = Conv("conv1", (4, 5, 5), np.ones((4, 1, 3, 3), np.int32), padding=(1, 1), groups=2, neuron=NEURON)
    return Network((InputLayer("input0", (2, 5, 5)), conv, Flatten("flatten2", (100,)),
                    Dense("dense3", (10,), np.ones((10, 100), np.int32), None, NEURON)), (2, 5, 5))


def test_hand_computed_loihi() -> None:
    spikes = np.array([[10, 2], [20, 4]])  # mean 15, 3
    synops = np.array([[30, 8], [50, 12]])  # mean 40, 10
    report = estimate_energy(two_dense(), spikes, synops, 5, LOIHI)
    fc0, fc1 = report.layers
    # fc0: 23.6*40 + 52*4*5 + 29*15 + 1.7*15 = 944 + 1040 + 435 + 25.5 pJ
    assert math.isclose(fc0.total_uj, 2444.5e-6, rel_tol=RTOL)
    # fc1: 23.6*10 + 52*2*5 + 29*3 + 1.7*3 = 236 + 520 + 87 + 5.1 pJ
    assert math.isclose(fc1.total_uj, 848.1e-6, rel_tol=RTOL)
    assert math.isclose(report.total_uj, 3292.6e-6, rel_tol=RTOL)
    assert (fc0.spikes, fc0.synops, fc0.neuron_updates) == (15.0, 40.0, 20)
    assert report.ann_uj is None and report.samples == 2 and report.steps == 5


def test_hand_computed_cmos45nm_with_ann() -> None:
    report = estimate_energy(two_dense(), np.array([15, 3]), np.array([40, 10]), 5, CMOS)
    assert math.isclose(report.total_uj, 0.9 * 50 * 1e-6, rel_tol=RTOL)  # ACs only
    # ANN: (4*3 + 2*4) MACs per step x 5 steps x 4.6 pJ
    assert [l.ann_macs for l in report.layers] == [60, 40]
    assert report.ann_uj is not None and math.isclose(report.ann_uj, 100 * 4.6e-6, rel_tol=RTOL)


def test_neuron_and_mac_counts() -> None:
    net = conv_net()
    assert neuron_counts(net).tolist() == [0, 100, 0, 10]
    # conv: Cout*H*W * Cin/g*kH*kW = 100 * 9; dense 10 * 100
    assert ann_macs(net).tolist() == [0, 900, 0, 1000]
    with_input_neuron = Network((InputLayer("input0", (2, 5, 5), NEURON), *net.layers[1:]), (2, 5, 5))
    assert neuron_counts(with_input_neuron).tolist() == [50, 100, 0, 10]
    no_neuron = Network((Dense("fc0", (4,), np.ones((4, 3), np.int32)),), (3,))
    assert neuron_counts(no_neuron).tolist() == [4]  # netx's default integrator still updates


def test_flatten_and_bare_input_columns_are_ignored() -> None:
    net = conv_net()
    base = estimate_energy(net, np.array([[0, 7, 0, 1]]), np.array([[0, 30, 0, 12]]), 4, LOIHI)
    copied = estimate_energy(net, np.array([[50, 7, 7, 1]]), np.array([[0, 30, 0, 12]]), 4, LOIHI)
    assert copied.total_uj == base.total_uj
    assert copied.layers[0].spikes == copied.layers[2].spikes == 0.0


def test_zero_activity_costs_only_neuron_updates() -> None:
    net = conv_net()
    zeros = np.zeros((3, 4), np.int64)
    report = estimate_energy(net, zeros, zeros, 7, LOIHI)
    assert report.term_uj("synop_uj") == report.term_uj("spike_uj") == report.term_uj("active_uj") == 0.0
    assert math.isclose(report.total_uj, 52.0 * 110 * 7 * 1e-6, rel_tol=RTOL)
    assert estimate_energy(net, zeros, zeros, 7, CMOS).total_uj == 0.0


counts = hnp.arrays(np.int64, st.tuples(st.integers(1, 4), st.just(4)), elements=st.integers(0, 10**7))


@settings(max_examples=60, deadline=None)
@given(counts, counts, counts, counts, st.integers(1, 50), st.integers(0, 5))
def test_energy_is_linear_in_counts(s1: np.ndarray, s2: np.ndarray, o1: np.ndarray, o2: np.ndarray,
                                    steps: int, k: int) -> None:
    b = min(len(s1), len(s2), len(o1), len(o2))
    s1, s2, o1, o2 = s1[:b], s2[:b], o1[:b], o2[:b]
    net, zeros = conv_net(), np.zeros((b, 4), np.int64)

    def dynamic(s: np.ndarray, o: np.ndarray) -> np.ndarray:
        """Per-layer energy above the zero-activity baseline."""
        e = estimate_energy(net, s, o, steps, LOIHI)
        e0 = estimate_energy(net, zeros, zeros, steps, LOIHI)
        return np.array([a.total_uj - z.total_uj for a, z in zip(e.layers, e0.layers)])

    np.testing.assert_allclose(dynamic(s1 + s2, o1 + o2), dynamic(s1, o1) + dynamic(s2, o2), rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(dynamic(k * s1, k * o1), k * dynamic(s1, o1), rtol=RTOL, atol=1e-12)


def test_user_table_terms() -> None:
    table = EnergyTable("unit", Sourced(1.0, "t"), Sourced(0.0, "t"), Sourced(0.0, "t"), Sourced(0.0, "t"))
    report = estimate_energy(two_dense(), np.array([1, 1]), np.array([2e6, 3e6]), 1, table)
    assert math.isclose(report.total_uj, 5.0, rel_tol=RTOL)  # 5e6 events x 1 pJ


@pytest.mark.parametrize("spikes, synops, steps, pattern", [
    (np.zeros((2, 3)), np.zeros((2, 2)), 5, r"spike_counts has shape \(2, 3\); expected \(B, 2\)"),
    (np.zeros((2, 2)), np.zeros((3, 2)), 5, r"spike_counts has 2 samples but synops has 3"),
    (np.zeros((0, 2)), np.zeros((0, 2)), 5, r"holds no samples"),
    (np.array([[-1, 0]]), np.zeros((1, 2)), 5, r"spike_counts holds negative"),
    (np.zeros((1, 2)), np.array([[np.nan, 0]]), 5, r"synops holds negative or non-finite"),
    (np.zeros((1, 2)), np.zeros((1, 2)), 0, r"steps=0 must be a positive integer"),
    (np.zeros((1, 2)), np.zeros((1, 2)), 2.5, r"steps=2.5"),
])
def test_bad_inputs(spikes: np.ndarray, synops: np.ndarray, steps: int, pattern: str) -> None:
    with pytest.raises(SimulationError, match=pattern):
        estimate_energy(two_dense(), spikes, synops, steps, LOIHI)


def test_report_text_and_dict() -> None:
    report = estimate_energy(conv_net(), np.array([[0, 7, 7, 1]]), np.array([[50, 30, 0, 12]]), 4, CMOS)
    text = report.format_table()
    for name in ("input0", "conv1", "flatten2", "dense3", "ANN MACs", "caveat: general-purpose 45 nm"):
        assert name in text
    d = json.loads(json.dumps(report.to_dict()))
    assert d["unit"] == "uJ per inference"
    assert math.isclose(d["totals"]["total_uj"], report.total_uj, rel_tol=RTOL)
    assert d["totals"]["ann_macs_per_step"] == 1900 and d["totals"]["ann_macs"] == 7600
    assert "Horowitz" in d["sources"]["mac_pj"]
    loihi_text = estimate_energy(conv_net(), np.zeros((1, 4)), np.zeros((1, 4)), 4, LOIHI).format_table()
    assert "ANN" not in loihi_text and "Loihi 2 per-operation energies are not public" in loihi_text


def test_from_a_native_simulation() -> None:
    native = pytest.importorskip("sims.native")
    net = small_conv_network()
    x = random_spikes(0, (2, 12, *net.input_shape), 0.1)
    result = native.simulate(net, x)
    report = estimate_energy(net, result.layer_spike_counts, result.synops, 12, LOIHI)
    assert report.total_uj > report.term_uj("neuron_uj") > 0
    assert report.layers[-1].spikes == result.layer_spike_counts[:, -1].mean()
    assert report.layers[2].spikes == 0.0  # flatten
