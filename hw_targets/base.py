"""Target descriptions: frozen data, looked up by name.

A target is a table of number formats, per-core limits and energy coefficients,
each with the public source it comes from. Nothing here computes anything about
a network; the rule functions that check a network against a target live with
the exporter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable


@dataclass(frozen=True)
class Sourced:
    """A number together with where it comes from."""

    value: float
    source: str


@dataclass(frozen=True)
class NumberFormats:
    """Register widths of the neuron and synapse arithmetic, in bits."""

    weight_bits: int
    weight_exp_min: int
    weight_exp_max: int
    decay_bits: int
    state_bits: int
    vth_mant_bits: int
    bias_mant_bits: int
    source: str
    #: Widest graded-spike payload; 0: the target sends binary spikes only (no sigma-delta neurons).
    max_message_bits: int = 0
    #: Largest sigma-delta ``spike_exp``/``state_exp`` the target stores (unused without graded spikes).
    message_exp_max: int = 0


@dataclass(frozen=True)
class CoreLimits:
    """What one neuro-core and one chip hold."""

    neurons_per_core: Sourced
    synaptic_memory_bytes_per_core: Sourced
    fan_in_axons_per_core: Sourced
    fan_out_axons_per_core: Sourced
    cores_per_chip: Sourced
    neurons_per_chip: Sourced
    synapses_per_chip: Sourced


@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation in picojoules, with the source of each figure.

    ``synop_pj`` is charged per delivered synaptic event, ``neuron_update_pj``
    per neuron per step, ``active_neuron_extra_pj`` per spiking neuron update on
    top of that, and ``spike_pj`` per emitted spike. ``mac_pj``, when given, is
    charged per multiply-accumulate of the equivalent non-spiking network.

    Sigma-delta (graded-spike) networks only: ``graded_synop_pj`` per delivered
    synaptic event whose input is a graded payload (an effective MAC in
    NeuroBench's terms), ``graded_message_pj`` per emitted graded message. None:
    charged as ``synop_pj`` and ``spike_pj``. Built-in tables and the TOML loader
    live in ``hw_targets.energy_tables``.
    """

    name: str
    synop_pj: Sourced
    neuron_update_pj: Sourced
    active_neuron_extra_pj: Sourced
    spike_pj: Sourced
    mac_pj: Sourced | None = None
    caveat: str = ""
    graded_synop_pj: Sourced | None = None
    graded_message_pj: Sourced | None = None


@dataclass(frozen=True)
class Target:
    """A neuromorphic chip as the exporter and the energy model see it."""

    name: str
    description: str
    formats: NumberFormats
    limits: CoreLimits
    layer_types: tuple[str, ...]
    energy: EnergyTable | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)


_REGISTRY: dict[str, Callable[[], Target]] = {}


def register(name: str) -> Callable[[Callable[[], Target]], Callable[[], Target]]:
    """Register a target factory under ``name``."""

    def wrap(factory: Callable[[], Target]) -> Callable[[], Target]:
        _REGISTRY[name] = factory
        return factory

    return wrap


class UnknownTargetError(KeyError):
    """Raised for a target name that is not registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def get_target(name: str) -> Target:
    """Return the registered target ``name``.

    Raises:
        UnknownTargetError: if no target of that name exists; the message lists the known ones.
    """
    from hw_targets import loihi  # noqa: F401  (registers the built-in targets)

    try:
        return _REGISTRY[name]()
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownTargetError(f"unknown target {name!r}; known targets: {known}") from None


def target_names() -> tuple[str, ...]:
    """Names of all registered targets."""
    from hw_targets import loihi  # noqa: F401

    return tuple(sorted(_REGISTRY))
