"""Every registered backbone through the same contract checks (shapes, read-out, reset)."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional
from torch import nn

from export.lower import check_deployable
from hw_targets.errors import ConfigError
from neuromoco.models import CubaLIFNode, ModelConfig, build_model, list_models, readout_logits
from neuromoco.models.base import READOUTS
from neuromoco.models.loihinet import Flatten, LoihiBlock, LoihiNet
from neuromoco.models.loihinet_sdnn import SDNN_SPECS, LoihiSdnn, SdnnBlock
from neuromoco.models.loihinet_sew import INPUT, SEW_SPECS, LoihiGraphNet

T, B, NUM_CLASSES = 2, 2, 10
INPUT_SHAPE = (2, 34, 34)


@pytest.fixture(scope="module")
def frames():
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(T, B, *INPUT_SHAPE, generator=gen) < 0.3).float() * 2


@pytest.mark.parametrize("name", list_models())
def test_contract(name, frames):
    torch.manual_seed(0)
    model = build_model(ModelConfig(name=name), INPUT_SHAPE, NUM_CLASSES).eval()
    with torch.no_grad():
        feats = model.features(frames)
        functional.reset_net(model)
        out = model(frames)
        functional.reset_net(model)
        again = model.classify(model.features(frames))
        functional.reset_net(model)
    latency = getattr(model, "latency", 0)  # loihinet in hardware timing: the chip's T + L steps
    assert feats.shape == (T, B, model.feature_dim)
    assert out.shape == (T + latency, B, NUM_CLASSES)
    if latency:
        # classify(features) misses only the classifier's L - 1 warm-up steps (tests/.../test_loihinet_timing.py).
        assert again.shape == (T + 1, B, NUM_CLASSES)
        functional.reset_net(model)
        again = model(frames)
        functional.reset_net(model)
    assert torch.equal(out, again), "forward must equal classify(features) and reset must clear the state"
    assert model.readout in READOUTS
    assert readout_logits(model, out).shape == (B, NUM_CLASSES)
    if model.readout == "spike_count":
        assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert not any(p.requires_grad is False for p in model.parameters())
    assert {id(p) for p in model.classifier.parameters()}.isdisjoint({id(p) for p in model.backbone_parameters()})


@pytest.mark.parametrize("name", [n for n in list_models()
                                  if n.startswith("loihinet") and n not in SDNN_SPECS and n not in SEW_SPECS])
def test_loihinet_is_deployable(name):
    model = build_model(ModelConfig(name=name), INPUT_SHAPE, NUM_CLASSES)
    assert isinstance(model, LoihiNet)
    for block in model.blocks:
        assert isinstance(block, (LoihiBlock, Flatten))
        if isinstance(block, LoihiBlock):
            assert isinstance(block.synapse, (nn.Conv2d, nn.Linear))
            if isinstance(block.synapse, nn.Conv2d):
                assert block.norm is None or isinstance(block.norm, nn.BatchNorm2d)
            else:
                assert block.norm is None or isinstance(block.norm, nn.BatchNorm1d)
            assert isinstance(block.neuron, CubaLIFNode)
    pooling = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    assert not any(isinstance(m, pooling) for m in model.modules())
    assert model.classifier is model.blocks[-1] and model.classifier.norm is None


@pytest.mark.parametrize("name", sorted(SEW_SPECS))
def test_loihinet_sew_is_deployable(name):
    model = build_model(ModelConfig(name=name), INPUT_SHAPE, NUM_CLASSES)
    assert isinstance(model, LoihiGraphNet)
    layers = model.graph()
    assert len(layers) == len(model.blocks)
    names = {INPUT}
    for layer, block in zip(layers, model.blocks):
        assert set(layer.sources) <= names, f"{layer.name} reads a later layer"
        names.add(layer.name)
        if layer.kind == "flatten":
            assert isinstance(block, Flatten) and len(layer.sources) == 1
            continue
        assert isinstance(block, LoihiBlock) and isinstance(block.neuron, CubaLIFNode)
        norm = nn.BatchNorm2d if isinstance(block.synapse, nn.Conv2d) else nn.BatchNorm1d
        assert block.norm is None or isinstance(block.norm, norm)
        assert len(layer.sources) == 1 or layer.cnf == "ADD"
    assert any(len(layer.sources) > 1 for layer in layers), "a residual network has merges"
    pooling = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    assert not any(isinstance(m, pooling) for m in model.modules())
    assert model.classifier is model.blocks[-1] and model.classifier.norm is None
    check_deployable(model)


@pytest.mark.parametrize("name", sorted(SDNN_SPECS))
def test_loihinet_sdnn_is_deployable(name):
    model = build_model(ModelConfig(name=name), INPUT_SHAPE, NUM_CLASSES)
    assert isinstance(model, LoihiSdnn)
    for block in model.blocks:
        assert isinstance(block, (SdnnBlock, Flatten))
        if isinstance(block, SdnnBlock):
            assert isinstance(block.synapse, (nn.Conv2d, nn.Linear))
            norm = nn.BatchNorm2d if isinstance(block.synapse, nn.Conv2d) else nn.BatchNorm1d
            assert block.norm is None or isinstance(block.norm, norm)
    pooling = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)
    assert not any(isinstance(m, pooling) for m in model.modules())
    # The read-out is Lava's Sigma: no norm, no bias, no ReLU.
    head = model.classifier
    assert head is model.blocks[-1] and head.sigma_output and head.norm is None and head.synapse.bias is None
    check_deployable(model)


def test_neuron_settings_reach_every_loihinet_neuron():
    cfg = ModelConfig(current_decay=0.5, voltage_decay=0.125, threshold=0.75, batch_norm=False)
    model = build_model(cfg, INPUT_SHAPE, NUM_CLASSES)
    nodes = [m for m in model.modules() if isinstance(m, CubaLIFNode)]
    assert len(nodes) == 4
    assert all((n.current_decay, n.voltage_decay, n.threshold) == (0.5, 0.125, 0.75) for n in nodes)
    assert not any(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())


def test_unknown_model_name():
    with pytest.raises(ConfigError, match="resnet50"):
        ModelConfig(name="resnet50")
