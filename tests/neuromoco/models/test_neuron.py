"""The float CUBA-LIF neuron against a slow loop written from its equations."""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, surrogate

from hw_targets.errors import ConfigError
from neuromoco.models.neuron import CubaLIFNode, strict_spike

#: The fast and the slow path do the same float32 operations in the same order: equal up to rounding of one op.
ATOL_STATE = 1e-6


def reference_cuba(x_seq: torch.Tensor, current_decay: float, voltage_decay: float, threshold: float):
    """Element by element, straight from the docstring's equations."""
    steps = x_seq.shape[0]
    flat = x_seq.reshape(steps, -1)
    spikes = torch.zeros_like(flat)
    for i in range(flat.shape[1]):
        u = v = 0.0
        for t in range(steps):
            u = (1 - current_decay) * u + float(flat[t, i])
            v = (1 - voltage_decay) * v + u
            s = 1.0 if v > threshold else 0.0
            v = v * (1 - s)
            spikes[t, i] = s
    return spikes.reshape(x_seq.shape)


def test_matches_reference_loop():
    torch.manual_seed(0)
    x = torch.randn(12, 3, 5) * 0.6
    node = CubaLIFNode(current_decay=0.25, voltage_decay=0.03125, threshold=1.0)
    out = node(x)
    expected = reference_cuba(x.double(), 0.25, 0.03125, 1.0).float()
    # A few elements may sit within rounding of the threshold; none does for this seed.
    assert torch.equal(out, expected)
    assert out.sum() > 0, "the input should make some neurons fire"


def test_current_is_not_reset_and_voltage_is():
    node = CubaLIFNode(current_decay=0.5, voltage_decay=0.0, threshold=1.0)
    x = torch.tensor([[2.0], [0.0], [0.0]])  # (T, B=1)
    out = node(x)
    # u: 2, 1, 0.5; v: 2 -> spike, reset 0; then 1 (not > 1), then 1.5 -> spike.
    assert out.flatten().tolist() == [1.0, 0.0, 1.0]
    assert float(node.u) == pytest.approx(0.5, abs=ATOL_STATE)
    assert float(node.v) == 0.0


def test_strict_threshold():
    node = CubaLIFNode(current_decay=1.0, voltage_decay=1.0, threshold=1.0)
    out = node(torch.tensor([[1.0, 1.0 + 2**-20]]))  # (T=1, B=2)
    assert out.tolist() == [[0.0, 1.0]]


def test_reset_net_clears_state_and_repeats_output():
    torch.manual_seed(1)
    node = CubaLIFNode()
    x = torch.rand(6, 4, 3) * 2
    first = node(x)
    assert isinstance(node.v, torch.Tensor) and isinstance(node.u, torch.Tensor)
    carried = node(x)
    functional.reset_net(node)
    assert node.u == 0.0 and node.v == 0.0
    again = node(x)
    assert torch.equal(first, again)
    assert not torch.equal(first, carried)


def test_surrogate_gradient_flows():
    x = torch.full((4, 2), 0.3, requires_grad=True)
    CubaLIFNode()(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_strict_spike_value_and_gradient():
    x = torch.tensor([-0.5, 0.0, 0.5], requires_grad=True)
    s = strict_spike(x, surrogate.ATan(alpha=2.0))
    assert s.tolist() == [0.0, 0.0, 1.0]
    s.sum().backward()
    assert torch.all(x.grad > 0)


def test_parameters_are_plain_attributes():
    node = CubaLIFNode(current_decay=0.125, voltage_decay=0.0625, threshold=1.5)
    assert (node.current_decay, node.voltage_decay, node.threshold) == (0.125, 0.0625, 1.5)
    assert all(isinstance(v, float) for v in (node.current_decay, node.voltage_decay, node.threshold))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(current_decay=0.03), "current_decay"),
        (dict(voltage_decay=1.5), "voltage_decay"),
        (dict(threshold=1.01), "threshold"),
        (dict(threshold=0.0), "threshold"),
    ],
)
def test_unrepresentable_parameters_are_rejected(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        CubaLIFNode(**kwargs)
