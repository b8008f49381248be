"""Residual graphs: the native simulator equals the Lava process graph at every layer and step.

Lava runs the graph :func:`sims.lava.build_lava_graph` builds (netx's own block builders, one more
synapse process per extra source of a merge) with ``Loihi2SimCfg(select_tag='fixed_pt')``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from export.ir import Conv, CubaNeuron, InputLayer, Network
from export.netx import write_netx
from netgen import random_case, random_graph_case
from sims.lava import run_lava, run_lava_net
from sims.native import simulate
from sims.result import SimResult, first_difference

pytestmark = pytest.mark.lava

HALF = 1 << 23  # u, v and the conv accumulator are 24-bit: [-2**23, 2**23)


def _assert_same(native: SimResult, lava: SimResult) -> None:
    diff = first_difference(native, lava, states=True)
    assert diff is None, diff
    assert np.array_equal(native.synops, lava.synops)


def _check_case(seed: int, extreme: bool) -> None:
    case = random_graph_case(seed, extreme)
    native = simulate(case.net, case.spikes, case.steps, record_state=True, **case.options)
    lava = run_lava_net(case.net, case.spikes, case.steps, record_state=True, **case.options)
    _assert_same(native, lava)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**31 - 1), extreme=st.booleans())
def test_random_graphs_match_lava(seed: int, extreme: bool, lava_netx) -> None:  # type: ignore[no-untyped-def]
    _check_case(seed, extreme)


@pytest.mark.parametrize("seed,extreme", [(3, False), (11, False), (5, True), (8, True)])
def test_fixed_graphs_match_lava(seed: int, extreme: bool, lava_netx) -> None:  # type: ignore[no-untyped-def]
    """Fixed cases, so both variants run even when hypothesis draws unevenly."""
    assert random_graph_case(seed, extreme).net.is_graph
    _check_case(seed, extreme)


@pytest.mark.slow
@pytest.mark.parametrize("extreme", [False, True])
@pytest.mark.parametrize("block", range(4))
def test_graph_sweep_matches_lava(block: int, extreme: bool, lava_netx) -> None:  # type: ignore[no-untyped-def]
    for seed in range(1000 + 15 * block, 1000 + 15 * (block + 1)):
        _check_case(seed, extreme)


@pytest.mark.parametrize("seed,kind", [(21, "conv"), (22, "dense"), (23, "input_neuron"), (24, "extreme")])
def test_builder_chain_equals_netx_loaded_chain(seed: int, kind: str, lava_netx, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A chain through build_lava_graph runs exactly as netx's own loader builds it from the file."""
    case = random_case(seed, kind)
    path = write_netx(case.net, tmp_path / "chain.net")
    from_file = run_lava(path, case.spikes, case.steps, record_state=True, net=case.net, **case.options)
    built = run_lava_net(case.net, case.spikes, case.steps, record_state=True, **case.options)
    assert from_file.backend == built.backend == "lava"
    _assert_same(from_file, built)


# ----------------------------------------------------------------------------- per-process wrap


def _wrap24(x: int) -> int:
    return ((x + HALF) % (2 * HALF)) - HALF


def _merge_net(weight: int) -> Network:
    """input0 (1, 2, 2) -> relay (1x1 conv, fires one step after each input spike) -> merge reading
    [relay, input0] with 1x1 weight ``weight``: at step 2 both sources deliver ``weight`` per pixel."""
    always = CubaNeuron(np.int32(4096), np.int32(4096), np.int32(0))
    memoryless = CubaNeuron(np.int32(4096), np.int32(4096), np.int32(1000))
    w = np.full((1, 1, 1, 1), weight, np.int32)
    return Network((
        InputLayer("input0", (1, 2, 2)),
        Conv("relay", (1, 2, 2), np.full((1, 1, 1, 1), 100, np.int32), neuron=always),
        Conv("merge", (1, 2, 2), w, neuron=memoryless, sources=("relay", "input0")),
    ))


@pytest.mark.parametrize("weight", [6_000_000, 10_000_000])
def test_each_synapse_process_wraps_on_its_own(weight: int, lava_netx) -> None:  # type: ignore[no-untyped-def]
    """6e6: neither process wraps, their int32 sum 1.2e7 leaves 24 bits; 1e7: each wraps on its own.
    Either way the neurons get the sum of the wrapped outputs, not the wrap of the summed ones: a
    simulator with one accumulator per layer would see the opposite sign here, and so the opposite
    spikes."""
    net = _merge_net(weight)
    x = np.ones((1, 2, 1, 2, 2), np.int32)
    native = simulate(net, x, 5, record_state=True)
    _assert_same(native, run_lava_net(net, x, 5, record_state=True))
    per_process = 2 * _wrap24(weight)
    one_accumulator = _wrap24(2 * weight)
    assert per_process != one_accumulator and np.sign(per_process) != np.sign(one_accumulator)
    # memoryless u and v: at step 2 the merge's v saturates with the sign of its input
    expect_spike = per_process > 0
    assert native.spikes[2][0, 2].all() == expect_spike
    assert (not native.spikes[2][0, 2].any()) == (not expect_spike)
    assert np.all(np.sign(native.v[2][0, 2]) == (0 if expect_spike else -1))  # v resets to 0 on a spike


# ----------------------------------------------------------------------------- 128+ conv groups


@pytest.mark.parametrize("channels", [128, 200])
def test_depthwise_conv_with_128_or_more_groups(channels: int, lava_netx) -> None:  # type: ignore[no-untyped-def]
    """A depthwise average pool over 128+ channels (sew_resnet18_loihi's is 224), merging two sources.

    Lava 0.10's Python conv model keeps ``groups`` in int8 (128 -> -128, 512 -> 0) and then sends zeros;
    ``sims.lava_compat.widen_conv_groups`` declares it int32, so Lava computes the conv it was given."""
    rng = np.random.default_rng(channels)
    neuron = CubaNeuron(np.int32(4096), np.int32(4096), np.int32(300))
    relay = CubaNeuron(np.int32(4096), np.int32(4096), np.int32(1))
    net = Network((
        InputLayer("input0", (channels, 3, 3)),
        Conv("relay", (channels, 3, 3), np.full((channels, 1, 1, 1), 100, np.int32), groups=channels, neuron=relay),
        Conv("pool", (channels, 1, 1), rng.integers(-40, 120, (channels, 1, 3, 3)).astype(np.int32),
             groups=channels, neuron=neuron, sources=("relay", "input0")),
    ))
    x = (rng.random((1, 4, channels, 3, 3)) < 0.5).astype(np.int32)
    native = simulate(net, x, 7, record_state=True)
    _assert_same(native, run_lava_net(net, x, 7, record_state=True))
    assert native.spikes[2].any() and not native.spikes[2].all(), "the pool must fire in some channels only"
    from lava.proc.conv import models  # noqa: PLC0415

    assert np.dtype(models.PyConvModelFixed.groups.d_type) == np.int32
