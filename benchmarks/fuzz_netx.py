"""Fuzz ``export.netx.read_netx``: thousands of mutated netx files, each in its own process.

Seeds are files ``write_netx`` makes from small example networks (chains, and
residual graphs in neuromoco's graph layout, which also get graph-specific edits
of their edges, names and header) and copies of
Intel's netx files in ``../shared/data/lava_netx`` (when present; copied to a
temporary folder, never opened for writing in place). Every case is one
mutation, alternately structure-aware (h5py edits of datasets and groups) and
byte-level (bit flips, overwrites, truncation, deletion, insertion, splices);
see ``tests/netx_mutations.py``. A forked child runs the property of
``check_case``: ``read_netx`` gives a ``Network`` or one clean ``ExportError``; a
network survives ``write_netx`` -> ``read_netx`` unchanged and a 2-step native
simulation (or a clean ``ExportError``/``SimulationError``). A case fails on
any other exception, a crash of the child (signal) or a hang (``--timeout``).

Case ``i`` of seed ``s`` is reproducible alone: ``--seed s --only i`` runs it
in-process and shows the traceback. The last line is machine-readable:
``fuzz_cases=<n> failures=<k>``.

Usage: .venv/bin/python benchmarks/fuzz_netx.py [--cases 5000] [--seed 0] [--jobs 2] [--timeout 20] [--graphs]
       [--no-simulate-graphs]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import select
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import numpy as np  # noqa: E402

from netx_mutations import check_case, mutate_bytes, mutate_structure, write_seed_files  # noqa: E402


def make_case(index: int, seed: int, seeds: list[Path], blobs: list[bytes], folder: Path) -> tuple[Path, str]:
    """Write case ``index``'s mutated file into ``folder``; returns its path and a description."""
    rng = random.Random(seed * 1_000_003 + index)
    source = rng.randrange(len(seeds))
    path = folder / "case.net"
    if index % 2 == 0:
        what = "; ".join(mutate_structure(rng, seeds[source], path, folder))
        return path, f"structure {seeds[source].name}: {what}"
    data, what = mutate_bytes(rng, blobs[source], blobs)
    path.write_bytes(data)
    return path, f"bytes {seeds[source].name}: {what}"


def _child(path: Path, folder: Path, timeout: float, fd: int) -> None:
    try:
        outcome = check_case(path, folder, limit=timeout)
        result = {"kind": outcome.kind, "seconds": outcome.seconds}
    except BaseException as exc:  # noqa: BLE001 - any escape is the finding
        result = {"kind": "failure", "error": f"{type(exc).__name__}: {exc}"[:500],
                  "where": traceback.format_exc().strip().splitlines()[-3:]}
    os.write(fd, json.dumps(result).encode())
    os._exit(0)


def _seeds(folder: Path, graphs_only: bool) -> list[Path]:
    paths = write_seed_files(folder)
    return [p for p in paths if p.name.startswith("graph_")] if graphs_only else paths


def run(cases: int, seed: int, jobs: int, timeout: float, verbose: bool,
        graphs_only: bool = False) -> tuple[Counter[str], list[str]]:
    counts: Counter[str] = Counter()
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="fuzz_netx_") as tmp:
        root = Path(tmp)
        seeds = _seeds(root / "seeds", graphs_only)
        blobs = [p.read_bytes() for p in seeds]
        running: dict[int, tuple[int, int, float, str, Path]] = {}  # pid -> (index, fd, start, what, folder)
        next_index = 0
        while next_index < cases or running:
            while next_index < cases and len(running) < jobs:
                folder = root / f"case{next_index}"
                folder.mkdir()
                path, what = make_case(next_index, seed, seeds, blobs, folder)
                r, w = os.pipe()
                pid = os.fork()
                if pid == 0:
                    os.close(r)
                    _child(path, folder, timeout, w)
                os.close(w)
                running[pid] = (next_index, r, time.monotonic(), what, folder)
                next_index += 1
            ready, _, _ = select.select([v[1] for v in running.values()], [], [], 0.05)
            for pid, (index, fd, start, what, folder) in list(running.items()):
                hung = time.monotonic() - start > timeout + 5
                if fd not in ready and not hung:
                    continue
                if hung:
                    os.kill(pid, signal.SIGKILL)
                chunks = []
                while fd in ready and (chunk := os.read(fd, 65536)):
                    chunks.append(chunk)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                del running[pid]
                _cleanup(folder)
                if hung:
                    result = {"kind": "failure", "error": f"hang: no result after {timeout + 5:.0f} s"}
                elif not chunks:
                    result = {"kind": "failure", "error": f"child crashed ({_describe_status(status)})"}
                else:
                    result = json.loads(b"".join(chunks))
                counts[result["kind"]] += 1
                if result["kind"] == "failure":
                    line = f"case {index} ({what}): {result['error']} {result.get('where', '')}"
                    failures.append(line)
                    print("FAIL", line, flush=True)
                elif verbose:
                    print(index, result["kind"], what, flush=True)
    return counts, failures


def _describe_status(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit {os.WEXITSTATUS(status)}"


def _cleanup(folder: Path) -> None:
    for item in folder.iterdir():
        item.unlink()
    folder.rmdir()


def only(index: int, seed: int, graphs_only: bool = False) -> None:
    """Run one case in this process, showing any traceback."""
    with tempfile.TemporaryDirectory(prefix="fuzz_netx_") as tmp:
        root = Path(tmp)
        seeds = _seeds(root / "seeds", graphs_only)
        blobs = [p.read_bytes() for p in seeds]
        folder = root / "case"
        folder.mkdir()
        path, what = make_case(index, seed, seeds, blobs, folder)
        print(what)
        print(check_case(path, folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (forked children)")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds a case may take")
    parser.add_argument("--only", type=int, default=None, help="run case N in-process and show the traceback")
    parser.add_argument("--verbose", action="store_true")
    parser.add_argument("--graphs", action="store_true", help="seed with the residual graph files only")
    parser.add_argument("--no-simulate-graphs", action="store_true",
                        help="read and round-trip networks from graph files without simulating them")
    args = parser.parse_args()
    if args.no_simulate_graphs:
        import netx_mutations

        netx_mutations.SIMULATE_GRAPHS = False
    import torch

    # One thread: forked children must not inherit a thread pool they cannot use.
    torch.set_num_threads(1)
    if args.only is not None:
        only(args.only, args.seed, args.graphs)
        return
    _warm_up()
    start = time.perf_counter()
    counts, failures = run(args.cases, args.seed, max(1, args.jobs), args.timeout, args.verbose, args.graphs)
    elapsed = time.perf_counter() - start
    total = sum(counts.values())
    print(f"{total} cases in {elapsed:.0f} s ({total / max(elapsed, 1e-9):.1f}/s): "
          f"{counts['network']} read as networks, {counts['refused']} refused with ExportError, "
          f"{counts['failure']} failures")
    print(f"fuzz_cases={total} failures={len(failures)}")


def _warm_up() -> None:
    """Compile (or load) the simulator's kernels once here, so children inherit them."""
    from export.examples import small_conv_network
    from netgen import random_case
    from sims.native import simulate

    from netx_mutations import graph_seed_networks

    for net in (small_conv_network(0, input_shape=(2, 10, 10), classes=4), random_case(0, "input_neuron").net,
                graph_seed_networks()["residual"]):
        simulate(net, np.zeros((2, *net.input_shape), dtype=np.int32), 2)


if __name__ == "__main__":
    main()
