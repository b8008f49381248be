"""The result of a simulation, shared by the native and the Lava backends."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import numpy.typing as npt

from export.files import atomic_output
from hw_targets.errors import SimulationError


@dataclass
class SimResult:
    """Per-layer spikes (and optionally states) of a batch of runs.

    Attributes:
        layer_names: one name per IR layer.
        spikes: per layer, (B, steps, *shape) in C,H,W or N order: bool spikes (CUBA-LIF), or
            int32 graded messages (sigma-delta networks; 0 = no message).
        synops: (B, n_layers) int64 delivered synaptic events into each layer.
        u, v: per neuron layer, int32 (B, steps, *shape), or None where not recorded.
        backend: "native" or "lava".
        wall_s: seconds spent simulating (excluding the Lava build where reported apart).
    """

    layer_names: list[str]
    spikes: list[npt.NDArray[Any]]
    synops: npt.NDArray[np.int64]
    u: list[npt.NDArray[np.int32] | None] = field(default_factory=list)
    v: list[npt.NDArray[np.int32] | None] = field(default_factory=list)
    backend: str = "native"
    wall_s: float = 0.0
    build_s: float = 0.0

    @property
    def out_spikes(self) -> npt.NDArray[Any]:
        return self.spikes[-1]

    @property
    def graded(self) -> bool:
        """Whether the layers' outputs are graded messages (int32) rather than binary spikes."""
        return any(s.dtype != np.bool_ for s in self.spikes)

    @property
    def layer_spike_counts(self) -> npt.NDArray[np.int64]:
        """(B, n_layers) spikes (graded: nonzero messages) per layer and sample."""
        counts = np.stack([np.count_nonzero(s.reshape(s.shape[0], -1), axis=1) for s in self.spikes], axis=1)
        return np.asarray(counts, dtype=np.int64)

    def to_npz(self, path: str | os.PathLike[str], extra: dict[str, npt.NDArray[np.generic]] | None = None) -> Path:
        """Write the DESIGN.md result file atomically."""
        out = Path(path)
        arrays: dict[str, npt.NDArray[np.generic]] = {
            "out_spikes": self.out_spikes,
            "layer_spike_counts": self.layer_spike_counts,
            "synops": self.synops,
            "layer_names": np.array(self.layer_names),
        }
        for i, s in enumerate(self.spikes):
            arrays[f"layer{i}_spikes"] = s
        arrays.update(extra or {})
        with atomic_output(out, SimulationError, suffix=".npz") as tmp:
            np.savez_compressed(tmp, **arrays)
        return out


def first_difference(a: SimResult, b: SimResult, states: bool = False) -> str | None:
    """Describe the first layer and step where two results differ, or None if equal."""
    if a.layer_names != b.layer_names:
        return f"layer names differ: {a.layer_names} vs {b.layer_names}"
    pairs: list[tuple[str, Sequence[npt.NDArray[Any] | None], Sequence[npt.NDArray[Any] | None]]]
    pairs = [("spikes", a.spikes, b.spikes)]
    if states:
        pairs += [("u", a.u, b.u), ("v", a.v, b.v)]
    for i, name in enumerate(a.layer_names):
        for what, xs, ys in pairs:
            x, y = xs[i] if i < len(xs) else None, ys[i] if i < len(ys) else None
            if x is None or y is None:
                continue
            if x.shape != y.shape:
                return f"layer '{name}' (#{i}) {what}: shapes {x.shape} vs {y.shape}"
            if not np.array_equal(x, y):
                diff = np.argwhere(x != y)[0]
                return (f"layer '{name}' (#{i}) {what}: first difference at sample {diff[0]}, step {diff[1]}, "
                        f"neuron {tuple(int(d) for d in diff[2:])}: {x[tuple(diff)]} vs {y[tuple(diff)]}")
    return None
