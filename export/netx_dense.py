"""netx's dense-weight quirk, in one place: what lava-dl's loader does to a dense weight matrix.

lava-dl 0.6's netx dense loader (``netx/utils.py`` ``optimize_weight_bits``) clips
mixed-sign weights to [-256, 254], rescales the matrix to 8 bits, and Lava 0.10's
fixed-point Dense (``AbstractPyDenseModelBitAcc``, ``utils/weightutils.py``) clips
and truncates it again on its first step (reference ``loihi_netx.md`` section 6.1).
For most matrices the result is exact; for an all-zero matrix the loader crashes,
and for one whose weights are all <= 0 it corrupts them.

- :func:`dense_weight_fault` is the predicate: why netx would not load a matrix
  exactly, or None. The writer (:func:`export.netx_write.check_writable`) and the
  target rules (:mod:`export.check`) refuse on it.
- :func:`netx_dense_synapse` is what Lava then computes, for the native simulator,
  which reproduces even the corrupted cases.

Numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hw_targets import constants as C

#: Fault codes of :func:`dense_weight_fault`.
ZERO, NON_POSITIVE, MIXED_RANGE, EXCITATORY_RANGE = "zero", "non_positive", "mixed_range", "excitatory_range"


def dense_weight_range(weight: npt.NDArray[Any], bits: int = C.WEIGHT_BITS) -> tuple[int, int, str]:
    """The range netx keeps for dense weights with a ``bits``-bit mantissa, and its sign mode.

    Mixed-sign weights keep [-2**bits, 2**bits - 2] (netx clips to [-256, 254] for
    8 bits: ``C.NETX_MIXED_WEIGHT_MIN/MAX``), all-non-negative ones [0, 2**bits - 1].
    """
    if int(weight.min()) >= 0:
        return 0, (1 << bits) - 1, "excitatory"
    return -(1 << bits), (1 << bits) - 2, "mixed-sign"


def netx_clips(wmin: int, wmax: int) -> bool:
    """Whether netx's loader clips a mixed-sign matrix with this range to [-256, 254]."""
    return (wmax > C.NETX_MIXED_WEIGHT_MAX and wmin < 0) or (wmin < C.NETX_MIXED_WEIGHT_MIN and wmax > 0)


def dense_weight_fault(weight: npt.NDArray[Any], bits: int = C.WEIGHT_BITS) -> str | None:
    """Why netx would not deliver these dense weights exactly, or None when it does.

    Returns:
        :data:`ZERO` (all weights 0: the loader raises OverflowError), :data:`NON_POSITIVE`
        (every weight <= 0: the weight-bit optimisation corrupts them), :data:`MIXED_RANGE` or
        :data:`EXCITATORY_RANGE` (outside :func:`dense_weight_range`: clipped or corrupted).
    """
    wmax, wmin = int(weight.max()), int(weight.min())
    if wmax == 0 and wmin == 0:
        return ZERO
    if wmax <= 0:
        return NON_POSITIVE
    lo, hi, _ = dense_weight_range(weight, bits)
    if wmin < lo or wmax > hi:
        return MIXED_RANGE if wmin < 0 else EXCITATORY_RANGE
    return None


@dataclass(frozen=True)
class DenseSynapse:
    """What Lava's fixed_pt Dense computes from a netx ``weight`` matrix.

    Per step ``a = (weight_eff @ s) >> -weight_exp`` (arithmetic, floor) or
    ``<< weight_exp`` when ``weight_exp > 0``. For weight matrices with a
    positive maximum inside netx's range this equals ``weight @ s`` exactly.
    """

    weight_eff: npt.NDArray[np.int64]
    weight_exp: int
    exact: bool  # True when a == weight @ s for every input


def netx_dense_synapse(weight: npt.NDArray[np.integer[Any]]) -> DenseSynapse:
    """Reproduce netx ``optimize_weight_bits`` and Lava's first-step clip and truncation.

    Sources: lava-dl 0.6 ``netx/utils.py`` (optimize_weight_bits), Lava 0.10
    ``proc/dense/models.py`` (``AbstractPyDenseModelBitAcc.run_spk``) and
    ``utils/weightutils.py`` (``clip_weights``, ``truncate_weights``); reference
    section 6.1.

    Raises:
        ValueError: an all-zero matrix (netx's loader raises OverflowError on it).
    """
    w = np.asarray(weight).astype(np.int64)
    wmax, wmin = int(w.max()), int(w.min())
    if dense_weight_fault(w) == ZERO:
        raise ValueError("all-zero dense weights: netx's loader raises OverflowError on them")
    # --- netx: clip mixed-sign weights that do not fit.
    if netx_clips(wmin, wmax):
        w = np.clip(w, C.NETX_MIXED_WEIGHT_MIN, C.NETX_MIXED_WEIGHT_MAX)
        wmax, wmin = int(w.max()), int(w.min())
    full = 1 << C.WEIGHT_BITS  # 256
    if wmax < 0:
        is_signed, scale = 0, -full / wmin
    elif wmin >= 0:
        is_signed, scale = 0, (full - 1) / wmax
    else:
        # netx divides numpy integers: 127 / 0 is inf there (max == 0 with negatives).
        half = full // 2
        is_signed, scale = 1, min((half - 1) / wmax if wmax else math.inf, -half / wmin)
    scale_bits = math.floor(math.log2(scale)) + is_signed
    n = C.WEIGHT_BITS
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= is_signed
    num_weight_bits = C.WEIGHT_BITS - scale_bits - n
    weight_exp = -scale_bits
    if scale_bits >= 0:
        shifted = w << scale_bits
    else:  # numpy's left_shift by a negative count yields 0
        shifted = np.zeros_like(w)
    shifted = shifted.astype(np.int32).astype(np.int64)
    # --- Lava Dense, first step: sign mode recomputed from the shifted weights.
    if shifted.min() >= 0:
        mode = "exc"
    elif shifted.max() <= 0:
        mode = "inh"
    else:
        mode = "mixed"
    mixed = int(mode == "mixed")
    x = -shifted if mode == "inh" else shifted
    x = np.clip(x, -full * mixed, full - 1)
    t = C.WEIGHT_BITS - num_weight_bits + mixed
    x = (x >> t) << t if t >= 0 else np.zeros_like(x)
    eff = -x if mode == "inh" else x
    if weight_exp > 0:
        exact = bool(np.array_equal(eff << weight_exp, np.asarray(weight, dtype=np.int64)))
    else:
        exact = bool(np.array_equal(eff, np.asarray(weight, dtype=np.int64) << (-weight_exp)))
    return DenseSynapse(weight_eff=eff.astype(np.int64), weight_exp=int(weight_exp), exact=exact)
