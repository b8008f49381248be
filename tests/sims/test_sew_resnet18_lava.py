"""sew_resnet18_loihi (the paper's SEW-ResNet-18 without max pooling, stages 3-4 at 144/224 channels; 23 IR
layers, 11 merges, depth 19) lowered at 2x34x34: the native simulator equals Lava's process graph in every
layer at every step of three samples.

Slow: Lava 0.10 runs its conv models with scipy, one ``convolve2d`` per (input, output) channel pair, so
the 21 steps of one sample take minutes on 2 cores."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from export.lower import lower
from neuromoco.models import ModelConfig, build_model
from sims.lava import run_lava_net
from sims.native import simulate
from sims.result import first_difference

pytestmark = [pytest.mark.lava, pytest.mark.slow]

SHAPE = (2, 34, 34)
T = 2
SAMPLES = 3


def _lowered(seed: int):  # type: ignore[no-untyped-def]
    """The float model with random eval-mode batch-norm terms (every layer fires sometimes), lowered."""
    torch.manual_seed(seed)
    model = build_model(ModelConfig(name="sew_resnet18_loihi"), SHAPE, 10)
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 2.0 + 1.0)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.6 - 0.2)
    return lower(model.eval(), SHAPE)


def test_sew_resnet18_loihi_native_equals_lava(lava_netx) -> None:  # type: ignore[no-untyped-def]
    net = _lowered(0)
    assert net.is_graph and net.depth == 19
    assert sum(len(net.sources(i)) > 1 for i in range(len(net.layers))) == 11  # merges
    x = (torch.rand(SAMPLES, T, *SHAPE, generator=torch.Generator().manual_seed(1)) < 0.3).numpy().astype(np.int32)
    steps = T + net.depth
    native = simulate(net, x, steps, record_state=True)
    lava = run_lava_net(net, x, steps, record_state=True)
    assert first_difference(native, lava, states=True) is None, first_difference(native, lava, states=True)
    assert np.array_equal(native.synops, lava.synops)
    # every layer with neurons fires, the 224-group average pool (Lava's int8 groups, widened) included
    assert all(s.any() for s in native.spikes)
