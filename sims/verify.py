"""Native against Lava on the same file and input: the verdict and the speed ratio."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from export.ir import Network
from sims.lava import run_lava
from sims.native import simulate
from sims.result import SimResult, first_difference


@dataclass(frozen=True)
class BackendComparison:
    """How the native simulator and Lava compared on one file."""

    samples_native: int
    samples_lava: int
    steps: int
    first_difference: str | None
    native_s: float
    lava_run_s: float
    lava_build_s: float

    @property
    def equal(self) -> bool:
        return self.first_difference is None

    @property
    def native_rate(self) -> float:
        """Samples x steps per second."""
        return self.samples_native * self.steps / max(self.native_s, 1e-9)

    @property
    def lava_rate(self) -> float:
        """Steps per second of Lava's steady state (build excluded)."""
        return self.samples_lava * self.steps / max(self.lava_run_s, 1e-9)

    @property
    def speedup(self) -> float:
        return self.native_rate / self.lava_rate

    def verdict(self) -> str:
        if self.equal:
            return (f"native == Lava: identical spikes at every layer and step on {self.samples_lava} sample(s) "
                    f"x {self.steps} steps")
        return f"native != Lava: {self.first_difference}"


def compare_backends(
    path: str | os.PathLike[str],
    net: Network,
    spikes: npt.NDArray[np.generic],
    lava_samples: int,
    steps: int | None = None,
    **options: int,
) -> tuple[BackendComparison, SimResult]:
    """Simulate all samples natively and the first ``lava_samples`` in Lava; compare layer by layer.

    Returns:
        The comparison, and the native result for all samples.
    """
    simulate(net, np.asarray(spikes)[:1], 2)  # load the compiled kernels before timing
    native = simulate(net, spikes, steps, **options)  # type: ignore[arg-type]
    subset = np.asarray(spikes)[:lava_samples]
    lava = run_lava(path, subset, native.out_spikes.shape[1], net=net, **options)  # type: ignore[arg-type]
    head = SimResult(native.layer_names, [s[:lava_samples] for s in native.spikes], native.synops[:lava_samples])
    diff = first_difference(head, lava)
    if diff is None and not np.array_equal(head.synops, lava.synops):
        diff = "synaptic-operation counts differ"
    comparison = BackendComparison(
        samples_native=int(native.out_spikes.shape[0]),
        samples_lava=int(lava.out_spikes.shape[0]),
        steps=int(native.out_spikes.shape[1]),
        first_difference=diff,
        native_s=native.wall_s,
        lava_run_s=lava.wall_s,
        lava_build_s=lava.build_s,
    )
    return comparison, native
