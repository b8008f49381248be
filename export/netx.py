"""Lava/lava-dl netx HDF5 network files: the public entry points.

Reading lives in :mod:`export.netx_read` (its file access in :mod:`export.netx_h5`),
writing in :mod:`export.netx_write`, netx's dense-weight quirk in
:mod:`export.netx_dense`. Loihi register spellings (``vThMant``, ``iDecay``)
appear only in these modules.
"""

from __future__ import annotations

from export.netx_h5 import MAX_DATASET_ELEMENTS, MAX_LAYER_NEURONS
from export.netx_read import MAX_CONV_GEOMETRY, read_netx
from export.netx_write import check_writable, write_netx

__all__ = ["MAX_CONV_GEOMETRY", "MAX_DATASET_ELEMENTS", "MAX_LAYER_NEURONS", "check_writable", "read_netx",
           "write_netx"]
