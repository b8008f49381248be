"""Target limit rules (every rule fails and passes once) and the resource estimate."""

from __future__ import annotations

import dataclasses
import itertools
import json
from typing import Callable

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from export.check import RULES, check_network, conv_weight_exponent, find_violations
from export.resources import ResourceTable, conv_fan_in, conv_input_axons, estimate_resources
from export.examples import dense_network, pilotnet_shaped_network, small_conv_network
from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, conv_output_hw
from hw_targets import constants as C
from hw_targets.base import Sourced, Target, get_target
from hw_targets.errors import ExportError, TargetLimitError
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
    for make in (good_network, small_conv_network, pilotnet_shaped_network, dense_network):
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
    # Sigma-delta (graded spike) files are refused by the reader until the IR has SDNN neurons
    # (the sigma-delta issue); test_sdnn_files_are_refused_naming_the_layer pins that.
    files = sorted(p for p in LAVA_NETX.glob("*/*.net") if not p.parent.name.endswith("_sdnn"))
    assert files
    for path in files:
        net = read_netx(path)
        for name in ("loihi2", "loihi1"):
            check_network(net, get_target(name))


def test_sdnn_files_are_refused_naming_the_layer() -> None:
    from export.netx import read_netx

    shared_file("lava_netx")
    files = sorted(LAVA_NETX.glob("*_sdnn/*.net"))
    if not files:
        pytest.skip("no sigma-delta netx file in ../shared/data/lava_netx")
    for path in files:
        with pytest.raises(ExportError, match=r"layer 0 \(input\): 'neuron/type': 'SDNN' is not supported"):
            read_netx(path)


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
