"""Where a convolution's kernel taps land: the one definition of conv geometry.

Every count the project derives from a conv layer (fan-in and input axons for
the resource estimate, fan-out for the synaptic-operation counts, the sums of an
all-active frame and the scatter table of the native simulator) is built from
:func:`tap_positions`. Numpy only: the IR's readers and the native simulator
use it without torch.

The convention is torch's and Lava's cross-correlation: output position ``o``
reads, through kernel tap ``k``, input position ``o * stride - padding + k * dilation``
(outside ``[0, in_len)`` it reads the zero padding).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from export.ir import Conv

Int64Array = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def tap_positions(out_len: int, k: int, stride: int, pad: int, dil: int) -> Int64Array:
    """(out_len, k): the input index kernel tap k of output position o reads (may lie in the padding)."""
    return np.arange(out_len, dtype=np.int64)[:, None] * stride - pad + np.arange(k, dtype=np.int64)[None, :] * dil


def valid_taps(out_len: int, in_len: int, k: int, stride: int, pad: int, dil: int) -> BoolArray:
    """(out_len, k): whether kernel tap k of output position o lands inside the input."""
    pos = tap_positions(out_len, k, stride, pad, dil)
    valid: BoolArray = (pos >= 0) & (pos < in_len)
    return valid


def tap_hits(out_len: int, in_len: int, k: int, stride: int, pad: int, dil: int,
             rows: tuple[int, int] | None = None) -> Int64Array:
    """(k, in_len) int64: 1 where tap k of some output position (in ``rows``, default all) reads input i.

    For a given tap and input index at most one output position matches, so the entries are 0 or 1.
    """
    pos = tap_positions(out_len, k, stride, pad, dil)
    valid = (pos >= 0) & (pos < in_len)
    if rows is not None:
        keep = np.zeros(out_len, dtype=np.bool_)
        keep[rows[0]:rows[1]] = True
        valid &= keep[:, None]
    hit = np.zeros((k, in_len), dtype=np.int64)
    outs, taps = np.nonzero(valid)
    hit[taps, pos[outs, taps]] = 1
    return hit


def tap_outputs(in_len: int, out_len: int, k: int, stride: int, pad: int, dil: int) -> Int64Array:
    """(in_len, k): the output position that input i reaches through tap k, or -1 where none does."""
    pos = tap_positions(out_len, k, stride, pad, dil)
    table = np.full((in_len, k), -1, dtype=np.int64)
    outs, taps = np.nonzero((pos >= 0) & (pos < in_len))
    table[pos[outs, taps], taps] = outs
    return table


class ConvGeometry:
    """The tap tables of one conv layer on one input shape (both spatial axes).

    Args:
        weight_shape: (C_out, C_in / groups, kH, kW).
        in_shape, out_shape: (C, H, W) of the input and of the layer.
        stride, padding, dilation: (H, W) pairs.
        groups: channel groups.
    """

    def __init__(self, weight_shape: tuple[int, ...], in_shape: tuple[int, ...], out_shape: tuple[int, ...],
                 stride: tuple[int, int], padding: tuple[int, int], dilation: tuple[int, int], groups: int) -> None:
        self.c_out, self.per_group_in, self.k_h, self.k_w = (int(s) for s in weight_shape)
        self.c_in, self.h_in, self.w_in = (int(s) for s in in_shape)
        _, self.h_out, self.w_out = (int(s) for s in out_shape)
        self.stride, self.padding, self.dilation, self.groups = stride, padding, dilation, int(groups)

    @classmethod
    def of(cls, layer: Conv, in_shape: tuple[int, ...]) -> ConvGeometry:
        """The geometry of IR conv ``layer`` on input ``in_shape``."""
        return cls(tuple(layer.weight.shape), in_shape, tuple(layer.shape), layer.stride, layer.padding,
                   layer.dilation, layer.groups)

    def _axis(self, axis: int) -> tuple[int, int, int, int, int, int]:
        if axis == 0:
            return self.h_out, self.h_in, self.k_h, self.stride[0], self.padding[0], self.dilation[0]
        return self.w_out, self.w_in, self.k_w, self.stride[1], self.padding[1], self.dilation[1]

    def valid(self, axis: int) -> Int64Array:
        """(out_len, k) int64 of :func:`valid_taps` along ``axis`` (0: rows, 1: columns)."""
        out_len, in_len, k, s, p, d = self._axis(axis)
        return valid_taps(out_len, in_len, k, s, p, d).astype(np.int64)

    def hits(self, axis: int, rows: tuple[int, int] | None = None) -> Int64Array:
        """(k, in_len) of :func:`tap_hits` along ``axis``; ``rows`` restricts the output rows (axis 0)."""
        out_len, in_len, k, s, p, d = self._axis(axis)
        return tap_hits(out_len, in_len, k, s, p, d, rows if axis == 0 else None)

    def outputs(self, axis: int) -> Int64Array:
        """(in_len, k) of :func:`tap_outputs` along ``axis``."""
        out_len, in_len, k, s, p, d = self._axis(axis)
        return tap_outputs(in_len, out_len, k, s, p, d)

    def per_input_channel(self, per_output: npt.NDArray[Any]) -> Int64Array:
        """(C_out, C_in/g, kH, kW) -> (C_in, kH, kW): summed over the output channels of each input's group."""
        c_out_g = self.c_out // self.groups
        arr = np.asarray(per_output, dtype=np.int64)
        return np.concatenate([arr[g * c_out_g:(g + 1) * c_out_g].sum(axis=0) for g in range(self.groups)])

    def output_sums(self, per_tap: npt.NDArray[Any]) -> Int64Array:
        """(C_out, H_out, W_out): for each output neuron, ``per_tap[c, kh, kw]`` summed over its taps
        that land inside the input (the sum of a conv of an all-ones input with kernel ``per_tap``)."""
        return np.einsum("ckl,hk,wl->chw", np.asarray(per_tap, dtype=np.int64),  # type: ignore[no-any-return]
                         self.valid(0), self.valid(1), optimize=True)

    def input_sums(self, per_tap: npt.NDArray[Any], rows: tuple[int, int] | None = None) -> Int64Array:
        """(C_in, H_in, W_in): for each input neuron, ``per_tap[c_in, kh, kw]`` summed over the taps
        through which it reaches an output neuron (in output ``rows``, default all)."""
        return np.einsum("ckl,kh,lw->chw", np.asarray(per_tap, dtype=np.int64),  # type: ignore[no-any-return]
                         self.hits(0, rows), self.hits(1), optimize=True)
