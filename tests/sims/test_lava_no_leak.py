"""A Lava run that fails leaves no Lava process and no thread behind, and does not hang.

Three failures are injected: inside a Lava process model (the sink's ``run_spk``,
in a forked Lava process; Lava's own ``stop()`` hung forever on it), in this
process while reading results, and half-way through ``create_runtime`` after
the processes were started (nine processes used to stay alive). Each time
``run_lava`` must raise ``SimulationError`` quickly, and afterwards the
children of this process and its threads must be what they were before.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

from export.examples import dense_network, random_spikes
from export.netx import write_netx
from hw_targets.errors import SimulationError

pytestmark = pytest.mark.lava


def _children() -> set[int]:
    """Live child processes of this process (from /proc; psutil is not a dependency)."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == me and fields[0] != "Z":
            found.add(int(entry))
    return found


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _boom(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("injected failure")


def _in_process_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import lava.proc.io.sink as sink

    monkeypatch.setattr(sink.PyReceiveModelFixed, "run_spk", _boom)  # inherited by the forked Lava processes


def _while_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    from lava.magma.core.process.variable import Var

    monkeypatch.setattr(Var, "get", _boom)


def _while_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    from lava.magma.runtime.runtime import Runtime

    monkeypatch.setattr(Runtime, "_start_ports", _boom)  # the last step of initialize(), processes already run


@pytest.fixture(scope="module")
def model(lava_netx: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_netx(dense_network(0, (6, 4, 3)), tmp_path_factory.mktemp("leak") / "dense.net")


@pytest.mark.parametrize("inject", [_in_process_model, _while_reading, _while_starting],
                         ids=["in-lava-process", "reading-results", "starting-runtime"])
def test_failed_run_leaves_nothing_behind(inject: Callable[[pytest.MonkeyPatch], None], model: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from sims.lava import run_lava

    x = random_spikes(0, (5, 6), 0.5)
    run_lava(model, x, 8)  # a good run first: multiprocessing's resource tracker and Lava's imports are in place
    children, threads = _children(), _threads()
    assert not multiprocessing.active_children()
    inject(monkeypatch)
    start = time.monotonic()
    with pytest.raises(SimulationError, match="Lava run failed") as info:
        run_lava(model, x, 8)
    assert time.monotonic() - start < 60, "the failed run took too long to tear down"
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    deadline = time.monotonic() + 10  # killed processes are reaped and port threads end within moments
    while time.monotonic() < deadline and (_children() - children or _threads() - threads):
        time.sleep(0.05)
    assert _children() - children == set(), "Lava processes left running"
    assert not multiprocessing.active_children()
    assert [t.name for t in _threads() - threads] == [], "threads left running"
    run_lava(model, x, 8)  # and Lava still works afterwards
