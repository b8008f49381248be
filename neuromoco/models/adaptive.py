"""ASNN's adaptive LIF neuron and per-step read-out scale (He, arXiv:2408.12407; hhx0320/ASNN).

An adaptive neuron owns one learnable leak and one learnable input gain per
time step, both initialised to 0.5, and resets softly; the synapse and
batch-norm in front of it stay shared across steps. The read-out gets one
learnable scale per step. ``make_adaptive`` turns a built backbone of any
family into its adaptive version by swapping every spiking neuron in place
(same threshold, surrogate and reset detaching, so only the dynamics differ)
and wrapping the classifier; parameter names of everything else are kept.

Per-step parameters have no counterpart in a Loihi 2 neuron, whose decays and
threshold are fixed registers: both modules say so with
``per_step_parameters = True``, and ``export.lower.check_deployable`` refuses
them.
"""

from __future__ import annotations

from typing import Callable

import torch
from spikingjelly.activation_based import neuron, surrogate
from torch import nn

from hw_targets.errors import ConfigError
from neuromoco.models.neuron import strict_spike

#: Initial leak and input gain of every step (ASNN ``ASNNGIT/lenet_spiking.py``).
ASNN_INIT = 0.5


def _check_steps(steps: int, time_steps: int, where: str) -> None:
    if steps > time_steps:
        raise ConfigError(
            f"{where}: input has {steps} time steps, but the adaptive model was built for {time_steps} "
            "(it has one leak and gain per step); rebuild it with time_steps >= the data's n_time_bins"
        )


