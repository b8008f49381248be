"""Graded (sigma-delta) counts and energy: a hand-computed network, PilotNet SDNN, CUBA unchanged."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from export.examples import random_spikes, small_conv_network
from export.ir import Dense, InputLayer, Network, SigmaDeltaNeuron
from hw_targets.base import EnergyTable, Sourced
from hw_targets.energy_tables import get_energy_table
from hw_targets.errors import SimulationError
from sims.counts import graded_counts, payload_bits, synaptic_ops
from sims.energy import estimate_energy
from shared_data import shared_file

LOIHI = get_energy_table("loihi")
#: Sums of a handful of float products: relative error stays near 1e-15; 1e-9 leaves room.
RTOL = 1e-9
#: Distinct powers of ten per term, so every term of the hand computation is visible in the total.
UNIT = EnergyTable("unit", synop_pj=Sourced(1.0, "t"), neuron_update_pj=Sourced(0.0, "t"),
                   active_neuron_extra_pj=Sourced(0.0, "t"), spike_pj=Sourced(1000.0, "t"),
                   graded_synop_pj=Sourced(10.0, "t"), graded_message_pj=Sourced(100.0, "t"))


def tiny() -> Network:
    """input0 (Delta, 2) -> fc1 (SigmaDelta, 3) -> out2 (Sigma readout, 1)."""
    return Network((
        InputLayer("input0", (2,), SigmaDeltaNeuron(np.int32(0))),
        Dense("fc1", (3,), np.array([[1, 0], [2, 3], [0, 4]], np.int32), None, SigmaDeltaNeuron(np.int32(1))),
        Dense("out2", (1,), np.ones((1, 3), np.int32), None, SigmaDeltaNeuron(np.int32(0), sigma_output=True)),
    ), (2,))


def tiny_messages() -> list[np.ndarray]:
    """One sample, 3 steps of hand-written messages (B, steps, N)."""
    return [np.array([[[64, 0], [0, -1], [1, 0]]], np.int32),
            np.array([[[0, 0, 0], [5, 0, -300], [0, 0, 0]]], np.int32),
            np.array([[[0], [0], [7]]], np.int32)]


# By hand (a message of step k is delivered at step k + 1; step 2's are past the run):
# - fc1: step 0 sends 64 from input 0 (2 nonzero synapses: 1, 2) -> 2 events, a MAC call (64 is
#   outside {-1, 0, 1}); step 1 sends -1 from input 1 (synapses 3, 4) -> 2 events, an AC call.
# - out2: step 1 sends 5 and -300 (one synapse each) -> 2 events, a MAC call.
# - payload bits: 64 -> 8, -1 -> 1, 1 -> 2 (11); 5 -> 4, -300 -> 10 (14); 7 -> 4.
SYNOPS, MACS = [0, 4, 2], [0, 2, 2]
MESSAGES, BITS = [3, 2, 1], [11, 14, 4]


def test_payload_bits() -> None:
    values = np.array([0, 1, -1, 2, -2, 127, -128, 128, -129, 2**31 - 1, -(2**31)], np.int64)
    assert payload_bits(values).tolist() == [0, 2, 1, 3, 2, 8, 8, 9, 9, 32, 32]


def test_counts_by_hand() -> None:
    net, messages = tiny(), tiny_messages()
    no_input = np.zeros((1, 3, 2), np.bool_)
    assert synaptic_ops(net, no_input, messages).tolist() == [SYNOPS]
    # one event per nonzero message and synapse: the payload is never summed
    assert synaptic_ops(net, no_input, [m != 0 for m in messages]).tolist() == [SYNOPS]
    counts = graded_counts(net, messages)
    assert counts.messages.tolist() == [MESSAGES]
    assert counts.payload_bits.tolist() == [BITS]
    assert counts.mac_synops.tolist() == [MACS]


def test_report_by_hand() -> None:
    net, messages = tiny(), tiny_messages()
    report = estimate_energy(net, np.array([MESSAGES]), np.array([SYNOPS]), 3, UNIT, messages=messages)
    input0, fc1, out2 = report.layers
    assert [(l.spikes, l.payload_bits, l.synops, l.mac_synops, l.ac_synops) for l in report.layers] == [
        (3.0, 11.0, 0.0, 0.0, 0.0), (2.0, 14.0, 4.0, 2.0, 2.0), (1.0, 4.0, 2.0, 2.0, 0.0)]
    # activation sparsity: zero outputs / all outputs = 1 - messages / (neurons x steps)
    assert [l.activation_sparsity for l in report.layers] == [1 - 3 / 6, 1 - 2 / 9, 1 - 1 / 3]
    assert math.isclose(report.activation_sparsity, 1 - 6 / 18, rel_tol=RTOL)
    # fc1: 2 ACs x 1 pJ + 2 MACs x 10 pJ + 2 graded messages x 100 pJ (not the binary 1000 pJ spike)
    assert math.isclose(fc1.total_uj, (2 + 20 + 200) * 1e-6, rel_tol=RTOL)
    assert math.isclose(out2.total_uj, (20 + 100) * 1e-6, rel_tol=RTOL)
    assert math.isclose(report.total_uj, (22 + 20 + 600) * 1e-6, rel_tol=RTOL)
    # Loihi: 23.6 pJ per event (both kinds), 52 pJ per update, 29 + 1.7 pJ per message
    loihi = estimate_energy(net, np.array([MESSAGES]), np.array([SYNOPS]), 3, LOIHI, messages=messages)
    assert math.isclose(loihi.total_uj, (23.6 * 6 + 52 * 18 + 29 * 6 + 1.7 * 6) * 1e-6, rel_tol=RTOL)

    d = json.loads(json.dumps(report.to_dict()))
    assert d["family"] == "SDNN"
    assert [(r["payload_bits"], r["mac_synops"], r["ac_synops"]) for r in d["layers"]] == [
        (11.0, 0.0, 0.0), (14.0, 2.0, 2.0), (4.0, 2.0, 0.0)]
    totals = d["totals"]
    assert (totals["messages"], totals["payload_bits"], totals["mac_synops"], totals["ac_synops"]) == (6, 29, 4, 2)
    assert (totals["message_bits"], totals["wire_bits"]) == (16, 96)
    assert math.isclose(totals["activation_sparsity"], 2 / 3, rel_tol=RTOL)

    text = loihi.format_table()
    for needle in ("payload bits", "act. sparsity", "MACs", "message uJ", "29.0", "0.6667",
                   "16-bit payload: 96 bits on the wire", "NeuroBench", "arXiv:2304.04640",
                   "graded synop: 23.6 pJ: ASSUMPTION", "graded message: 1.7 pJ: ASSUMPTION",
                   "Loihi 2 per-operation energies are not public"):
        assert needle in text, needle


def test_without_messages_every_graded_input_is_a_mac() -> None:
    report = estimate_energy(tiny(), np.array([MESSAGES]), np.array([SYNOPS]), 3, UNIT)
    assert [l.mac_synops for l in report.layers] == [0.0, 4.0, 2.0]
    assert all(l.payload_bits is None for l in report.layers)
    assert report.to_dict()["totals"]["payload_bits"] is None
    assert math.isclose(report.total_uj, (40 + 20 + 600) * 1e-6, rel_tol=RTOL)


def test_table_without_graded_figures_falls_back_to_binary_ones() -> None:
    table = EnergyTable("plain", Sourced(1.0, "t"), Sourced(0.0, "t"), Sourced(0.0, "t"), Sourced(1000.0, "t"))
    report = estimate_energy(tiny(), np.array([MESSAGES]), np.array([SYNOPS]), 3, table, messages=tiny_messages())
    assert math.isclose(report.total_uj, (6 + 6000) * 1e-6, rel_tol=RTOL)
    assert "not in the table: charged as its binary figure" in dict(report.sources)["graded_synop_pj"]


def test_binary_input_into_the_first_synapse_is_ac() -> None:
    net = Network(tiny().layers[1:], (2,))  # no Delta encoder: netx feeds binary spikes
    messages = [m.copy() for m in tiny_messages()[1:]]
    counts = graded_counts(net, messages)
    assert counts.mac_synops.tolist() == [[0, 2]]
    report = estimate_energy(net, np.array([[2, 1]]), np.array([[7, 2]]), 3, UNIT)
    assert [l.mac_synops for l in report.layers] == [0.0, 2.0]


def test_bad_messages() -> None:
    net = tiny()
    with pytest.raises(SimulationError, match="one per layer"):
        estimate_energy(net, np.array([MESSAGES]), np.array([SYNOPS]), 3, UNIT, messages=tiny_messages()[:2])
    bad = tiny_messages()
    bad[1] = bad[1][:, :2]
    with pytest.raises(SimulationError, match=r"messages of layer 'fc1' \(#1, dense\) have shape \(1, 2, 3\)"):
        estimate_energy(net, np.array([MESSAGES]), np.array([SYNOPS]), 3, UNIT, messages=bad)


def test_cuba_report_is_unchanged() -> None:
    native = pytest.importorskip("sims.native")
    net = small_conv_network()
    result = native.simulate(net, random_spikes(0, (2, 12, *net.input_shape), 0.1))
    base = estimate_energy(net, result.layer_spike_counts, result.synops, 12, LOIHI)
    with_messages = estimate_energy(net, result.layer_spike_counts, result.synops, 12, LOIHI, messages=result.spikes)
    assert with_messages == base and base.family == "CUBA"
    assert "payload" not in base.format_table() and "family" not in base.to_dict()


def test_native_sdnn_counts_agree() -> None:
    native = pytest.importorskip("sims.native")
    net = tiny()
    x = np.random.default_rng(0).integers(-3, 4, size=(2, 6, 2))
    result = native.simulate(net, x, 8)
    assert result.graded
    no_input = np.zeros((2, 8, 2), np.bool_)
    np.testing.assert_array_equal(synaptic_ops(net, no_input, result.spikes), result.synops)
    counts = graded_counts(net, result.spikes)
    np.testing.assert_array_equal(counts.messages, result.layer_spike_counts)
    assert counts.mac_synops.sum() > 0 and np.all(counts.mac_synops <= result.synops)


def test_pilotnet_sdnn_report() -> None:
    native = pytest.importorskip("sims.native")
    from export.netx import read_netx

    folder = shared_file("lava_netx", "pilotnet_sdnn")
    net = read_netx(folder / "network.net")
    x = np.load(folder / "input.npy")[..., 0].transpose(2, 1, 0)  # (C, H, W)
    result = native.simulate(net, np.repeat(x[None], 9, axis=0), 9)
    report = estimate_energy(net, result.layer_spike_counts, result.synops, 9, LOIHI, messages=result.spikes)
    totals = report.to_dict()["totals"]
    # every event carries a graded payload: all MACs
    assert totals["mac_synops"] == totals["ac_synops"] + result.synops.sum() == 6_591_574
    neuron_layers = [i for i, layer in enumerate(net.layers) if layer.has_neurons]  # not flatten5's copy
    assert totals["messages"] == result.layer_spike_counts[:, neuron_layers].sum() == 56_182
    assert totals["payload_bits"] == 579_948 and 0.85 < report.activation_sparsity < 0.86
    assert report.layers[5].payload_bits is None  # flatten


def test_validation_summary_names_sparsity_for_sdnn_only() -> None:
    from types import SimpleNamespace

    from sims.report import summary_rows

    sdnn = estimate_energy(tiny(), np.array([MESSAGES]), np.array([SYNOPS]), 3, LOIHI, messages=tiny_messages())
    cuba = estimate_energy(Network((Dense("fc0", (2,), np.ones((2, 3), np.int32)),), (3,)),
                           np.array([[1]]), np.array([[2]]), 3, LOIHI)

    def rows(energy: object) -> dict[str, object]:
        fake = SimpleNamespace(accuracy={}, agreement_float_fixed=1.0, qat_equals_native=True,
                               lava_samples=0, lava_equals_native=None, energy={"loihi": energy})
        return dict(summary_rows(fake))  # type: ignore[arg-type]

    assert rows(sdnn)["activation sparsity (NeuroBench)"] == "0.6667"
    assert rows(sdnn)["graded messages / inference"] == "6.0"
    assert "activation sparsity (NeuroBench)" not in rows(cuba)
