"""NIR import: any chain of NIR nodes to the integer IR, quantized for Loihi 2, checked against a real reader.

* The NIR paper's N-MNIST CNN (``../shared/data/nir/cnn_sinabs.nir``, written by
  Sinabs) imports, fits Loihi 2, and on the 14 real N-MNIST recordings the
  integer network predicts what Norse (``norse.torch.from_nir``) predicts, with
  per-layer rates within a few percent; native equals Lava at every layer and
  step (a short run here, full recordings under ``slow``).
* Pooling folded into the next synapse, or mapped to a depthwise conv, is exact:
  with integer weights the integer network's spike counts equal Norse's.
* A graph Norse writes itself (``norse.torch.to_nir``: Conv2d + CubaLIF) imports
  and tracks Norse's run of it.
* Round trip: networks ``export.nir`` wrote come back identical (``networks_equal``).
* Bad input: one line naming the file, node or field; exit 2; nothing written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from export.examples import dense_network, kind_examples, random_spikes, small_conv_network
from export.ir import Network, networks_equal
from hw_targets.errors import ExportError
from netgen import KINDS, random_case
from shared_data import shared_file

nir = pytest.importorskip("nir")

from export.nir import to_nir, write_nir  # noqa: E402
from export.nir_import import ImportOptions, import_graph  # noqa: E402

#: The IR layers of cnn_sinabs.nir (pooling folded into the next synapse).
CNN_LAYERS = [("conv_1", "conv", (16, 16, 16)), ("conv_3", "conv", (16, 16, 16)), ("conv_6", "conv", (8, 8, 8)),
              ("flatten_8", "flatten", (512,)), ("dense_10", "dense", (256,)), ("dense_12", "dense", (10,))]
#: Rounding a weight to the nearest of 127 mantissa steps errs by at most half a step.
MAX_WEIGHT_ERROR = 0.5 / 127 + 1e-9
#: Measured on the 14 recordings: every neuron layer's spike counts correlate >= 0.995 with Norse's; this
#: bound leaves room for a reader's float rounding without hiding a mapping error (a wrong gain drops it < 0.9).
MIN_LAYER_CORRELATION = 0.98


def cnn_graph() -> Any:
    return nir.read(shared_file("nir", "cnn_sinabs.nir"))


def nmnist_root() -> Path:
    return shared_file("real_events", "nmnist")


# ----------------------------------------------------------------------------- cnn_sinabs.nir


def test_cnn_sinabs_imports_and_fits_loihi2() -> None:
    from export.check import check_network
    from hw_targets import get_target

    imported = import_graph(cnn_graph())
    net = imported.network
    assert [(l.name, l.kind, l.shape) for l in net.layers] == CNN_LAYERS
    assert net.input_shape == (2, 34, 34)
    check_network(net, get_target("loihi2"))
    for layer in net.layers:
        if layer.kind != "flatten":  # IF: the current does not persist, the voltage does not leak
            assert int(layer.neuron.i_decay) == 4096 and int(layer.neuron.v_decay) == 0  # type: ignore[union-attr]
    for rep in imported.layers:
        assert rep.weight_error <= MAX_WEIGHT_ERROR and rep.clipped == 0
        assert rep.threshold_error < 0.005
    notes = "\n".join(imported.format_table().splitlines())
    assert "SumPool2d '4' folded into conv '5'" in notes and "SumPool2d '7' folded into dense '9'" in notes
    assert notes.count("reset to 0 as NIR states") == 5


@pytest.fixture(scope="module")
def nmnist_batch() -> tuple[np.ndarray, list[int]]:
    """The 14 real N-MNIST recordings as binary 1 ms frames (B, T, 2, 34, 34) and their labels."""
    pytest.importorskip("tonic")
    from neuromoco.pipeline.nir_import import batch_frames, recordings

    items = recordings("nmnist", nmnist_root(), "all")
    assert len(items) == 14
    return batch_frames(items, (2, 34, 34), 1000), [label for _, label in items]


def test_cnn_sinabs_agrees_with_norse_on_real_nmnist(nmnist_batch: tuple[np.ndarray, list[int]]) -> None:
    pytest.importorskip("norse")
    from neuromoco.pipeline.nir_import import fixed_counts, layer_rates, reference_steps
    from sims.nir_reference import run_reference

    frames, labels = nmnist_batch
    graph = cnn_graph()
    imported = import_graph(graph)
    nodes = [r.neuron_node for r in imported.layers if r.neuron_node is not None]
    steps = reference_steps(imported.network, frames)
    ref = run_reference(graph, frames, steps, nodes)
    fixed, _ = fixed_counts(imported.network, frames)
    float_pred = ref.output.argmax(1)
    fixed_pred = fixed[-1].argmax(1)
    assert np.mean(float_pred == fixed_pred) >= 13 / 14  # measured: 14/14
    assert np.mean(fixed_pred == np.array(labels)) >= 12 / 14  # measured: 14/14
    for name, f, q, diff, corr in layer_rates(imported, fixed, ref.counts, steps):
        assert corr >= MIN_LAYER_CORRELATION, f"{name}: correlation {corr:.4f}"
        assert abs(f - q) <= 0.05 * f + 1e-4, f"{name}: rate {q:.4f} vs float {f:.4f}"


def _native_vs_lava(net: Network, frames: np.ndarray, tmp_path: Path) -> str | None:
    from export.netx import write_netx
    from sims.lava import run_lava
    from sims.native import simulate
    from sims.result import first_difference

    steps = frames.shape[1] + 5
    path = write_netx(net, tmp_path / "cnn.net")
    return first_difference(simulate(net, frames, steps), run_lava(path, frames, steps, net=net))


def test_cnn_sinabs_native_equals_lava_short(lava_netx: Any, nmnist_batch: tuple[np.ndarray, list[int]],
                                            tmp_path: Path) -> None:
    """One recording's busiest 40 ms (the saccade), every layer and step."""
    frames, _ = nmnist_batch
    assert _native_vs_lava(import_graph(cnn_graph()).network, frames[:1, 20:60], tmp_path) is None