class AdaptiveLIFNode(neuron.BaseNode):
    """LIF neuron with a learnable leak and input gain per time step, soft reset; multi-step.

    For input current ``x[t]`` (the shared synapse's and batch-norm's output)::

        u[t] = leak[t] * u[t-1] + gain[t] * x[t]
        s[t] = H(u[t] - threshold)        # strict: spike iff u[t] > threshold
        u[t] = u[t] - threshold * s[t]    # soft reset by subtraction

    ``leak`` and ``gain`` are unconstrained, as in ASNN. ``u`` starts at 0; ``u``
    and the step counter are cleared by ``functional.reset_net``. A sequence
    may be fed in several calls (or step by step in ``step_mode="s"``); the
    counter picks each step's parameters. The state is float32 under autocast.

    Attributes:
        leak: ``(time_steps,)`` learnable leak per step.
        gain: ``(time_steps,)`` learnable input gain per step.
        time_steps: The longest sequence the neuron accepts.
        per_step_parameters: Always True; the exporter refuses such neurons.
    """

    per_step_parameters = True

    def __init__(
        self,
        time_steps: int,
        threshold: float = 1.0,
        surrogate_function: Callable[[torch.Tensor], torch.Tensor] | None = None,
        detach_reset: bool = True,
        step_mode: str = "m",
    ) -> None:
        """Build the neuron.

        Args:
            time_steps: Steps with their own leak and gain, >= 1.
            threshold: Firing threshold, > 0 (ASNN: 1).
            surrogate_function: spikingjelly surrogate; ``surrogate.ATan()`` when None.
            detach_reset: Do not back-propagate through the reset (forward unchanged).
            step_mode: ``"m"`` (input ``[T, B, ...]``) or ``"s"`` (input ``[B, ...]``).

        Raises:
            ConfigError: ``time_steps < 1`` or ``threshold <= 0``.
        """
        if not isinstance(time_steps, int) or time_steps < 1:
            raise ConfigError(f"AdaptiveLIFNode: time_steps={time_steps!r} must be a positive integer")
        if not threshold > 0:
            raise ConfigError(f"AdaptiveLIFNode: threshold={threshold!r} must be > 0")
        super().__init__(
            v_threshold=float(threshold),
            v_reset=None,  # soft reset
            surrogate_function=surrogate_function if surrogate_function is not None else surrogate.ATan(),
            detach_reset=detach_reset,
            step_mode=step_mode,
            backend="torch",
        )
        self.time_steps = time_steps
        self.leak = nn.Parameter(torch.full((time_steps,), ASNN_INIT))
        self.gain = nn.Parameter(torch.full((time_steps,), ASNN_INIT))
        self.register_memory("step_index", 0)

    @property
    def supported_backends(self) -> tuple[str, ...]:
        return ("torch",)

    def extra_repr(self) -> str:
        return (f"time_steps={self.time_steps}, threshold={self.v_threshold}, detach_reset={self.detach_reset}, "
                f"step_mode={self.step_mode}")

    def _step(self, x: torch.Tensor, u: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        u = self.leak[t] * u + self.gain[t] * x
        spike = strict_spike(u - self.v_threshold, self.surrogate_function)
        reset = spike.detach() if self.detach_reset else spike
        return spike, u - self.v_threshold * reset

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        """One step (the step counter picks the leak and gain).

        Args:
            x: Input current ``[B, ...]``.

        Returns:
            Spikes ``[B, ...]`` in {0, 1}, float32.
        """
        x = x.float()
        _check_steps(self.step_index + 1, self.time_steps, "AdaptiveLIFNode")
        u = self.v if isinstance(self.v, torch.Tensor) else torch.zeros_like(x)
        spike, self.v = self._step(x, u, self.step_index)
        self.step_index += 1
        return spike

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        """All steps of a sequence, continuing from the stored state and step counter.

        Args:
            x_seq: Input current ``[T, B, ...]``.

        Returns:
            Spikes ``[T, B, ...]`` in {0, 1}, float32.

        Raises:
            ConfigError: More steps than ``time_steps`` since the last reset.
        """
        x_seq = x_seq.float()
        start = self.step_index
        _check_steps(start + x_seq.shape[0], self.time_steps, "AdaptiveLIFNode")
        u = self.v if isinstance(self.v, torch.Tensor) else torch.zeros_like(x_seq[0])
        spikes = []
        for t in range(x_seq.shape[0]):
            spike, u = self._step(x_seq[t], u, start + t)
            spikes.append(spike)
        self.v = u
        self.step_index = start + x_seq.shape[0]
        return torch.stack(spikes)


class StepScaledReadout(nn.Module):
    """A read-out followed by ASNN's learnable per-step scale ``gamma[t]`` (initialised to 1).

    ``y[t] = gamma[t] * head(x)[t]``, so the time mean the loss sees is
    ``(1/T) sum_t gamma[t] z[t]``; a spike-count read-out becomes a weighted count.

    Attributes:
        head: The wrapped read-out (a linear layer, or a spiking block).
        step_scale: ``(time_steps,)`` learnable scale per step.
        per_step_parameters: Always True; the exporter refuses it.
    """

    per_step_parameters = True

    def __init__(self, head: nn.Module, time_steps: int) -> None:
        super().__init__()
        self.head = head
        self.time_steps = time_steps
        self.step_scale = nn.Parameter(torch.ones(time_steps))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each step of ``head(x)``.

        Args:
            x: ``[T, B, D]``.

        Returns:
            ``[T, B, num_classes]``.
        """
        out: torch.Tensor = self.head(x)
        _check_steps(out.shape[0], self.time_steps, "StepScaledReadout")
        scale = self.step_scale[: out.shape[0]].to(out.dtype)
        return out * scale.view(-1, *([1] * (out.dim() - 1)))


def _replace(root: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(root.get_submodule(parent_name) if parent_name else root, child, new)


def make_adaptive(model: nn.Module, time_steps: int) -> None:
    """Turn a backbone into its ASNN version, in place.

    Every spikingjelly neuron (``CubaLIFNode`` in ``loihinet``, ``LIFNode`` in
    the others) becomes an :class:`AdaptiveLIFNode` with the same threshold,
    surrogate, reset detaching and step mode; ``model.classifier`` is wrapped
    in a :class:`StepScaledReadout`.

    Args:
        model: A :class:`~neuromoco.models.base.SpikingBackbone`.
        time_steps: Steps with their own parameters (the data's ``T``).

    Raises:
        ConfigError: ``time_steps < 1``.
    """
    nodes = [(name, m) for name, m in model.named_modules() if isinstance(m, neuron.BaseNode)]
    for name, node in nodes:
        _replace(model, name, AdaptiveLIFNode(
            time_steps,
            threshold=float(node.v_threshold),
            surrogate_function=node.surrogate_function,
            detach_reset=bool(node.detach_reset),
            step_mode=node.step_mode,
        ))
    head = getattr(model, "classifier")
    assert isinstance(head, nn.Module)
    head_name = next(name for name, m in model.named_modules() if m is head)
    _replace(model, head_name, StepScaledReadout(head, time_steps))
