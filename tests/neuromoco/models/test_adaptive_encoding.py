"""ASNN: the adaptive LIF neuron, the static-image codes, every backbone with each, and the export refusals."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import functional, surrogate

from export.lower import check_deployable, lower
from hw_targets.errors import ConfigError, TargetLimitError
from neuromoco.models import ModelConfig, build_model, list_models
from neuromoco.models.adaptive import ASNN_INIT, AdaptiveLIFNode, StepScaledReadout
from neuromoco.models.encoding import HybridEncoder, LatencyEncoder, direct_code, latency_code
from neuromoco.models.neuron import CubaLIFNode
from neuromoco.models.loihinet_sdnn import SDNN_SPECS

B, NUM_CLASSES = 2, 10
#: Float paths below compare a vectorised forward with a loop over the same float32 ops.
ATOL = 1e-6


def images(shape: tuple[int, ...], seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=gen)
    return torch.where(x < 0.3, torch.zeros_like(x), x)  # dark pixels too


# -- codes ---------------------------------------------------------------------------------


def latency_reference(x: float, steps: int, first_step: int) -> int | None:
    """The documented spike time of one pixel: first_step + round((1 - x)(K - 1)), none for x == 0."""
    if x <= 0:
        return None
    return first_step + int(torch.round(torch.tensor((1.0 - min(x, 1.0)) * (steps - first_step - 1))).item())


@settings(max_examples=40, deadline=None)
@given(steps=st.integers(1, 8), first_step=st.integers(0, 3), seed=st.integers(0, 1000))
def test_latency_code_single_spike_and_order(steps, first_step, seed):
    if first_step >= steps:
        with pytest.raises(ConfigError, match="first_step"):
            latency_code(torch.rand(1, 1, 2, 2), steps, first_step)
        return
    x = images((B, 1, 5, 5), seed)
    spikes = latency_code(x, steps, first_step)
    assert spikes.shape == (steps, B, 1, 5, 5) and spikes.dtype == torch.float32
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    count = spikes.sum(0)
    assert torch.equal(count, (x > 0).float()), "exactly one spike per lit pixel, none for a dark one"
    assert spikes[:first_step].sum() == 0
    fire_at = torch.where(count > 0, spikes.argmax(0), torch.full_like(count, steps).long())  # dark: "never"
    flat_x, flat_t = x.flatten(), fire_at.flatten()
    brighter = flat_x[:, None] > flat_x[None, :]
    assert not (brighter & (flat_t[:, None] > flat_t[None, :])).any(), "a brighter pixel never fires later"
    for value, t in zip(flat_x.tolist(), flat_t.tolist()):
        expected = latency_reference(value, steps, first_step)
        assert t == (steps if expected is None else expected)


def test_latency_code_extremes_and_hybrid_formula():
    x = torch.tensor([1.0, 0.5, 1e-3, 0.0]).view(1, 1, 1, 4)
    t = latency_code(x, 6).argmax(0).flatten().tolist()
    assert t[:3] == [0, 2, 5]  # round(0.5 * 5) = 2 (ties to even)
    assert latency_code(x, 6)[:, 0, 0, 0, 3].sum() == 0
    # The hybrid spike part: round((1 - x) * (T - 2)) + 1.
    assert latency_code(x, 6, first_step=1).argmax(0).flatten().tolist()[:3] == [1, 3, 5]


def test_direct_code_repeats_the_image():
    x = images((B, 3, 4, 4))
    out = direct_code(x, 3)
    assert out.shape == (3, B, 3, 4, 4) and all(torch.equal(out[t], x) for t in range(3))


def test_latency_encoder_reads_the_repeated_image():
    x = images((B, 1, 6, 6))
    assert torch.equal(LatencyEncoder()(direct_code(x, 4)), latency_code(x, 4))
    assert LatencyEncoder.analog_input is False


def test_hybrid_encoder_layout_and_gradient():
    torch.manual_seed(0)
    encoder = HybridEncoder(2)
    x = images((B, 2, 6, 6))
    out = encoder(direct_code(x, 4))
    assert out.shape == (4, B, 4, 6, 6)
    analog = encoder.stem_norm(encoder.stem(x))
    torch.testing.assert_close(out[0, :, :2], analog, atol=ATOL, rtol=0)
    assert out[0, :, 2:].abs().sum() == 0 and out[1:, :, :2].abs().sum() == 0
    assert torch.equal(out[1:, :, 2:], latency_code(x, 4, first_step=1)[1:])
    out.sum().backward()
    assert encoder.stem.weight.grad is not None and encoder.stem.weight.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="T >= 2"):
        encoder(direct_code(x, 1))


# -- adaptive neuron -----------------------------------------------------------------------


def adaptive_reference(x: torch.Tensor, leak: torch.Tensor, gain: torch.Tensor, threshold: float) -> torch.Tensor:
    """ASNN's update, one step at a time: u = leak[t] u + gain[t] I; spike iff u > th; u -= th * s."""
    u = torch.zeros_like(x[0])
    out = []
    for t in range(x.shape[0]):
        u = leak[t] * u + gain[t] * x[t]
        s = (u > threshold).float()
        u = u - threshold * s
        out.append(s)
    return torch.stack(out)