@pytest.mark.slow
def test_cnn_sinabs_native_equals_lava_full(lava_netx: Any, nmnist_batch: tuple[np.ndarray, list[int]],
                                           tmp_path: Path) -> None:
    frames, _ = nmnist_batch
    assert _native_vs_lava(import_graph(cnn_graph()).network, frames[:3], tmp_path) is None


# ----------------------------------------------------------------------------- NIR out, run by Norse


def test_nir_out_runs_in_norse_equal_to_the_integer_network(nmnist_batch: tuple[np.ndarray, list[int]],
                                                             tmp_path: Path) -> None:
    """``export.nir``'s file of the imported CNN (IF layers: no decays, so no truncation) gives Norse
    (``from_nir``, dt = 1) exactly the integer network's spike count for every neuron on the 14 recordings."""
    pytest.importorskip("norse")
    from neuromoco.pipeline.nir_import import fixed_counts, reference_steps
    from sims.nir_reference import run_reference

    frames, _ = nmnist_batch
    net = import_graph(cnn_graph()).network
    graph = nir.read(write_nir(net, tmp_path / "cnn_int.nir"))
    steps = reference_steps(net, frames)
    layers = [i for i, layer in enumerate(net.layers) if layer.kind != "flatten"]
    ref = run_reference(graph, frames, steps, [f"{net.layers[i].name}.neuron" for i in layers])
    fixed, _ = fixed_counts(net, frames)
    for i in layers:
        assert np.array_equal(ref.counts[f"{net.layers[i].name}.neuron"], fixed[i]), net.layers[i].name


def test_nir_out_with_decays_tracks_norse(tmp_path: Path) -> None:
    """With decays, Loihi truncates toward zero every step and Norse does not: measured 98.8 % and 92.6 % of
    the conv neurons with equal counts over 54 steps, at most 2 spikes apart, correlation >= 0.998.
    Biases are left out: Norse 1.1 feeds a CubaLIF's v_leak into its synapse and starts v at v_leak."""
    pytest.importorskip("norse")
    import dataclasses

    from neuromoco.pipeline.nir_import import fixed_counts, reference_steps
    from sims.nir_reference import run_reference

    net = small_conv_network()
    net = Network(tuple(dataclasses.replace(l, bias=None) if hasattr(l, "bias") else l for l in net.layers),
                  net.input_shape)
    frames = random_spikes(1, (8, 50, 2, 34, 34), 0.1).astype(np.int32)
    graph = nir.read(write_nir(net, tmp_path / "conv.nir"))
    ref = run_reference(graph, frames, reference_steps(net, frames), ["conv0.neuron", "conv1.neuron"])
    fixed, _ = fixed_counts(net, frames)
    for i, node in enumerate(["conv0.neuron", "conv1.neuron"]):
        f, q = ref.counts[node].ravel(), fixed[i].ravel()
        assert np.mean(f == q) >= 0.9 and np.abs(f - q).max() <= 2 and np.corrcoef(f, q)[0, 1] >= 0.995, node


