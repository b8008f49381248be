"""Target limit rules (every rule fails and passes once) and the resource estimate."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from export.check import (
    RULES,
    check_network,
    check_states,
    conv_weight_exponent,
    find_state_violations,
    find_violations,
)
from export.resources import ResourceTable, conv_fan_in, conv_input_axons, estimate_resources, neuron_slots
from export.examples import dense_network, pilotnet_shaped_network, small_conv_network
from export.ir import (
    Conv,
    CubaNeuron,
    Dense,
    Flatten,
    InputLayer,
    Layer,
    Network,
    SigmaDeltaNeuron,
    conv_output_hw,
)
from hw_targets import constants as C
from hw_targets.base import Sourced, Target, get_target
from hw_targets.errors import TargetLimitError
from shared_data import LAVA_NETX, shared_file

LOIHI2 = get_target("loihi2")
NEURON = CubaNeuron(np.int32(410), np.int32(410), np.int32(64))


def _limits(target: Target, **changes: Sourced) -> Target:
    return dataclasses.replace(target, limits=dataclasses.replace(target.limits, **changes))


def _formats(target: Target, **changes: int) -> Target:
    return dataclasses.replace(target, formats=dataclasses.replace(target.formats, **changes))


def _dense(name: str, weight: np.ndarray, bias: np.ndarray | None = None,
           neuron: CubaNeuron | None = NEURON) -> Dense:
    return Dense(name, (weight.shape[0],), weight.astype(np.int32), bias, neuron)


def _conv(name: str, in_shape: tuple[int, ...], weight: np.ndarray, stride: int = 1, padding: int = 0,
          dilation: int = 1, groups: int = 1, neuron: CubaNeuron = NEURON) -> Conv:
    hw = conv_output_hw(in_shape[1:], weight.shape[2:], (stride, stride), (padding, padding), (dilation, dilation))  # type: ignore[arg-type]
    return Conv(name, (weight.shape[0], *hw), weight.astype(np.int32), (stride, stride), (padding, padding),
                (dilation, dilation), groups, None, neuron)


def good_network() -> Network:
    """conv -> flatten -> dense -> dense that passes every rule of loihi2."""
    rng = np.random.default_rng(3)
    conv_w = rng.integers(-127, 128, size=(4, 2, 3, 3)) * 4  # mantissa x 2^2
    c = _conv("conv0", (2, 6, 6), conv_w)
    n = int(np.prod(c.shape))
    return Network((
        c, Flatten("flatten1", (n,)),
        _dense("dense2", rng.integers(-256, 255, size=(8, n)), np.full(8, -4096, np.int32)),
        _dense("dense3", rng.integers(0, 256, size=(3, 8)), np.full(3, 4095, np.int32)),
    ), (2, 6, 6))


def _one_dense(weight: np.ndarray, **kw: object) -> Network:
    return Network((_dense("fc0", weight, **kw),), (weight.shape[1],))  # type: ignore[arg-type]


def _one_conv(weight: np.ndarray, neuron: CubaNeuron = NEURON) -> Network:
    return Network((_conv("conv0", (weight.shape[1], 5, 5), weight, neuron=neuron),), (weight.shape[1], 5, 5))


def sdnn_network(vth: int = 8, spike_exp: int = 6, bias: int = 3) -> Network:
    """input0 (Delta) -> conv1 (SigmaDelta) -> flatten2 -> dense3 (SigmaDelta) -> out4 (Sigma readout)."""
    rng = np.random.default_rng(5)

    def sd(v: int, sigma_output: bool = False) -> SigmaDeltaNeuron:
        return SigmaDeltaNeuron(np.int32(v), spike_exp=spike_exp, sigma_output=sigma_output)

    conv = Conv("conv1", (3, 4, 4), rng.integers(-100, 100, size=(3, 2, 3, 3)).astype(np.int32),
                bias=np.full(3, bias, np.int32), neuron=sd(vth))
    return Network((
        InputLayer("input0", (2, 6, 6), sd(0)), conv, Flatten("flatten2", (48,)),
        Dense("dense3", (5,), rng.integers(-100, 100, size=(5, 48)).astype(np.int32), None, sd(vth)),
        Dense("out4", (1,), np.ones((1, 5), np.int32), None, sd(0, sigma_output=True)),
    ), (2, 6, 6))


# For each rule: (network, target, pattern its violation must match). A rule without a case fails the test below.
FAILING: dict[str, list[tuple[Callable[[], Network], Target, str]]] = {
    "layer_type": [(good_network, dataclasses.replace(LOIHI2, layer_types=("input", "dense", "flatten")),
                    r"layer kind 'conv' is not supported by target loihi2")],
    "dense_weight_sign": [
        (lambda: _one_dense(np.array([[-1, -2], [0, -3]])), LOIHI2, r"largest weight is 0 <= 0"),
        (lambda: _one_dense(np.zeros((2, 2))), LOIHI2, r"all weights are 0"),
    ],
    "weight_mantissa": [
        (lambda: _one_dense(np.array([[300, -1]])), LOIHI2, r"weight 300 does not fit the 8-bit mantissa"),
        (lambda: _one_dense(np.array([[-257, 5]])), LOIHI2, r"weight -257 does not fit.*\[-256, 254\]"),
        (lambda: _one_dense(np.array([[256, 5]])), LOIHI2, r"weight 256 does not fit.*excitatory.*\[0, 255\]"),
        (lambda: _one_conv(np.array([300, 1] + [0] * 16).reshape(1, 2, 3, 3)), LOIHI2,
         r"weight 300 needs a per-layer exponent >= 2 .* weight 1 is not a multiple of 2\^2"),
        (lambda: _one_conv(np.array([1 << 15] + [0] * 17).reshape(1, 2, 3, 3)), LOIHI2,
         r"weight 32768 does not fit the 8-bit signed mantissa x 2\^e \(e <= 7\)"),
    ],
    "decay_range": [(lambda: _one_dense(np.ones((2, 3))), _formats(LOIHI2, decay_bits=8),
                     r"i_decay 410 does not fit the 8-bit decay of target loihi2 \(0..256\)")],
    "threshold_mantissa": [(lambda: _one_dense(np.ones((2, 3)), neuron=CubaNeuron(0, 0, 1 << 17)), LOIHI2,
                            r"v_th_mant 131072 does not fit the 17-bit threshold mantissa .*\(0..131071\)")],
    "bias_mantissa": [
        (lambda: _one_dense(np.ones((2, 3)), bias=np.array([5000, 0], np.int32)), LOIHI2,
         r"bias 5000 does not fit the 13-bit signed bias mantissa of target loihi2 \(-4096..4095\)"),
        (lambda: _one_dense(np.ones((2, 3)), bias=np.array([-4097, 0], np.int32)), LOIHI2, r"bias -4097"),
    ],
    "graded_spikes": [(sdnn_network, get_target("loihi1"),
                       r"layer 'input0' \(#0, input\): sigma-delta neurons send graded spikes, which target "
                       r"loihi1 does not have")],
    "message_bits": [(sdnn_network, _formats(LOIHI2, max_message_bits=8),
                      r"'input0'.*16-bit payloads, above the 8-bit payload of target loihi2")],
    "message_exponents": [(sdnn_network, _formats(LOIHI2, message_exp_max=5),
                           r"'input0'.*spike_exp 6 and state_exp 6 outside 0..5")],
    "sdnn_threshold": [(lambda: sdnn_network(vth=2048), LOIHI2,
                        r"layer 'conv1' \(#1, conv\): v_th_mant 2048 << \(spike_exp \+ state_exp = 12\) = 8388608 "
                        r"does not fit the 24-bit signed state of target loihi2 \(max 8388607\); lower v_th_mant "
                        r"to at most 2047")],
    "sdnn_bias": [(lambda: sdnn_network(bias=2048), LOIHI2,
                   r"'conv1'.*bias 2048 << \(spike_exp \+ state_exp = 12\) = 8388608 does not fit the 24-bit"),
                  (lambda: sdnn_network(bias=-2049), LOIHI2, r"'conv1'.*bias -2049 .*-2048..2047")],
    "neuron_fan_in": [(lambda: _one_dense(np.ones((2, 5000))), LOIHI2,
                       r"fan-in 5000, above the 4096 input axons per core of target loihi2")],
    "neuron_synaptic_memory": [(lambda: _one_dense(np.ones((2, 100))),
                                _limits(LOIHI2, synaptic_memory_bytes_per_core=Sourced(64, "test")),
                                r"synapses need 100 bytes, above the 64 bytes")],
}


def test_every_rule_has_failing_cases() -> None:
    assert sorted(FAILING) == sorted(rule.__name__ for rule in RULES)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_passes_good_networks(rule: Callable[[Network, Target], list]) -> None:
    for make in (good_network, small_conv_network, pilotnet_shaped_network, dense_network, sdnn_network):
        assert rule(make(), LOIHI2) == []


@pytest.mark.parametrize("rule", RULES, ids=lambda r: r.__name__)
def test_rule_fails_with_name_layer_value_and_fix(rule: Callable[[Network, Target], list]) -> None:
    for make, target, pattern in FAILING[rule.__name__]:
        net = make()
        violations = rule(net, target)
        assert violations, f"{rule.__name__} did not fire on {pattern!r}"
        v = violations[0]
        assert v.rule == rule.__name__
        assert v.layer == net.describe(v.layer_index)
        assert str(v).startswith(f"rule {rule.__name__}: {v.layer}: ")
        assert "; " in v.message, "the message says what to do after the value and limit"
        with pytest.raises(TargetLimitError, match=f"rule {rule.__name__}: .*{pattern}"):
            check_network(net, target)


def test_message_as_documented() -> None:
    rng = np.random.default_rng(0)
    c0 = _conv("conv1", (2, 8, 8), rng.integers(-20, 20, size=(6, 2, 3, 3)))
    n = int(np.prod(c0.shape))
    fc = np.ones((4, 5), np.int32)
    fc[1, 2], fc[0, 0] = 300, -3
    net = Network((InputLayer("input0", (2, 8, 8)), c0, Flatten("flatten2", (n,)),
                   _dense("dense3", np.ones((5, n))), _dense("dense4", fc)), (2, 8, 8))
    with pytest.raises(TargetLimitError) as info:
        check_network(net, LOIHI2)
    assert str(info.value).startswith(
        "rule weight_mantissa: layer 'dense4' (#4, dense): weight 300 does not fit the 8-bit mantissa of target loihi2")
    assert str(info.value).endswith("; re-run QAT with weight_bits=8")


def test_several_violations_are_counted_in_one_line() -> None:
    net = _one_dense(np.array([[300, -1]]), bias=np.array([9000], np.int32))
    with pytest.raises(TargetLimitError, match=r"^rule weight_mantissa: .*\(and 1 more: bias_mantissa at 'fc0'\)$"):
        check_network(net, LOIHI2)
    assert [v.rule for v in find_violations(net, LOIHI2)] == ["weight_mantissa", "bias_mantissa"]


def test_unsourced_limits_are_skipped() -> None:
    net = _one_dense(np.ones((2, 5000)))
    assert find_violations(net, _limits(LOIHI2, fan_in_axons_per_core=Sourced(4096, ""))) == []
    assert find_violations(net, _limits(LOIHI2, fan_in_axons_per_core=Sourced(0, "unknown"))) == []


def test_range_edges_pass() -> None:
    check_network(_one_dense(np.array([[-256, 254]]), bias=np.array([-4096], np.int32)), LOIHI2)
    check_network(_one_dense(np.array([[0, 255]]), neuron=CubaNeuron(4096, 4096, 131071)), LOIHI2)
    check_network(_one_conv(np.array([-128 * 128, 127 * 128] + [0] * 16).reshape(1, 2, 3, 3)), LOIHI2)


def test_conv_weight_exponent() -> None:
    assert conv_weight_exponent(np.array([127, -128]), 8, -8, 7) == 0
    assert conv_weight_exponent(np.array([254, -256]), 8, -8, 7) == 1
    assert conv_weight_exponent(np.array([255]), 8, -8, 7) is None
    assert conv_weight_exponent(np.array([127 << 7]), 8, -8, 7) == 7
    assert conv_weight_exponent(np.array([128 << 7]), 8, -8, 7) is None


def test_real_netx_files_fit_both_loihi_targets() -> None:
    from export.netx import read_netx

    shared_file("lava_netx")
    # Sigma-delta (graded spike) files need graded spikes, which loihi1 lacks:
    # test_pilotnet_sdnn_fits_loihi2_and_loihi1_refuses_it covers them.
    files = sorted(p for p in LAVA_NETX.glob("*/*.net") if not p.parent.name.endswith("_sdnn"))
    assert files
    for path in files:
        net = read_netx(path)
        for name in ("loihi2", "loihi1"):
            check_network(net, get_target(name))


def test_pilotnet_sdnn_fits_loihi2_and_loihi1_refuses_it() -> None:
    from export.netx import read_netx

    net = read_netx(shared_file("lava_netx", "pilotnet_sdnn", "network.net"))
    assert net.family == "SDNN"
    check_network(net, LOIHI2)
    with pytest.raises(TargetLimitError, match=r"^rule graded_spikes: layer 'input0' \(#0, input\): .*loihi1"):
        check_network(net, get_target("loihi1"))
    # one line naming the first sigma-delta layer, not one per layer
    assert [v.rule for v in find_violations(net, get_target("loihi1"))] == ["graded_spikes"]


def test_threshold_too_large_for_24_bits_is_refused_naming_the_layer() -> None:
    check_network(sdnn_network(vth=2047), LOIHI2)  # 2047 << 12 = 2**23 - 4096 fits
    with pytest.raises(TargetLimitError, match=r"^rule sdnn_threshold: layer 'conv1' \(#1, conv\): v_th_mant 2048 .*"
                                               r"\(and 1 more: sdnn_threshold at 'dense3'\)$"):
        check_network(sdnn_network(vth=2048), LOIHI2)
    # a smaller spike_exp makes room: 2048 << 11 fits
    check_network(sdnn_network(vth=2048, spike_exp=5), LOIHI2)


def test_cuba_rules_skip_sigma_delta_layers() -> None:
    # the LIF registers (bias mantissa, decays, threshold mantissa) do not hold sigma-delta parameters:
    # a bias of 1000 fits the 24-bit state at E = 6 (1000 << 6), whatever the bias mantissa
    net = sdnn_network(bias=1000, spike_exp=0)
    check_network(net, LOIHI2)
    assert find_violations(net, _formats(LOIHI2, bias_mant_bits=4, decay_bits=1, vth_mant_bits=1)) == []


def _states(net: Network, fill: int = 0) -> tuple[list[np.ndarray | None], list[np.ndarray | None], list[np.ndarray]]:
    shapes = [(1, 3, *layer.out_shape) for layer in net.layers]
    sigma: list[np.ndarray | None] = [np.full(sh, fill, np.int32) if l.has_neurons and i else None
                                      for i, (l, sh) in enumerate(zip(net.layers, shapes))]
    act: list[np.ndarray | None] = [np.full(sh, fill, np.int32) if l.has_neurons else None
                                    for l, sh in zip(net.layers, shapes)]
    return sigma, act, [np.zeros(sh, np.int32) for sh in shapes]


def test_state_ranges_of_a_run() -> None:
    net = sdnn_network()
    sigma, act, messages = _states(net)
    assert find_state_violations(net, LOIHI2, sigma, act, messages) == []
    edge = np.iinfo(np.int32)
    sigma[3][0, 2, 4] = (1 << 23) - 1  # type: ignore[index]  # the largest 24-bit state
    messages[1][0, 1, 0, 0, 0] = -(1 << 15)  # the smallest 16-bit message
    messages[4][0, 2, 0] = edge.max  # the readout's messages go to the host: not checked
    check_states(net, LOIHI2, sigma, act, messages)
    sigma[3][0, 2, 4] = 1 << 23  # type: ignore[index]
    messages[3][0, 1, 2] = 40000
    found = find_state_violations(net, LOIHI2, sigma, act, messages)
    assert [(v.rule, v.layer_index) for v in found] == [("sdnn_state_range", 3), ("message_range", 3)]
    assert "sigma reached 8388608 at (sample, step, neuron) (0, 2, 4)" in found[0].message
    assert "SigmaDelta message 40000 at (sample, step, neuron) (0, 1, 2) does not fit netx's 16-bit" in found[1].message
    with pytest.raises(TargetLimitError, match=r"^rule sdnn_state_range: layer 'dense3' \(#3, dense\): .*"
                                               r"\(and 1 more: message_range at 'dense3'\)$"):
        check_states(net, LOIHI2, sigma, act, messages)
    # CUBA states wrap and saturate as the chip's do: nothing to check
    cuba = good_network()
    assert find_state_violations(cuba, LOIHI2, *_states(cuba, fill=1 << 24)) == []


def test_pilotnet_sdnn_run_fits_loihi2_states() -> None:
    native = pytest.importorskip("sims.native")
    from export.netx import read_netx

    folder = shared_file("lava_netx", "pilotnet_sdnn")
    net = read_netx(folder / "network.net")
    x = np.load(folder / "input.npy")[..., 0].transpose(2, 1, 0)  # (C, H, W)
    result = native.simulate(net, np.repeat(x[None], 9, axis=0), 9, record_state=True)
    check_states(net, LOIHI2, result.u, result.v, result.spikes)


# ----------------------------------------------------------------------------- resources


def _row(table: ResourceTable, name: str) -> dict[str, object]:
    return next(r for r in table.to_dict()["layers"] if r["name"] == name)


def test_dense_784_128_64_10_by_hand() -> None:
    net = dense_network(sizes=(784, 128, 64, 10))
    net = Network(tuple(_dense(l.name, np.ones(l.weight.shape)) for l in net.layers), (784,))
    table = estimate_resources(net, LOIHI2)
    expected = [  # neurons, synapses, connections, bytes (8-bit dense format), fan-in, axons, cores
        ("dense0", 128, 784 * 128, 784 * 128, 784 * 128, 784, 784, 1),
        ("dense1", 64, 128 * 64, 128 * 64, 128 * 64, 128, 128, 1),
        ("dense2", 10, 640, 640, 640, 64, 64, 1),
    ]
    for name, *values in expected:
        r = _row(table, name)
        assert [r[c] for c in ("neurons", "synapses", "connections", "synaptic_memory_bytes", "fan_in",
                               "input_axons", "cores")] == values
    assert table.cores == 3 and table.chips == 1
    assert table.total("neurons") == 202 and table.total("synapses") == 100352 + 8192 + 640


def test_dense_core_bounds() -> None:
    # 784 -> 512: 401,408 bytes over 128 KiB per core -> 4 cores
    r = estimate_resources(_one_dense(np.ones((512, 784))), LOIHI2).layers[0]
    assert (r.synaptic_memory_bytes, r.cores, r.bound) == (401408, 4, "synaptic memory")
    # 10 -> 20,000 neurons over 8,192 per core -> 3 cores (memory 200,000 B -> 2)
    r = estimate_resources(_one_dense(np.ones((20000, 10))), LOIHI2).layers[0]
    assert (r.neurons, r.cores, r.bound) == (20000, 3, "neurons")
    # loihi1 holds 1,024 neurons per core
    assert estimate_resources(_one_dense(np.ones((20000, 10))), get_target("loihi1")).layers[0].cores == 20


def test_sigma_delta_neurons_count_their_state_in_lif_equivalents() -> None:
    sd = SigmaDeltaNeuron(np.int32(4))
    w = np.ones((8192, 10), np.int32)
    sigma_delta = Network((InputLayer("input0", (10,), sd), Dense("fc1", (8192,), w, None, sd),
                           Dense("out2", (3,), np.ones((3, 8192), np.int32), None,
                                 SigmaDeltaNeuron(np.int32(0), sigma_output=True))), (10,))
    # Delta: 2 words (act, residue) = 1 LIF; SigmaDelta: 3 words = 1.5 LIF; Sigma: 1 word = 0.5 LIF, rounded up
    assert [neuron_slots(l) for l in sigma_delta.layers] == [10, 12288, 2]
    table = estimate_resources(sigma_delta, LOIHI2)
    fc1 = table.layers[1]
    assert (fc1.neurons, fc1.synapses, fc1.fan_in, fc1.input_axons, fc1.cores, fc1.bound) == (
        8192, 81920, 10, 10, 2, "neurons")  # 12,288 LIF equivalents over 8,192 per core
    assert any("ASSUMPTION" in n and "sigma-delta" in n for n in table.notes)
    # the same layer of CUBA neurons fits one core, and its notes say nothing of sigma-delta
    cuba = estimate_resources(_one_dense(w), LOIHI2)
    assert cuba.layers[0].cores == 1 and not any("sigma-delta" in n for n in cuba.notes)


def test_pilotnet_sdnn_resources() -> None:
    from export.netx import read_netx

    net = read_netx(shared_file("lava_netx", "pilotnet_sdnn", "network.net"))
    table = estimate_resources(net, LOIHI2)
    conv1 = _row(table, "conv1")
    # 24 x 16 x 49 = 18,816 SigmaDelta neurons = 28,224 LIF equivalents -> 4 cores of 8,192
    assert (conv1["neurons"], conv1["cores"], conv1["bound"]) == (18816, 4, "neurons")
    assert table.chips == 1 and table.total("neurons") == 43117


def test_sparse_dense_layer_uses_indexed_format() -> None:
    w = np.zeros((10, 1000))
    w[np.arange(10), np.arange(10) * 7] = 3
    r = estimate_resources(_one_dense(w), LOIHI2).layers[0]
    # 10 weights x (8-bit weight + ceil(log2 10) = 4-bit index) = 120 bits
    assert (r.synapses, r.connections, r.synaptic_memory_bytes, r.fan_in, r.input_axons) == (10, 10, 15, 1, 10)


def test_tiny_conv_by_hand() -> None:
    ones = np.ones((4, 2, 3, 3))
    r = estimate_resources(_one_conv(ones), LOIHI2).layers[0]  # 5x5 -> 3x3, no padding
    assert (r.neurons, r.synapses, r.connections, r.synaptic_memory_bytes, r.fan_in, r.input_axons, r.cores) == (
        36, 72, 36 * 18, 72, 18, 50, 1)
    padded = Network((_conv("conv0", (2, 5, 5), ones, padding=1),), (2, 5, 5))
    r = estimate_resources(padded, LOIHI2).layers[0]
    # taps inside the input per axis: 2, 3, 3, 3, 2 -> 13 x 13 per (Cout, Cin) pair
    assert (r.neurons, r.connections, r.fan_in, r.input_axons) == (100, 4 * 2 * 169, 18, 50)


def test_conv_input_axons_skip_unreached_inputs() -> None:
    strided = Network((_conv("conv0", (2, 7, 7), np.ones((1, 2, 3, 3)), stride=3),), (2, 7, 7))
    assert estimate_resources(strided, LOIHI2).layers[0].input_axons == 2 * 6 * 6  # row and column 6 unread
    center = np.zeros((1, 2, 3, 3))
    center[:, :, 1, 1] = 1
    r = estimate_resources(_one_conv(center), LOIHI2).layers[0]
    assert (r.input_axons, r.fan_in, r.synapses) == (2 * 3 * 3, 2, 18)
    grouped = np.ones((4, 2, 3, 3))
    grouped[2:, 1] = 0  # group 1's second input channel (channel 3) feeds nothing
    net = Network((_conv("conv0", (4, 5, 5), grouped, padding=1, groups=2),), (4, 5, 5))
    assert estimate_resources(net, LOIHI2).layers[0].input_axons == 3 * 25


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 2), st.integers(1, 3), st.integers(0, 2), st.integers(1, 2),
       st.integers(4, 9), st.integers(0, 2**31 - 1))
def test_conv_connectivity_matches_slow_loop(c_in: int, groups: int, k: int, pad: int, stride: int,
                                             size: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    c_in, c_out = c_in * groups, 2 * groups
    w = rng.integers(-1, 2, size=(c_out, c_in // groups, k, k))
    layer = _conv("conv0", (c_in, size, size), w, stride=stride, padding=pad, groups=groups)
    in_shape = (c_in, size, size)
    fan = np.zeros(layer.shape, np.int64)
    reached = np.zeros(in_shape, bool)
    for co, oh, ow in itertools.product(*map(range, layer.shape)):
        g = co // (c_out // groups)
        for ci, kh, kw in itertools.product(range(c_in // groups), range(k), range(k)):
            ih, iw = oh * stride - pad + kh, ow * stride - pad + kw
            if 0 <= ih < size and 0 <= iw < size and w[co, ci, kh, kw] != 0:
                fan[co, oh, ow] += 1
                reached[g * (c_in // groups) + ci, ih, iw] = True
    np.testing.assert_array_equal(conv_fan_in(layer, in_shape), fan)
    assert conv_input_axons(layer, in_shape) == int(reached.sum())


def test_input_neurons_and_flatten() -> None:
    net = Network((InputLayer("input0", (2, 5, 5), NEURON), _conv("conv1", (2, 5, 5), np.ones((4, 2, 3, 3))),
                   Flatten("flatten2", (36,)), _dense("dense3", np.ones((3, 36)))), (2, 5, 5))
    table = estimate_resources(net, LOIHI2)
    assert [(r.neurons, r.cores, r.fan_in) for r in table.layers] == [(50, 1, 1), (36, 1, 18), (0, 0, 0), (3, 1, 36)]
    bare = Network((InputLayer("input0", (2, 5, 5)), *net.layers[1:]), (2, 5, 5))
    assert estimate_resources(bare, LOIHI2).layers[0].cores == 0


def test_chips() -> None:
    net = dense_network()
    assert estimate_resources(net, LOIHI2).chips == 1
    two_cores = _limits(LOIHI2, cores_per_chip=Sourced(2, "test"))
    table = estimate_resources(net, two_cores)
    assert (table.cores, table.chips, table.chip_bound) == (3, 2, "cores")
    few_neurons = _limits(LOIHI2, neurons_per_chip=Sourced(100, "test"))
    assert estimate_resources(net, few_neurons).chips == 3  # 202 neurons
    assert estimate_resources(pilotnet_shaped_network(), LOIHI2).chips >= 1


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 100), st.integers(1, 300), st.integers(1, 20000), st.integers(1, 3))
def test_resources_monotonic_in_layer_size(n_in: int, n_small: int, extra: int, c_out: int) -> None:
    small = estimate_resources(_one_dense(np.ones((n_small, n_in))), LOIHI2)
    large = estimate_resources(_one_dense(np.ones((n_small + extra, n_in))), LOIHI2)
    for col in ("neurons", "synapses", "connections", "synaptic_memory_bytes", "cores"):
        assert small.total(col) <= large.total(col)
    assert small.chips >= 1 and small.chips <= large.chips
    conv_small = estimate_resources(_one_conv(np.ones((c_out, 2, 3, 3))), LOIHI2)
    conv_large = estimate_resources(_one_conv(np.ones((c_out + 1, 2, 3, 3))), LOIHI2)
    for col in ("neurons", "synapses", "connections", "synaptic_memory_bytes", "cores"):
        assert conv_small.total(col) <= conv_large.total(col)


def test_table_text_and_dict() -> None:
    table = estimate_resources(small_conv_network(), LOIHI2)
    text = table.format_table()
    for layer in small_conv_network().layers:
        assert layer.name in text
    assert "target loihi2: 4 cores on 1 chip(s)" in text
    assert "note: conv kernels are shared" in text
    d = json.loads(json.dumps(table.to_dict()))
    assert d["totals"]["cores"] == table.cores == sum(r["cores"] for r in d["layers"])
    assert d["totals"]["neurons"] == 8 * 17 * 17 + 16 * 9 * 9 + 64 + 10
    assert d["notes"] == list(table.notes)


def test_flatten_and_input_layers_pass_rules() -> None:
    layers: list[Layer] = [InputLayer("input0", (4,), NEURON), _dense("dense1", np.ones((3, 4)))]
    check_network(Network(tuple(layers), (4,)), LOIHI2)
    assert C.NETX_MIXED_WEIGHT_MIN == -(1 << LOIHI2.formats.weight_bits)  # the rule derives netx's range from the target
    assert C.NETX_MIXED_WEIGHT_MAX == (1 << LOIHI2.formats.weight_bits) - 2


# ----------------------------------------------------------------------------- residual graphs


def test_a_merge_counts_each_source() -> None:
    from export.examples import small_residual_network
    from export.resources import in_shapes, layer_counts

    net = small_residual_network(0)
    table = estimate_resources(net, LOIHI2)
    shapes = in_shapes(net)
    for name, k in (("block2_conv1", 2), ("block2_down", 2), ("pool", 2), ("fc3", 2), ("block2_conv2", 1)):
        i = net.layer_index(name)
        assert len(net.sources(i)) == k or k == 1
        one = layer_counts(net.layers[i], shapes[i], LOIHI2.formats.weight_bits)
        row = table.layers[i]
        assert (row.synapses, row.connections, row.synaptic_memory_bytes, row.fan_in) == (
            k * one.synapses, k * one.connections, k * one.memory_bytes, k * one.fan_in), name
        assert row.neurons == one.neurons  # the same neurons, whatever the sources
    assert shapes[net.layer_index("block2_down")] == (4, 8, 8)
    assert any("a merge of k sources is k synapse processes" in note for note in table.notes)
    assert not any("merge" in note for note in estimate_resources(small_conv_network(0), LOIHI2).notes)
    check_network(net, LOIHI2)  # the test network fits Loihi 2


def test_output_axons_count_each_reading_synapse() -> None:
    from export.examples import small_residual_network

    net = small_residual_network(0)
    rows = {r.name: r for r in estimate_resources(net, LOIHI2).layers}
    assert rows["stem"].output_axons == 3 * 4 * 8 * 8  # block1_conv1, block2_conv1, block2_down
    assert rows["block1_conv2"].output_axons == 2 * 4 * 8 * 8  # block2_conv1, block2_down
    assert rows["pool"].output_axons == 8  # through the flatten to fc1
    assert rows["flatten"].output_axons == 0
    assert rows["fc1"].output_axons == 2 * 16  # fc2 and fc3
    assert rows["fc3"].output_axons == 0  # the host reads the readout
    assert "out axons" in estimate_resources(net, LOIHI2).format_table()


def _wide_merge(sources: tuple[str, ...]) -> Network:
    """c2 (256 -> 256, 3x3) reads ``sources``: 2304 inputs per source and neuron."""
    neuron = CubaNeuron(np.int32(0), np.int32(0), np.int32(100))
    return Network((
        Conv("c0", (256, 3, 3), np.ones((256, 1, 1, 1), np.int32), neuron=neuron),
        Conv("c1", (256, 3, 3), np.ones((256, 256, 1, 1), np.int32), neuron=neuron),
        Conv("c2", (256, 3, 3), np.ones((256, 256, 3, 3), np.int32), padding=(1, 1), neuron=neuron,
             sources=sources),
    ), (1, 3, 3))


def test_fan_in_of_a_merge_sums_its_sources() -> None:
    assert not find_violations(_wide_merge(()), LOIHI2)  # one source (a chain): 2304 <= 4096
    with pytest.raises(TargetLimitError, match=r"rule neuron_fan_in: layer 'c2' \(#2, conv\): a neuron has fan-in "
                                               r"4608 \(a merge of 2 sources: 2 synapse processes into the same "
                                               r"neurons\), above the 4096 input axons"):
        check_network(_wide_merge(("c1", "c0")), LOIHI2)


def test_sew_resnet18_graph_topology_and_fit() -> None:
    """SEW-ResNet-18 at the paper's widths, 2x34x34: 17 convs + 3 downsampling shortcuts + pool + flatten + fc;
    the ADDs are merges; on Loihi 2 it takes 2 chips and its 3x3x512 convs (and the wide merges) exceed the
    fan-in. Stages 3-4 narrowed to 144 and 224 channels (``sew_resnet18_loihi``'s widths) fit in 1 chip."""
    from export.examples import sew_resnet18_graph

    narrow = sew_resnet18_graph(widths=(64, 128, 144, 224))
    assert find_violations(narrow, LOIHI2) == []
    assert (estimate_resources(narrow, LOIHI2).cores, estimate_resources(narrow, LOIHI2).chips) == (102, 1)
    net = sew_resnet18_graph(widths=(64, 128, 256, 512))
    assert len(net.layers) == 23 and net.depth == 19
    merges = {layer.name: len(layer.sources) for layer in net.layers if len(getattr(layer, "sources", ())) > 1}
    assert merges == {"stage1_block2_conv1": 2, "stage2_block1_conv1": 3, "stage2_block1_down": 3,
                      "stage2_block2_conv1": 2, "stage3_block1_conv1": 3, "stage3_block1_down": 3,
                      "stage3_block2_conv1": 2, "stage4_block1_conv1": 3, "stage4_block1_down": 3,
                      "stage4_block2_conv1": 2, "avgpool": 3}
    stem, pool = net.layers[0], net.layers[net.layer_index("avgpool")]
    assert isinstance(stem, Conv) and stem.weight.shape == (64, 2, 7, 7) and stem.stride == (2, 2)
    assert isinstance(pool, Conv) and pool.groups == 512 and pool.weight.shape == (512, 1, 3, 3)
    assert net.out_shape == (10,)
    table = estimate_resources(net, LOIHI2)
    assert (table.cores, table.chips, table.chip_bound) == (195, 2, "cores")
    violations = find_violations(net, LOIHI2)
    assert {v.rule for v in violations} == {"neuron_fan_in"}
    assert [net.layers[v.layer_index].name for v in violations] == [
        "stage3_block2_conv1", "stage4_block1_conv1", "stage4_block1_conv2", "stage4_block2_conv1",
        "stage4_block2_conv2"]