def test_adaptive_forward_matches_reference_and_steps():
    torch.manual_seed(0)
    node = AdaptiveLIFNode(5, threshold=0.75)
    assert node.per_step_parameters and torch.equal(node.leak.detach(), torch.full((5,), ASNN_INIT))
    with torch.no_grad():
        node.leak.copy_(torch.tensor([0.5, 0.9, 0.1, 1.2, 0.7]))
        node.gain.copy_(torch.tensor([0.5, 2.0, 1.0, 0.3, 1.5]))
    x = torch.randn(5, 3, 7) * 2
    out = node(x)
    assert torch.equal(out, adaptive_reference(x, node.leak.detach(), node.gain.detach(), 0.75))
    functional.reset_net(node)
    assert torch.equal(node(x), out), "reset_net must clear the state and the step counter"
    functional.reset_net(node)
    split = torch.cat([node(x[:2]), node(x[2:])])  # a sequence fed in two calls continues where it stopped
    assert torch.equal(split, out)
    functional.reset_net(node)
    node.step_mode = "s"
    assert torch.equal(torch.stack([node(x[t]) for t in range(5)]), out)
    with pytest.raises(ConfigError, match="built for 5"):
        node(x[0])
    functional.reset_net(node)
    node.step_mode = "m"
    with pytest.raises(ConfigError, match="built for 5"):
        node(torch.zeros(6, 1))