# ----------------------------------------------------------------------------- pooling is exact


def _pool_graph(pool: str, fold: bool) -> Any:
    """Input (2, 8, 8) -> conv 3x3 -> IF -> pool 2 -> [conv 3x3 | IF] -> IF ... with integer weights."""
    rng = np.random.default_rng(3)
    ones = lambda *s: np.ones(s)  # noqa: E731
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type={"input": np.array([2, 8, 8])}),
        "c0": nir.Conv2d(input_shape=(8, 8), weight=rng.integers(-2, 4, (4, 2, 3, 3)).astype(float), stride=1,
                         padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "n0": nir.IF(r=ones(4, 8, 8), v_threshold=3 * ones(4, 8, 8), v_reset=0 * ones(4, 8, 8)),
        "p0": getattr(nir, pool)(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
    }
    if fold:
        nodes["c1"] = nir.Conv2d(input_shape=(4, 4), weight=rng.integers(-2, 4, (3, 4, 3, 3)).astype(float),
                                 stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3))
    nodes["n1"] = nir.IF(r=ones(3 if fold else 4, 4, 4), v_threshold=4 * ones(3 if fold else 4, 4, 4),
                         v_reset=0 * ones(3 if fold else 4, 4, 4))
    nodes["output"] = nir.Output(output_type={"output": np.array([3 if fold else 4, 4, 4])})
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names[:-1], names[1:])))


@pytest.mark.parametrize("fold", [True, False], ids=["pool-folded-into-conv", "pool-as-depthwise-conv"])
def test_sum_pooling_is_exact(fold: bool) -> None:
    pytest.importorskip("norse")
    from neuromoco.pipeline.nir_import import fixed_counts, reference_steps
    from sims.nir_reference import run_reference

    graph = _pool_graph("SumPool2d", fold)
    imported = import_graph(graph)
    pooled = imported.network.layers[1]
    assert pooled.kind == "conv"
    if fold:
        assert pooled.weight.shape == (3, 4, 6, 6) and pooled.stride == (2, 2) and pooled.padding == (2, 2)
    else:
        assert pooled.groups == 4 and np.all(pooled.weight == 1)
    frames = random_spikes(5, (3, 12, 2, 8, 8), 0.4).astype(np.int32)
    ref = run_reference(graph, frames, reference_steps(imported.network, frames), ["n0", "n1"])
    fixed, _ = fixed_counts(imported.network, frames)
    for i, node in enumerate(["n0", "n1"]):
        assert np.array_equal(fixed[i], ref.counts[node]), node


def test_avg_pooling_maps_to_scaled_depthwise_conv() -> None:
    imported = import_graph(_pool_graph("AvgPool2d", fold=False))
    layer = imported.network.layers[1]
    rep = imported.layers[1]
    assert layer.groups == 4 and len(np.unique(layer.weight)) == 1
    # kernel 1/4 and threshold 4: one quarter of a threshold per spike, kept as an exact ratio
    assert int(layer.weight.flat[0]) * 16 == int(layer.neuron.v_th_mant) and rep.threshold_error == 0


# ----------------------------------------------------------------------------- a graph the reader wrote


