"""What the native simulator keeps between calls, in one explicit, clearable object.

Four things make repeated simulations of the same network fast, and all live here:

- **plans**: per IR layer object, what its compiled kernel needs (effective weights,
  tap tables, neuron constants), built once; layers are immutable, so a plan never
  goes stale, and it is dropped with its layer (weak keys).
- **fan-out counts** of conv layers (:func:`sims.counts.conv_fanout`), per layer.
- **one spare block of spike memory**, reused by the next call once no result
  refers to it: fresh memory costs page faults (and huge-page compaction) inside
  the kernels; on a 2-core machine that was a third of a batch-64 PilotNet run.
- **the thread pool** the kernels run in (:func:`sims.jit_kernels.split_run`).

:data:`SIM_CACHE` is the simulator's instance; :meth:`SimulatorCache.clear`
empties it (tests, long-running services that want the memory back).
"""

from __future__ import annotations

import sys
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

import numpy as np
import numpy.typing as npt

T = TypeVar("T")

#: The spare block is kept only up to this size.
SPARE_MAX_BYTES = 1 << 30


class SimulatorCache:
    """Plans, fan-out counts, a spare spike block and a thread pool (see the module docstring)."""

    def __init__(self) -> None:
        self.plans: weakref.WeakKeyDictionary[Any, dict[tuple[Any, ...], Any]] = weakref.WeakKeyDictionary()
        self.fanout: weakref.WeakKeyDictionary[Any, npt.NDArray[np.int64]] = weakref.WeakKeyDictionary()
        self._spare: list[npt.NDArray[np.bool_]] = []
        self._lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None
        self._pool_workers = 0

    def plan(self, layer: object, key: tuple[Any, ...], build: Callable[[], T]) -> T:
        """The plan of ``layer`` under ``key``, built by ``build()`` the first time."""
        per_layer = self.plans.setdefault(layer, {})
        if key not in per_layer:
            per_layer[key] = build()
        plan: T = per_layer[key]
        return plan

    def take_block(self, size: int) -> npt.NDArray[np.bool_]:
        """A bool block of ``size`` bytes: the spare one when it is large enough and nothing refers to it."""
        with self._lock:
            block = self._spare.pop() if self._spare else None
        # References now: ``block`` and getrefcount's argument; any live result view adds one (views
        # keep their owner alive through ``.base``), so the spare is reused only when no result
        # of an earlier call can still see it.
        if block is not None and block.size >= size and sys.getrefcount(block) <= 2:
            return block[:size]
        return np.empty(size, dtype=np.bool_)

    def keep_block(self, view: npt.NDArray[np.bool_]) -> None:
        """Keep the block behind ``view`` as the spare for the next call."""
        block = view if view.base is None else view.base
        if isinstance(block, np.ndarray) and block.nbytes <= SPARE_MAX_BYTES:
            with self._lock:
                self._spare[:] = [block]

    def pool(self, workers: int) -> ThreadPoolExecutor:
        """A thread pool of at least ``workers`` threads (grown, never shrunk, until :meth:`clear`)."""
        with self._lock:
            if self._pool is None or self._pool_workers < workers:
                if self._pool is not None:
                    self._pool.shutdown(wait=False)
                self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="nmoco-sim")
                self._pool_workers = workers
            return self._pool

    def clear(self) -> None:
        """Drop every plan, count, the spare block and the thread pool."""
        self.plans.clear()
        self.fanout.clear()
        with self._lock:
            self._spare.clear()
            if self._pool is not None:
                self._pool.shutdown(wait=False)
            self._pool, self._pool_workers = None, 0


#: The native simulator's cache.
SIM_CACHE = SimulatorCache()
