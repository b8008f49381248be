"""Named constants of Loihi's fixed-point neuron arithmetic.

Every shift and width the project uses is defined here once and imported from
here. Sources: Lava 0.10 ``lava/proc/lif/models.py`` (``PyLifModelBitAcc``),
``lava/proc/conv/utils.py`` and lava-dl 0.6 ``netx/hdf5.py``; summarised in
``../shared/reference/loihi_netx.md`` sections 4, 6 and 7.
"""

from __future__ import annotations

from typing import Final

#: Decays are 12-bit fractions of this unity: ``x <- x * (DECAY_UNITY - d) / DECAY_UNITY``.
DECAY_SHIFT: Final[int] = 12
DECAY_UNITY: Final[int] = 1 << DECAY_SHIFT

#: Synaptic input ``a`` enters the current shifted left by this (Lava ``act_shift``).
ACT_SHIFT: Final[int] = 6
#: The threshold mantissa is compared after this left shift (Lava ``vth_shift``).
VTH_SHIFT: Final[int] = 6
#: netx sets ``bias_exp = 6`` on every CUBA layer, so ``bias_mant`` enters ``v`` shifted by 6.
BIAS_EXP: Final[int] = 6

#: Width of the current ``u`` and voltage ``v`` registers.
STATE_BITS: Final[int] = 24
#: ``u`` wraps into (-2**23, 2**23]; ``v`` saturates at +-(2**23 - 1).
STATE_HALF: Final[int] = 1 << (STATE_BITS - 1)
V_MAX: Final[int] = STATE_HALF - 1
#: The conv accumulator wraps to a signed 24-bit value (Lava ``signed_clamp(x, 24)``).
CONV_ACC_BITS: Final[int] = 24

#: Weight mantissas are 8-bit; the netx dense loader clips mixed-sign weights to this range.
WEIGHT_BITS: Final[int] = 8
NETX_MIXED_WEIGHT_MIN: Final[int] = -256
NETX_MIXED_WEIGHT_MAX: Final[int] = 254

#: Documented register ranges of the Lava LIF (u12 decays, u17 threshold, s13 bias).
DECAY_MAX: Final[int] = DECAY_UNITY
VTH_MANT_MAX: Final[int] = (1 << 17) - 1
#: The largest threshold mantissa the IR holds: one past the register, netx's default integrator's
#: ``1 << 17`` (see NETX_DEFAULT_VTH_MANT below), which never spikes.
VTH_MANT_IR_MAX: Final[int] = VTH_MANT_MAX + 1
BIAS_MANT_BITS: Final[int] = 13
#: Lava stores ``bias_mant`` as int16: the widest bias a netx file can carry.
BIAS_STORE_MIN: Final[int] = -(1 << 15)
BIAS_STORE_MAX: Final[int] = (1 << 15) - 1

#: Neuron parameters netx uses for a ``dense`` layer written without ``neuron/``
#: (``1 << 18 - 1`` parses as ``1 << 17``): u integrates, v = u + bias, it never spikes.
NETX_DEFAULT_I_DECAY: Final[int] = 0
NETX_DEFAULT_V_DECAY: Final[int] = DECAY_UNITY
NETX_DEFAULT_VTH_MANT: Final[int] = 1 << 17

#: DelayDense clips synaptic delays to this many steps.
NETX_MAX_DELAY: Final[int] = 62

# ----------------------------------------------------------------------------- sigma-delta (graded spikes)
# Sources: Lava 0.10 ``lava/proc/sdn/{process,models}.py`` (``PySigmaDeltaModelFixed``,
# ``PyDeltaModelFixed``, ``PySigmaModelFixed``) and lava-dl 0.6 ``netx/hdf5.py``
# (``get_neuron_params``: ``state_exp = 6``, ``spike_exp`` a Network argument, default 6).

#: netx's default graded-message position (``Network(spike_exp=6)``) and its fixed state position.
SDNN_SPIKE_EXP: Final[int] = 6
SDNN_STATE_EXP: Final[int] = 6
#: Lava stores ``spike_exp`` and ``state_exp`` with 3 bits of precision.
SDNN_EXP_MAX: Final[int] = 7
#: netx's default ``num_message_bits`` for SDNN layers (it cannot read ``messageBits`` from a file).
SDNN_MESSAGE_BITS: Final[int] = 16
#: Loihi 2's widest graded-spike payload (Intel's Loihi 2 technology brief, 2021).
LOIHI2_MAX_MESSAGE_BITS: Final[int] = 32
#: Lava's fixed-point sigma-delta ports and states are declared with 24 bits of precision.
SDNN_STATE_BITS: Final[int] = STATE_BITS