def _norse_written_graph() -> Any:
    """Conv2d -> LIFCell -> Conv2d -> LIFCell written by ``norse.torch.to_nir`` (two CubaLIF nodes)."""
    torch = pytest.importorskip("torch")
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(0)
    c0, c1 = torch.nn.Conv2d(2, 4, 3, stride=2, padding=1), torch.nn.Conv2d(4, 3, 3, padding=1)
    with torch.no_grad():
        for conv in (c0, c1):
            conv.weight.mul_(30)  # the graph's input gain is 0.2 * 0.1: spikes need large weights
            conv.bias.zero_()
    return norse.to_nir(norse.SequentialState(c0, norse.LIFCell(), c1, norse.LIFCell()), torch.zeros(1, 2, 8, 8))


def test_norse_written_cubalif_conv_graph_imports_and_tracks_norse() -> None:
    """Norse 1.1 writes tau as dt/tau_inv (1e-3/200 for tau_syn_inv = 200): at dt = 1e-6 that is its
    decay of 0.2 per step. The import and Norse's run of the same graph then mean the same equations."""
    from neuromoco.pipeline.nir_import import fixed_counts, reference_steps
    from sims.nir_reference import run_reference

    graph = _norse_written_graph()
    assert [type(n).__name__ for n in graph.nodes.values()].count("CubaLIF") == 2
    imported = import_graph(graph, ImportOptions(dt=1e-6))
    net = imported.network
    assert [l.kind for l in net.layers] == ["conv", "conv"]
    neuron = net.layers[0].neuron  # type: ignore[union-attr]
    assert int(neuron.i_decay) == 819 and int(neuron.v_decay) == 410
    frames = random_spikes(1, (4, 30, 2, 8, 8), 0.3).astype(np.int32)
    ref = run_reference(graph, frames, reference_steps(net, frames), ["1", "3"], dt=1e-6)
    fixed, _ = fixed_counts(net, frames)
    for i, node in enumerate(["1", "3"]):
        f, q = ref.counts[node].ravel(), fixed[i].ravel()
        assert f.sum() > 10 and np.corrcoef(f, q)[0, 1] > 0.98 and np.abs(f - q).max() <= 2, node


def test_calibration_picks_a_factor_per_layer() -> None:
    from neuromoco.pipeline.nir_import import CALIBRATION_FACTORS, calibrate

    graph = _norse_written_graph()
    frames = random_spikes(2, (3, 20, 2, 8, 8), 0.3).astype(np.int32)
    opts = calibrate(graph, ImportOptions(dt=1e-6), frames)
    factors = dict(opts.scale_factors)
    assert set(factors) == {"conv_1", "conv_3"} and set(factors.values()) <= set(CALIBRATION_FACTORS)
    imported = import_graph(graph, opts)
    assert {r.name: round(r.scale / (1 << r.weight_exp), 6) for r in imported.layers} != {}


# ----------------------------------------------------------------------------- round trip


def _lowered_loihinet_s() -> Network:
    pytest.importorskip("torch")
    from export.lower import lower
    from neuromoco.models.registry import ModelConfig, build_model

    return lower(build_model(ModelConfig(name="loihinet_s"), (2, 34, 34), 10), (2, 34, 34))


ROUND_TRIP: dict[str, Callable[[], Network]] = {
    "loihinet_s": _lowered_loihinet_s,
    "small_conv": small_conv_network,
    "dense": dense_network,
    "input_neuron": lambda: kind_examples()[0],
}


@pytest.mark.parametrize("name", ROUND_TRIP)
def test_round_trip_gives_the_same_integer_network(name: str, tmp_path: Path) -> None:
    net = ROUND_TRIP[name]()
    path = write_nir(net, tmp_path / "net.nir")
    back = import_graph(nir.read(path)).network
    assert networks_equal(net, back)


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "extreme"])
def test_round_trip_random_networks_that_fit_loihi2(kind: str) -> None:
    """netgen networks within Loihi 2's limits come back equal, or (a per-channel parameter of a one-channel
    layer becomes a scalar) simulate identically."""
    from export.check import check_network
    from hw_targets import get_target
    from hw_targets.errors import TargetLimitError
    from sims.native import simulate

    checked = 0
    for seed in range(8):
        case = random_case(seed, kind)
        try:
            graph = to_nir(case.net)
            check_network(case.net, get_target("loihi2"))
        except (ExportError, TargetLimitError):
            continue  # per-synapse delays (no NIR form) or weights beyond the mantissa (re-quantized on import)
        back = import_graph(graph).network
        if not networks_equal(case.net, back):
            a, b = simulate(case.net, case.spikes, case.steps), simulate(back, case.spikes, case.steps)
            assert all(np.array_equal(x, y) for x, y in zip(a.spikes, b.spikes)), f"seed {seed}"
        checked += 1
    assert checked > 0


