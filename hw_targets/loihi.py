"""Loihi 2 and Loihi 1 as targets.

Sources:
- Loihi 2: Intel Labs technology brief "Taking Neuromorphic Computing to the Next
  Level with Loihi 2" (2021); Lava 0.10 ``lava/proc/lif/process.py`` register
  widths; lava-dl 0.6 ``netx/hdf5.py`` for the layer types a netx file may hold.
- Sigma-delta neurons (graded spikes): Lava 0.10 ``lava/proc/sdn``; the 32-bit payload
  limit from the technology brief. Loihi 1 has no graded spikes.
- Loihi 1: Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
  Learning", IEEE Micro 38(1):82-99, 2018, doi:10.1109/MM.2018.112130359.
"""

from __future__ import annotations

import dataclasses

from hw_targets.base import CoreLimits, EnergyTable, NumberFormats, Sourced, Target, register
from hw_targets import constants as C

_LAVA_LIF = "Lava 0.10 lava/proc/lif/process.py and models.py (PyLifModelBitAcc)"
_BRIEF = "Intel Labs, Loihi 2 technology brief (2021)"
_DAVIES = "Davies et al., IEEE Micro 2018, doi:10.1109/MM.2018.112130359"

_FORMATS = NumberFormats(
    weight_bits=C.WEIGHT_BITS,
    weight_exp_min=-8,
    weight_exp_max=7,
    decay_bits=C.DECAY_SHIFT,
    state_bits=C.STATE_BITS,
    vth_mant_bits=17,
    bias_mant_bits=C.BIAS_MANT_BITS,
    source=_LAVA_LIF,
)
#: Loihi 2 adds graded spikes: payloads up to 32 bits; Lava stores spike_exp/state_exp in 3 bits.
_LOIHI2_FORMATS = dataclasses.replace(
    _FORMATS,
    max_message_bits=C.LOIHI2_MAX_MESSAGE_BITS,
    message_exp_max=C.SDNN_EXP_MAX,
    source=_LAVA_LIF + "; graded spikes: " + _BRIEF + " (payloads up to 32 bits), Lava 0.10 lava/proc/sdn",
)

#: No per-operation energy of a graded spike has been published (reference section 15.3): the two
#: figures below are modelling assumptions, labelled as such wherever a report shows them.
_GRADED_ASSUMPTION = "ASSUMPTION, no published figure (Loihi 1 has no graded spikes; Loihi 2 per-op energies are not public)"

LOIHI1_ENERGY = EnergyTable(
    name="loihi",
    synop_pj=Sourced(23.6, _DAVIES + ", Table 2: energy per synaptic spike op (min)"),
    neuron_update_pj=Sourced(52.0, _DAVIES + ", Table 2: energy per neuron update (inactive)"),
    active_neuron_extra_pj=Sourced(29.0, _DAVIES + ", Table 2: 81 pJ active - 52 pJ inactive"),
    spike_pj=Sourced(1.7, _DAVIES + ", Table 2: within-tile spike energy"),
    caveat=(
        "Loihi 1 pre-silicon figures at 0.75 V; Loihi 2 per-operation energies are not "
        "public, so these stand in for it unless you pass your own table"
    ),
    graded_synop_pj=Sourced(23.6, _GRADED_ASSUMPTION + ": a synaptic op on a graded payload (weight x payload, "
                            "a MAC) charged as Loihi 1's binary synaptic spike op, " + _DAVIES + ", Table 2 (min)"),
    graded_message_pj=Sourced(1.7, _GRADED_ASSUMPTION + ": a graded message charged as one Loihi 1 spike, "
                              "the payload riding in the same message, " + _DAVIES + ", Table 2: within-tile spike"),
)


@register("loihi2")
def loihi2() -> Target:
    """Intel Loihi 2 (Intel 4), as programmed through Lava's netx loader."""
    return Target(
        name="loihi2",
        description="Intel Loihi 2, CUBA-LIF and sigma-delta (graded-spike) neurons through lava-dl netx",
        formats=_LOIHI2_FORMATS,
        limits=CoreLimits(
            neurons_per_core=Sourced(8192, _BRIEF + ": up to 1 M neurons over 128 cores"),
            synaptic_memory_bytes_per_core=Sourced(
                128 * 1024, _BRIEF + ": 192 KiB flexible memory per core, ~128 KiB usable as synaptic memory"
            ),
            fan_in_axons_per_core=Sourced(4096, "spikingjelly issue #543 (per-core input axons)"),
            fan_out_axons_per_core=Sourced(4096, "spikingjelly issue #543 (per-core output axons)"),
            cores_per_chip=Sourced(128, _BRIEF),
            neurons_per_chip=Sourced(1_048_576, _BRIEF),
            synapses_per_chip=Sourced(120_000_000, _BRIEF),
        ),
        layer_types=("input", "dense", "conv", "flatten"),
        energy=LOIHI1_ENERGY,
        notes=("Per-channel decays run in Lava's fixed_pt model; hardware support is unconfirmed.",),
    )


@register("loihi1")
def loihi1() -> Target:
    """Intel Loihi 1 (14 nm)."""
    return Target(
        name="loihi1",
        description="Intel Loihi 1, CUBA-LIF compartments (binary spikes only: no sigma-delta networks)",
        formats=_FORMATS,
        limits=CoreLimits(
            neurons_per_core=Sourced(1024, _DAVIES + ": 1,024 compartments per core"),
            synaptic_memory_bytes_per_core=Sourced(128 * 1024, _DAVIES + ": 128 KB synaptic memory per core"),
            fan_in_axons_per_core=Sourced(4096, _DAVIES + ": 4,096 input axons per core"),
            fan_out_axons_per_core=Sourced(4096, _DAVIES + ": 4,096 output axons per core"),
            cores_per_chip=Sourced(128, _DAVIES),
            neurons_per_chip=Sourced(131_072, _DAVIES),
            synapses_per_chip=Sourced(130_000_000, _DAVIES),
        ),
        layer_types=("input", "dense", "conv", "flatten"),
        energy=LOIHI1_ENERGY,
    )
