"""The float reference of an imported NIR graph, run by a real NIR reader: Norse (``norse.torch.from_nir``).

Why Norse: it installs beside the project's pins (torch 2.14.1, numpy < 2,
Python 3.11) without changing them, reads every node type the importer maps
(``Affine``, ``Linear``, ``Conv2d``, ``Flatten``, ``SumPool2d``, ``IF``,
``LIF``, ``CubaLIF``), and its IF is NIR's (``v += I``, spike when
``v > v_threshold``, reset to 0). snnTorch 1.0 also installs, but reads
``IF`` as a leaky neuron (``beta = 0.9``) and has no ``SumPool2d``.

What is adjusted after loading, and why:

* ``Flatten`` nodes: NIR shapes have no batch axis, so a graph's
  ``Flatten(start_dim=0)`` would flatten the batch; the modules get
  ``start_dim=1`` (the NIR paper's own scripts do the same).

Timing: the reader has no synaptic delay, so the reference is compared with
the integer network through spike counts over the whole run (the integer
network runs the same input plus one step per synaptic layer).

``semantics="sinabs"`` runs the same graph with Sinabs' IF as the NIR paper's
CNN was trained (subtractive reset, membrane floored at ``-v_threshold``;
Sinabs' ``min_v_mem=-1`` for a threshold of 1), by correcting the state each
Norse IF cell returns. Sinabs' multi-spike output is not modelled. It measures
what the NIR file does not say and Loihi cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from hw_targets.errors import MissingDependencyError, SimulationError

#: Reference semantics: what the NIR file states, or Sinabs' IF (subtractive reset, lower bound).
SEMANTICS = ("nir", "sinabs")


@dataclass
class ReferenceResult:
    """Spike counts of the reference per NIR neuron node.

    Attributes:
        counts: per neuron node name, float64 ``(B, *shape)`` spikes summed over the run.
        output: ``(B, *out_shape)`` summed output spikes (the last neuron's).
    """

    counts: dict[str, npt.NDArray[np.float64]]
    output: npt.NDArray[np.float64]


def _import_norse() -> Any:
    try:
        import norse.torch as norse_torch
    except ImportError:
        raise MissingDependencyError(
            "the float reference of a NIR graph needs the package 'norse'; install it with: "
            "pip install 'neuromoco[export]'"
        ) from None
    return norse_torch


def load_reference(graph: Any, dt: float = 1.0) -> Any:
    """The NIR graph as a Norse module (``norse.torch.from_nir``), flatten nodes made batch-aware.

    Raises:
        MissingDependencyError: Norse is not installed.
        SimulationError: Norse cannot read the graph.
    """
    import logging

    import torch

    norse_torch = _import_norse()
    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # Norse logs r != 1 per node
    try:
        module = norse_torch.from_nir(graph, dt=dt, ignore_warnings=True)
    except Exception as exc:  # the reader raises what it raises; name it
        raise SimulationError(f"Norse cannot read the NIR graph: {type(exc).__name__}: {exc}") from None
    for sub in module.modules():
        if isinstance(sub, torch.nn.Flatten) and sub.start_dim == 0:
            sub.start_dim = 1
    return module.eval()


def _neuron_modules(module: Any, names: list[str]) -> dict[str, Any]:
    children = dict(module.named_children())
    # nirtorch names submodules after the nodes, dots replaced (torch forbids them in module names)
    found = {n: children.get(n, children.get(n.replace(".", "_"))) for n in names}
    missing = [n for n, cell in found.items() if cell is None]
    if missing:
        raise SimulationError(f"Norse's module has no submodule for NIR node(s) {missing}")
    return found


def _sinabs_hook(v_th: Any) -> Any:
    """A forward hook turning a Norse IF step into Sinabs' (subtract the threshold, floor at -threshold)."""
    from norse.torch.functional.iaf import IAFFeedForwardState

    def hook(module: Any, args: tuple[Any, ...], output: tuple[Any, Any]) -> tuple[Any, Any]:
        x = args[0]
        v_prev = args[1].v if len(args) > 1 and args[1] is not None else 0.0
        z = output[0]
        v = (v_prev + x - z * v_th).clamp(min=-v_th)
        return z, IAFFeedForwardState(v=v)

    return hook


def run_reference(
    graph: Any,
    frames: npt.NDArray[Any],
    steps: int,
    neuron_nodes: list[str],
    dt: float = 1.0,
    semantics: str = "nir",
) -> ReferenceResult:
    """Run the NIR graph in Norse on a batch and count spikes of the given neuron nodes.

    Args:
        graph: the ``nir.NIRGraph``.
        frames: ``(B, T, *input_shape)`` input values per step.
        steps: steps to run (inputs past T are zero).
        neuron_nodes: NIR neuron node names to count (the last one is the output).
        dt: the time step the reader integrates with.
        semantics: ``nir`` or ``sinabs`` (module docstring).

    Raises:
        MissingDependencyError: Norse is not installed.
        SimulationError: Norse cannot read or run the graph.
    """
    import torch

    if semantics not in SEMANTICS:
        raise SimulationError(f"unknown reference semantics {semantics!r}; choose one of {SEMANTICS}")
    module = load_reference(graph, dt)
    cells = _neuron_modules(module, neuron_nodes)
    counts: dict[str, Any] = {}
    handles = []
    for name, cell in cells.items():
        if semantics == "sinabs" and type(cell).__name__ == "IAFCell":
            handles.append(cell.register_forward_hook(_sinabs_hook(cell.p.v_th)))

        def count(mod: Any, args: Any, output: Any, name: str = name) -> None:
            z = output[0].detach().double()
            counts[name] = z if name not in counts else counts[name] + z

        handles.append(cell.register_forward_hook(count))
    x = torch.as_tensor(np.asarray(frames), dtype=torch.float32)  # (B, T, *shape)
    state = None
    try:
        with torch.no_grad():
            for t in range(steps):
                xt = x[:, t] if t < x.shape[1] else torch.zeros_like(x[:, 0])
                _, state = module(xt, state)
    except Exception as exc:
        raise SimulationError(f"Norse failed to run the NIR graph: {type(exc).__name__}: {exc}") from None
    finally:
        for h in handles:
            h.remove()
    out = {n: counts[n].numpy() for n in neuron_nodes}
    return ReferenceResult(out, out[neuron_nodes[-1]])