# ----------------------------------------------------------------------------- bad input


def _chain(*nodes: tuple[str, Any], edges: list[tuple[str, str]] | None = None) -> Any:
    names = [n for n, _ in nodes]
    return nir.NIRGraph(nodes=dict(nodes), edges=edges or list(zip(names[:-1], names[1:])), type_check=False)


def _dense_if_graph(**override: Any) -> Any:
    w = np.ones((3, 4))
    nodes = dict([("input", nir.Input(input_type={"input": np.array([4])})),
                  ("fc", nir.Linear(weight=w)),
                  ("lif", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3))),
                  ("output", nir.Output(output_type={"output": np.array([3])}))])
    nodes.update(override)
    return _chain(*nodes.items())


BAD_GRAPHS: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "unknown node": (lambda: _dense_if_graph(lif=nir.Threshold(threshold=np.ones(3))),
                     ("'lif' (Threshold)", "not supported")),
    "LI readout": (lambda: _dense_if_graph(lif=nir.LI(tau=np.ones(3) * 10, r=np.ones(3), v_leak=np.zeros(3))),
                   ("'lif' (LI)", "no spikes")),
    "Conv1d": (lambda: _chain(("input", nir.Input(input_type={"input": np.array([2, 8, 8])})),
                              ("c", nir.Conv1d(input_shape=8, weight=np.ones((2, 2, 3)), stride=1, padding=0,
                                               dilation=1, groups=1, bias=np.zeros(2))),
                              ("output", nir.Output(output_type={"output": np.array([2, 6])}))),
               ("'c' (Conv1d)", "no 1-D convolution")),
    "merge": (lambda: _chain(("input", nir.Input(input_type={"input": np.array([4])})),
                             ("a", nir.Linear(weight=np.ones((3, 4)))), ("b", nir.Linear(weight=np.ones((3, 4)))),
                             ("lif", nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.zeros(3))),
                             ("output", nir.Output(output_type={"output": np.array([3])})),
                             edges=[("input", "a"), ("input", "b"), ("a", "lif"), ("b", "lif"), ("lif", "output")]),
              ("'input' (Input) feeds 2 nodes",)),
    "shape mismatch": (lambda: _dense_if_graph(fc=nir.Linear(weight=np.ones((3, 5)))),
                       ("'fc' (Linear)", "field 'weight'", "expects 5 inputs")),
    "v_reset": (lambda: _dense_if_graph(lif=nir.IF(r=np.ones(3), v_threshold=np.ones(3), v_reset=np.ones(3))),
                ("'lif' (IF)", "field 'v_reset'")),
    "per-neuron threshold in a channel": (
        lambda: _chain(("input", nir.Input(input_type={"input": np.array([1, 3, 3])})),
                       ("c", nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 1, 1, 1)), stride=1, padding=0,
                                        dilation=1, groups=1, bias=np.zeros(1))),
                       ("lif", nir.IF(r=np.ones((1, 3, 3)), v_threshold=np.arange(1, 10.0).reshape(1, 3, 3),
                                      v_reset=np.zeros((1, 3, 3)))),
                       ("output", nir.Output(output_type={"output": np.array([1, 3, 3])}))),
        ("'lif' (IF)", "field 'v_threshold' varies within a channel")),
    "synapse without neuron": (lambda: _chain(("input", nir.Input(input_type={"input": np.array([4])})),
                                              ("fc", nir.Linear(weight=np.ones((3, 4)))),
                                              ("output", nir.Output(output_type={"output": np.array([3])}))),
                               ("'fc' (Linear)", "no neuron after it")),
    "tau below dt": (lambda: _dense_if_graph(lif=nir.LIF(tau=np.full(3, 0.5), r=np.ones(3), v_leak=np.zeros(3),
                                                         v_threshold=np.ones(3), v_reset=np.zeros(3))),
                     ("'lif' (LIF)", "field 'tau'", "below dt=1")),
}


