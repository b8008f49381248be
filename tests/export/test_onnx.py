"""ONNX export: the unrolled graph passes the checker and onnxruntime reproduces torch."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")

from spikingjelly.activation_based import functional, surrogate  # noqa: E402

from export.onnx import INPUT_NAME, OUTPUT_NAME, export_onnx, run_onnx  # noqa: E402
from hw_targets.errors import ExportError, MissingDependencyError  # noqa: E402
from neuromoco.models.registry import ModelConfig, build_model  # noqa: E402

#: Outputs are spikes in {0, 1}; the weights, biases and batch-norm constants below are
#: multiples of 2**-6 and the inputs are 0/1, so every conv/matmul sum is exact in float32
#: whatever order torch or onnxruntime adds in, and the elementwise neuron updates are the
#: same IEEE operations in both. Any difference is therefore an export error (at least 1.0,
#: a flipped spike), never rounding; 1e-5 only allows for a representation change.
ATOL = 1e-5
INPUT_SHAPE = (2, 34, 34)
STEPS = 6
QUANTUM = 2.0**-6


def _dyadic(t: "torch.Tensor", gen: "torch.Generator", std: float) -> "torch.Tensor":
    return torch.round(torch.randn(t.shape, generator=gen) * std / QUANTUM) * QUANTUM


def spiking_loihinet_s(seed: int = 0) -> "torch.nn.Module":
    """loihinet_s with random dyadic weights large enough that every layer spikes (~30 %)."""
    gen = torch.Generator().manual_seed(seed)
    model = build_model(ModelConfig(name="loihinet_s"), INPUT_SHAPE, 10)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
                mod.weight.copy_(_dyadic(mod.weight, gen, 3.0 / mod.weight[0].numel() ** 0.5))
                if mod.bias is not None:
                    mod.bias.copy_(_dyadic(mod.bias, gen, 0.1))
            elif isinstance(mod, torch.nn.BatchNorm2d):
                # Pick running_var so that float32(var + eps) == 1: the normalisation is then exact.
                var = np.float32(1.0) - np.float32(mod.eps)
                while var + np.float32(mod.eps) != np.float32(1.0):
                    var = np.nextafter(var, np.float32(2.0))
                mod.running_var.fill_(float(var))
                mod.running_mean.copy_(_dyadic(mod.running_mean, gen, 0.2))
                mod.weight.copy_(1.0 + torch.round(torch.rand(mod.weight.shape, generator=gen) * 16) * QUANTUM)
                mod.bias.copy_(_dyadic(mod.bias, gen, 0.1))
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple["torch.nn.Module", Path]:
    model = spiking_loihinet_s()
    path = export_onnx(model, INPUT_SHAPE, STEPS, tmp_path_factory.mktemp("onnx") / "model.onnx")
    return model, path


def test_onnxruntime_equals_torch(exported: tuple["torch.nn.Module", Path]) -> None:
    pytest.importorskip("onnxruntime")
    model, path = exported
    gen = torch.Generator().manual_seed(1)
    # Exported with batch 1; run with batch 3 (the batch axis is dynamic).
    frames = (torch.rand((STEPS, 3, *INPUT_SHAPE), generator=gen) < 0.3).float()  # (T, B, C, H, W)
    model.eval()
    with torch.no_grad():
        functional.reset_net(model)
        expected = model(frames).numpy()  # (T, B, classes)
        functional.reset_net(model)
    got = run_onnx(path, frames.numpy())
    # (T + latency, B, classes) in hardware timing, the loihinet default; (T, B, classes) without.
    assert got.shape == expected.shape and expected.shape[0] >= STEPS and expected.shape[1:] == (3, 10)
    assert 0 < expected.sum() < expected.size, "the test network must spike, and not everywhere"
    np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
    # A second run starts from zero state again (the reset is part of the graph).
    np.testing.assert_allclose(run_onnx(path, frames.numpy()), expected, rtol=0, atol=ATOL)


def test_checker_passes_and_signature(exported: tuple["torch.nn.Module", Path]) -> None:
    _, path = exported
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    (inp,), (out,) = proto.graph.input, proto.graph.output
    dims = [d.dim_value or d.dim_param for d in inp.type.tensor_type.shape.dim]
    assert (inp.name, dims) == (INPUT_NAME, [STEPS, "batch", *INPUT_SHAPE])
    assert out.name == OUTPUT_NAME
    assert not [n.op_type for n in proto.graph.node if n.domain not in ("", "ai.onnx")], "only standard ops"
    assert not list(path.parent.glob(".onnx-*")), "temporary file left behind"


def test_model_restored_after_export(tmp_path: Path) -> None:
    model = spiking_loihinet_s()
    model.train()
    surrogates = [m for m in model.modules() if isinstance(m, surrogate.SurrogateFunctionBase)]
    export_onnx(model, INPUT_SHAPE, 2, tmp_path / "m.onnx")
    assert model.training
    assert [m for m in model.modules() if isinstance(m, surrogate.SurrogateFunctionBase)] == surrogates


def test_run_onnx_wrong_steps(exported: tuple["torch.nn.Module", Path]) -> None:
    pytest.importorskip("onnxruntime")
    _, path = exported
    with pytest.raises(ExportError, match="model.onnx"):
        run_onnx(path, np.zeros((STEPS + 1, 1, *INPUT_SHAPE), np.float32))


def test_bad_output_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "model.onnx"
    with pytest.raises(ExportError, match="does not exist"):
        export_onnx(spiking_loihinet_s(), INPUT_SHAPE, 2, target)
    assert not target.parent.exists()


def test_bad_arguments(tmp_path: Path) -> None:
    model = spiking_loihinet_s()
    with pytest.raises(ExportError, match="input_shape"):
        export_onnx(model, (2, 34), 2, tmp_path / "m.onnx")  # type: ignore[arg-type]
    with pytest.raises(ExportError, match="steps"):
        export_onnx(model, INPUT_SHAPE, 0, tmp_path / "m.onnx")


def test_missing_onnx_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(MissingDependencyError, match=r"'onnx'.*neuromoco\[export\]"):
        export_onnx(spiking_loihinet_s(), INPUT_SHAPE, 2, tmp_path / "m.onnx")


def test_missing_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(MissingDependencyError, match=r"'onnxruntime'.*neuromoco\[export\]"):
        run_onnx(tmp_path / "m.onnx", np.zeros((STEPS, 1, *INPUT_SHAPE), np.float32))
