"""Export a float spiking model to ONNX, unrolled over a fixed number of time steps.

The exported graph takes frames ``[T, B, C, H, W]`` (``T`` fixed at export
time, ``B`` dynamic) and returns the per-step outputs ``[T, B, num_classes]``
of a model whose neuron state starts from zero, as after
``spikingjelly.activation_based.functional.reset_net``. Every step is traced
into the graph, so any ONNX runtime runs it without loops or state.

Exporter choice (torch 2.14): the torch.export-based default (``dynamo=True``)
needs the ``onnxscript`` package, which is not a dependency, so the
TorchScript-based exporter (``dynamo=False``) is used. It cannot trace
spikingjelly's surrogate-gradient ``autograd.Function`` s (they would become
opaque ``PythonOp`` nodes no runtime knows), so during export each surrogate
module is swapped for its exact forward value, the Heaviside step ``x >= 0``;
the gradient, which ONNX inference never uses, is all that is dropped.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from hw_targets.errors import ExportError, MissingDependencyError

if TYPE_CHECKING:
    import torch

#: Opset of the written graph: supported by every onnxruntime the ``export`` extra allows (>= 1.16).
ONNX_OPSET = 17
#: Names of the graph's input (frames) and output (per-step outputs).
INPUT_NAME = "frames"
OUTPUT_NAME = "outputs"


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise MissingDependencyError(
            "ONNX export needs the package 'onnx'; install it with: pip install 'neuromoco[export]'"
        ) from None
    return onnx


@contextmanager
def _heaviside_surrogates(model: torch.nn.Module) -> Iterator[None]:
    """Swap every spikingjelly surrogate in ``model`` for its forward value (Heaviside) meanwhile."""
    import torch
    from spikingjelly.activation_based import surrogate

    class Heaviside(torch.nn.Module):
        """spikingjelly's surrogate forward pass, ``x >= 0`` as ``x``'s dtype, without the autograd.Function."""

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return (x >= 0).to(x.dtype)

    swapped: list[tuple[torch.nn.Module, str, torch.nn.Module]] = []
    try:
        for parent in list(model.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, surrogate.SurrogateFunctionBase):
                    swapped.append((parent, name, child))
                    setattr(parent, name, Heaviside())
        yield
    finally:
        for parent, name, child in reversed(swapped):
            setattr(parent, name, child)


def _unrolled(model: torch.nn.Module) -> torch.nn.Module:
    """``model`` behind a forward that first clears the neuron state."""
    import torch
    from spikingjelly.activation_based import functional

    class Unrolled(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, frames: torch.Tensor) -> torch.Tensor:
            # Traced once: the reset happens at trace time, so the graph starts every run from zero state.
            functional.reset_net(self.net)
            return self.net(frames)  # type: ignore[no-any-return]  # (T, B, num_classes)

    return Unrolled(model)


def export_onnx(
    model: torch.nn.Module,
    input_shape: tuple[int, int, int],
    steps: int,
    path: str | os.PathLike[str],
) -> Path:
    """Write ``model`` as an ONNX graph unrolled over ``steps`` time steps.

    The file is written to a temporary name in the target folder, checked with
    ``onnx.checker.check_model`` and then renamed, so a failed export never
    leaves a partial file. The model is exported in eval mode (batch-norm uses
    its running statistics); its mode, surrogates and state are restored.

    Args:
        model: a multi-step spiking model mapping frames ``[T, B, C, H, W]``
            (float32) to ``[T, B, num_classes]``.
        input_shape: ``(C, H, W)`` of one frame.
        steps: ``T``, the number of time steps the graph unrolls.
        path: the ``.onnx`` file to write.

    Returns:
        The path written. Its graph input ``frames`` is ``[steps, B, C, H, W]``
        float32 with a dynamic batch ``B``; its output ``outputs`` is
        ``[steps, B, num_classes]``.

    Raises:
        ExportError: bad ``input_shape`` or ``steps``, a missing output
            folder, or a model the exporter or the checker rejects.
        MissingDependencyError: the ``onnx`` package is not installed.
    """
    onnx = _import_onnx()
    import torch
    from spikingjelly.activation_based import functional

    out = Path(path)
    if len(input_shape) != 3 or any(int(s) <= 0 for s in input_shape):
        raise ExportError(f"{out}: input_shape {input_shape!r} must be three positive sizes (C, H, W)")
    if int(steps) < 1:
        raise ExportError(f"{out}: steps={steps!r} must be >= 1")
    if not out.parent.is_dir():
        raise ExportError(f"{out}: folder {out.parent} does not exist")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    dummy = torch.zeros((int(steps), 1, *(int(s) for s in input_shape)), device=device)  # (T, 1, C, H, W)
    was_training = model.training
    fd, tmp = tempfile.mkstemp(prefix=".onnx-", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        model.eval()
        with _heaviside_surrogates(model), warnings.catch_warnings():
            # The legacy-exporter notice is expected: see the module docstring for why it is used.
            warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
            torch.onnx.export(
                _unrolled(model),
                (dummy,),
                tmp,
                dynamo=False,
                opset_version=ONNX_OPSET,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: {1: "batch"}, OUTPUT_NAME: {1: "batch"}},
            )
        onnx.checker.check_model(tmp, full_check=True)
        os.replace(tmp, out)
    except OSError as exc:
        raise ExportError(f"{out}: cannot write ({exc})") from None
    except (RuntimeError, ValueError, TypeError, onnx.checker.ValidationError) as exc:
        raise ExportError(f"{out}: ONNX export failed ({type(exc).__name__}: {exc})") from None
    finally:
        model.train(was_training)
        functional.reset_net(model)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def run_onnx(path: str | os.PathLike[str], frames: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """Run an exported graph with onnxruntime on the CPU.

    Args:
        path: a file written by :func:`export_onnx`.
        frames: ``[T, B, C, H, W]``, converted to float32; ``T`` must be the
            exported number of steps.

    Returns:
        The per-step outputs ``[T, B, num_classes]``, float32.

    Raises:
        ExportError: the file cannot be loaded or the frames do not fit its input.
        MissingDependencyError: the ``onnxruntime`` package is not installed.
    """
    try:
        import onnxruntime
    except ImportError:
        raise MissingDependencyError(
            "running ONNX graphs needs the package 'onnxruntime'; install it with: pip install 'neuromoco[export]'"
        ) from None
    src = Path(path)
    x = np.asarray(frames, dtype=np.float32)
    try:
        session = onnxruntime.InferenceSession(str(src), providers=["CPUExecutionProvider"])
        (result,) = session.run([OUTPUT_NAME], {INPUT_NAME: x})
    except Exception as exc:  # onnxruntime raises its own exception types (Fail, InvalidArgument, NoSuchFile, ...)
        raise ExportError(f"{src}: onnxruntime could not run it on input {x.shape} ({exc})") from None
    return np.asarray(result, dtype=np.float32)