@pytest.mark.parametrize("case", BAD_GRAPHS)
def test_bad_graph_is_refused_naming_the_node(case: str) -> None:
    make, parts = BAD_GRAPHS[case]
    with pytest.raises(ExportError) as info:
        import_graph(make())
    message = str(info.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    pytest.importorskip("torch")
    from neuromoco.cli import main

    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _write_graph(graph: Any, path: Path) -> Path:
    nir.write(path, graph)
    return path


BAD_FILES: dict[str, tuple[Callable[[Path], Path], tuple[str, ...]]] = {
    "truncated": (lambda d: _truncated(d / "cut.nir"), ("cut.nir", "not a readable NIR graph")),
    "not hdf5": (lambda d: _text(d / "text.nir"), ("text.nir", "not a readable NIR graph")),
    "hdf5 without a graph": (lambda d: _empty_h5(d / "empty.nir"), ("empty.nir", "not a readable NIR graph")),
    "missing": (lambda d: d / "absent.nir", ("absent.nir", "no such NIR file")),
    "unknown node": (lambda d: _write_graph(BAD_GRAPHS["unknown node"][0](), d / "unknown.nir"),
                     ("'lif' (Threshold)", "not supported")),
    "shape mismatch": (lambda d: _write_graph(BAD_GRAPHS["shape mismatch"][0](), d / "shape.nir"),
                       ("shape.nir", "type mismatch", "fc.input")),  # nir.read type-checks the edges
}


def _truncated(path: Path) -> Path:
    data = shared_file("nir", "cnn_sinabs.nir").read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _text(path: Path) -> Path:
    path.write_text("not a NIR graph\n")
    return path


def _empty_h5(path: Path) -> Path:
    import h5py

    with h5py.File(path, "w") as f:
        f.create_dataset("version", data=b"1.0")
    return path


@pytest.mark.parametrize("case", BAD_FILES)
def test_cli_export_bad_nir_file_exits_2_and_writes_nothing(case: str, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    make, parts = BAD_FILES[case]
    src = make(tmp_path)
    out = tmp_path / "out" / "model.net"
    out.parent.mkdir()
    code, _, err = _run_cli(["export", str(src), "--target", "loihi2", "--out", str(out),
                             "--nir", str(out.with_suffix(".nir"))], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nmoco export: error:"), err
    for part in parts:
        assert part in lines[0], lines[0]
    assert list(out.parent.iterdir()) == []


def _same_but_names(a: Network, b: Network) -> bool:
    from export.ir import to_dict

    strip = lambda net: [{k: v for k, v in d.items() if k != "name"} for d in to_dict(net)["layers"]]  # noqa: E731
    return strip(a) == strip(b)


def test_cli_export_cnn_sinabs_writes_netx_that_reads_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from export.netx import read_netx

    src = shared_file("nir", "cnn_sinabs.nir")
    out = tmp_path / "cnn.net"
    code, stdout, _ = _run_cli(["export", str(src), "--target", "loihi2", "--out", str(out),
                                "--nir", str(tmp_path / "cnn_int.nir")], capsys)
    assert code == 0
    assert "conv_6" in stdout and "folded" in stdout and "wrote" in stdout
    assert _same_but_names(read_netx(out), import_graph(cnn_graph()).network)  # netx stores no layer names
    again = import_graph(nir.read(tmp_path / "cnn_int.nir")).network  # the integer network as NIR, re-imported
    assert networks_equal(again, import_graph(cnn_graph()).network)
    assert (tmp_path / "cnn.net.json").is_file()


def test_cli_validate_cnn_sinabs_on_two_recordings(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("norse")
    pytest.importorskip("tonic")
    code, stdout, _ = _run_cli(["validate", str(shared_file("nir", "cnn_sinabs.nir")), "--data-root",
                                str(nmnist_root()), "--samples", "2", "--lava-samples", "0"], capsys)
    assert code == 0
    assert "accuracy native" in stdout and "agreement float/native  100.00%" in stdout
    assert "dense_12" in stdout


def test_cli_validate_nir_needs_data_root(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run_cli(["validate", str(shared_file("nir", "cnn_sinabs.nir"))], capsys)
    assert code == 2 and "--data-root" in err and len(err.strip().splitlines()) == 1
