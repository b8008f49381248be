"""The float CUBA-LIF neuron of the deployable ``loihinet`` family.

This is the neuron the QAT layers quantize and the exporter reads: its three
parameters are plain Python floats (``current_decay``, ``voltage_decay``,
``threshold``) so that ``export/lower.py`` can turn them into Loihi's 12-bit
decays and threshold mantissa without running the model.

spikingjelly's ``lava_exchange.CubaLIFNode`` does not fit: it quantizes the
state at every step (lava-dl ``cuba`` scaling), stores the decays as
``4096``-scaled buffers and fires on ``v >= threshold + eps``; here the
dynamics are float and the comparison is strict, exactly as Loihi's ``v > vth``.
"""

from __future__ import annotations

from typing import Callable

import torch
from spikingjelly.activation_based import neuron, surrogate

from hw_targets.constants import DECAY_UNITY, VTH_SHIFT
from hw_targets.errors import ConfigError

#: A threshold must be a multiple of this, so ``threshold * 2**VTH_SHIFT`` is an integer mantissa.
THRESHOLD_QUANTUM = 1.0 / (1 << VTH_SHIFT)


def check_cuba_params(current_decay: float, voltage_decay: float, threshold: float, where: str) -> None:
    """Check that CUBA-LIF parameters are representable on Loihi 2.

    Args:
        current_decay: Fraction of ``u`` lost per step, in [0, 1], a multiple of 1/4096.
        voltage_decay: Fraction of ``v`` lost per step, in [0, 1], a multiple of 1/4096.
        threshold: Firing threshold, > 0, a multiple of 1/64.
        where: What to name in the error (config section or layer).

    Raises:
        ConfigError: A value is out of range or not representable.
    """
    for field, value in (("current_decay", current_decay), ("voltage_decay", voltage_decay)):
        steps = value * DECAY_UNITY
        if not 0.0 <= value <= 1.0 or steps != round(steps):
            raise ConfigError(
                f"{where}: {field}={value!r} must lie in [0, 1] and be a multiple of 1/{DECAY_UNITY} "
                f"(Loihi decays are 12-bit); e.g. {round(min(max(value, 0.0), 1.0) * DECAY_UNITY)}/{DECAY_UNITY}"
            )
    mant = threshold / THRESHOLD_QUANTUM
    if threshold <= 0.0 or mant != round(mant):
        raise ConfigError(f"{where}: threshold={threshold!r} must be > 0 and a multiple of 1/{1 << VTH_SHIFT}")


def strict_spike(x: torch.Tensor, surrogate_function: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """Heaviside ``x > 0`` in the forward pass, ``surrogate_function``'s gradient in the backward pass.

    spikingjelly's surrogates fire on ``x >= 0``; Loihi fires on ``v > vth``. The
    straight-through sum below keeps the surrogate's gradient and makes the
    forward value exactly the strict step, also at ``x == 0``.

    Args:
        x: ``v - threshold``, any shape.
        surrogate_function: A spikingjelly surrogate (e.g. ``surrogate.ATan()``).

    Returns:
        Spikes in {0, 1}, same shape and dtype as ``x``.
    """
    smooth = surrogate_function(x)
    hard = (x > 0).to(x.dtype)
    return hard + (smooth - smooth.detach())


class CubaLIFNode(neuron.BaseNode):
    """Current-based LIF neuron (Loihi 2 CUBA dynamics in float), multi-step.

    For synaptic input ``x[t]`` (bias included), per step::

        u[t] = (1 - current_decay) * u[t-1] + x[t]
        v[t] = (1 - voltage_decay) * v[t-1] + u[t]
        s[t] = H(v[t] - threshold)          # strict: spike iff v[t] > threshold
        v[t] = v[t] * (1 - s[t])            # hard reset to 0; u is not reset

    ``u`` and ``v`` start at 0 and are cleared by ``functional.reset_net``.
    The state is computed in float32 even under autocast, so that half
    precision never decides a threshold crossing.

    Attributes:
        current_decay: ``c_d`` in [0, 1], a multiple of 1/4096.
        voltage_decay: ``v_d`` in [0, 1], a multiple of 1/4096.
        threshold: ``theta`` > 0, a multiple of 1/64 (alias of spikingjelly's ``v_threshold``).
    """

    def __init__(
        self,
        current_decay: float = 0.25,
        voltage_decay: float = 0.03125,
        threshold: float = 1.0,
        surrogate_function: Callable[[torch.Tensor], torch.Tensor] | None = None,
        detach_reset: bool = True,
        step_mode: str = "m",
    ) -> None:
        """Build the neuron.

        Args:
            current_decay: Fraction of the current lost per step.
            voltage_decay: Fraction of the voltage lost per step.
            threshold: Firing threshold.
            surrogate_function: spikingjelly surrogate; ``surrogate.ATan()`` when None.
            detach_reset: Do not back-propagate through the reset (forward unchanged).
            step_mode: ``"m"`` (input ``[T, B, ...]``) or ``"s"`` (input ``[B, ...]``).

        Raises:
            ConfigError: A parameter is not representable on Loihi 2.
        """
        check_cuba_params(current_decay, voltage_decay, threshold, "CubaLIFNode")
        super().__init__(
            v_threshold=float(threshold),
            v_reset=0.0,
            surrogate_function=surrogate_function if surrogate_function is not None else surrogate.ATan(),
            detach_reset=detach_reset,
            step_mode=step_mode,
            backend="torch",
        )
        self.current_decay = float(current_decay)
        self.voltage_decay = float(voltage_decay)
        self.register_memory("u", 0.0)

    @property
    def threshold(self) -> float:
        """The firing threshold (spikingjelly stores it as ``v_threshold``)."""
        return float(self.v_threshold)

    @property
    def supported_backends(self) -> tuple[str, ...]:
        return ("torch",)

    def extra_repr(self) -> str:
        return (
            f"current_decay={self.current_decay}, voltage_decay={self.voltage_decay}, "
            f"threshold={self.threshold}, detach_reset={self.detach_reset}, step_mode={self.step_mode}"
        )

    def _step(self, x: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        u = u * (1.0 - self.current_decay) + x
        v = v * (1.0 - self.voltage_decay) + u
        spike = strict_spike(v - self.v_threshold, self.surrogate_function)
        keep = 1.0 - (spike.detach() if self.detach_reset else spike)
        return spike, u, v * keep

    def _initial_state(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.u if isinstance(self.u, torch.Tensor) else torch.zeros_like(like)
        v = self.v if isinstance(self.v, torch.Tensor) else torch.zeros_like(like)
        return u, v

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step.

        Args:
            x: Synaptic input ``[B, ...]``.

        Returns:
            Spikes ``[B, ...]`` in {0, 1}, float32.
        """
        x = x.float()
        u, v = self._initial_state(x)
        spike, self.u, self.v = self._step(x, u, v)
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of a sequence, continuing from the stored state.

        Args:
            x_seq: Synaptic input ``[T, B, ...]``.

        Returns:
            Spikes ``[T, B, ...]`` in {0, 1}, float32.
        """
        x_seq = x_seq.float()
        u, v = self._initial_state(x_seq[0])
        spikes = []
        for t in range(x_seq.shape[0]):
            spike, u, v = self._step(x_seq[t], u, v)
            spikes.append(spike)
        self.u, self.v = u, v
        return torch.stack(spikes)