def test_adaptive_backward_reaches_every_step():
    torch.manual_seed(0)
    node = AdaptiveLIFNode(4, surrogate_function=surrogate.Sigmoid(alpha=4.0))
    x = (torch.randn(3, 8, 16) * 2).requires_grad_(True)
    node(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert node.leak.grad is not None and node.gain.grad is not None
    assert (node.gain.grad[:3] != 0).all() and node.gain.grad[3] == 0  # step 3 not used
    assert (node.leak.grad[1:3] != 0).all()  # step 0's leak multiplies u = 0


def test_step_scaled_readout():
    head = torch.nn.Linear(4, 3)
    readout = StepScaledReadout(head, 3)
    with torch.no_grad():
        readout.step_scale.copy_(torch.tensor([1.0, 2.0, 0.5]))
    x = torch.randn(2, 5, 4)
    torch.testing.assert_close(readout(x), head(x) * torch.tensor([1.0, 2.0]).view(2, 1, 1), atol=ATOL, rtol=0)


# -- backbones -----------------------------------------------------------------------------


@pytest.mark.parametrize("neuron", ["lif", "adaptive"])
@pytest.mark.parametrize("encoding", ["direct", "latency", "hybrid"])
@pytest.mark.parametrize("name", list_models())
def test_every_backbone_builds_with_each_neuron_and_code(name, neuron, encoding):
    torch.manual_seed(0)
    steps, shape = 3, (1, 16, 16)
    cfg = ModelConfig(name=name, neuron=neuron, encoding=encoding)
    if neuron == "adaptive" and name in SDNN_SPECS:  # ReLU sigma-delta neurons have no LIF dynamics to adapt
        with pytest.raises(ConfigError, match="sigma-delta"):
            build_model(cfg, shape, NUM_CLASSES, time_steps=steps)
        return
    model = build_model(cfg, shape, NUM_CLASSES, time_steps=steps)
    frames = direct_code(images((B, *shape)), steps)  # what StaticFrames gives
    with torch.no_grad():
        assert model.features(frames).shape == (steps, B, model.feature_dim)
    functional.reset_net(model)
    out = model(frames)
    # loihinet in hardware timing (the default) runs the chip's T + L steps.
    assert out.shape == (steps + getattr(model, "latency", 0), B, NUM_CLASSES)
    out.sum().backward()
    functional.reset_net(model)
    adaptive = [m for m in model.modules() if isinstance(m, AdaptiveLIFNode)]
    assert bool(adaptive) == (neuron == "adaptive")
    if neuron == "adaptive":
        assert not any(isinstance(m, CubaLIFNode) for m in model.modules())
        assert isinstance(model.classifier, StepScaledReadout)
        assert any(m.gain.grad is not None and m.gain.grad.abs().sum() > 0 for m in adaptive)
    encoder = model._modules.get("input_encoder")
    assert (encoder is None) == (encoding == "direct")
    if encoding == "hybrid":
        assert encoder.stem.weight.grad is not None


def test_lif_direct_loihinet_is_unchanged():
    shape = (2, 34, 34)
    plain = build_model(ModelConfig(name="loihinet_s"), shape, NUM_CLASSES)
    explicit = build_model(ModelConfig(name="loihinet_s", neuron="lif", encoding="direct"), shape, NUM_CLASSES, time_steps=8)
    assert list(plain.state_dict()) == list(explicit.state_dict())
    assert [type(m) for m in plain.modules()] == [type(m) for m in explicit.modules()]
    check_deployable(explicit)


def test_adaptive_needs_time_steps():
    with pytest.raises(ConfigError, match="time steps"):
        build_model(ModelConfig(name="loihinet_s", neuron="adaptive"), (1, 16, 16), NUM_CLASSES)


@pytest.mark.parametrize("field, value", [("neuron", "plif"), ("encoding", "rate")])
def test_model_config_rejects_unknown_choices(field, value):
    with pytest.raises(ConfigError, match=rf"\[model\] {field}='{value}'"):
        ModelConfig(**{field: value})


# -- export --------------------------------------------------------------------------------


def test_export_refuses_adaptive_neurons():
    model = build_model(ModelConfig(name="loihinet_s", neuron="adaptive"), (1, 16, 16), NUM_CLASSES, time_steps=4)
    with pytest.raises(TargetLimitError, match=r"blocks\.0\.neuron.*per-time-step.*--neuron lif"):
        lower(model.eval(), (1, 16, 16))


def test_export_refuses_the_hybrid_analog_step():
    model = build_model(ModelConfig(name="loihinet_s", encoding="hybrid"), (1, 16, 16), NUM_CLASSES)
    with pytest.raises(TargetLimitError, match=r"'input_encoder'.*binary spikes.*input_message_bits.*--encoding latency"):
        lower(model.eval(), (1, 16, 16))


def test_export_lowers_the_latency_coded_loihinet_as_its_backbone():
    torch.manual_seed(0)
    shape = (1, 16, 16)
    coded = build_model(ModelConfig(name="loihinet_s", encoding="latency"), shape, NUM_CLASSES).eval()
    plain = build_model(ModelConfig(name="loihinet_s"), shape, NUM_CLASSES)
    plain.load_state_dict(coded.state_dict())  # the latency encoder has no parameters
    net, reference = lower(coded, shape), lower(plain.eval(), shape)
    assert net.input_shape == shape
    assert [layer.name for layer in net.layers] == [layer.name for layer in reference.layers]
    for a, b in zip(net.layers, reference.layers):
        if hasattr(a, "weight"):
            assert (a.weight == b.weight).all()
