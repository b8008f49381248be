"""Deployable SEW backbones: shapes and latency, ADD semantics (spikingjelly's, and the chip's timing),
the QAT twin against an integer reference and the native simulator, lowering and refusals."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, layer
from spikingjelly.activation_based.model import sew_resnet
from torch import nn

from export.ir import from_dict, to_dict
from export.lower import check_deployable, graph_quant_to_ir, lower
from export.check import check_network
from export.resources import estimate_resources
from hw_targets import constants as C
from hw_targets import get_target
from hw_targets.errors import TargetLimitError
from neuromoco.models import CubaLIFNode, ModelConfig, build_model
from neuromoco.models.loihinet import Flatten, LoihiBlock
from neuromoco.models.loihinet_sew import INPUT, SEW_SPECS, GraphLayer, LoihiGraphNet, build_sew
from neuromoco.quant.convert import to_quant
from neuromoco.quant.graph import QuantGraphNet
from neuromoco.quant.layers import QuantBlock
from sims import kernels
from sims.native import simulate
from sims.validate import float_layer_spikes

LOIHI2 = get_target("loihi2")

SHAPE = (2, 34, 34)
T, B, CLASSES = 4, 2, 10
# The neurons' defaults (ModelConfig): memoryless current, v decay 1/32, threshold 1.
NEURON = dict(current_decay=1.0, voltage_decay=0.03125, threshold=1.0)


def _frames(seed: int, steps: int = T, shape: tuple[int, ...] = SHAPE) -> torch.Tensor:
    return (torch.rand(steps, B, *shape, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def _lively(model: nn.Module, seed: int) -> nn.Module:
    """Random eval-mode batch-norm statistics and affine terms so every layer spikes sometimes."""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.5 + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=gen) * 2.0 + 1.0)
            m.bias.data.copy_(torch.rand(n, generator=gen) * 0.6 - 0.2)
    return model.eval()


def _sew_s(seed: int, hw_timing: bool = True, cnf: str = "ADD") -> LoihiGraphNet:
    torch.manual_seed(seed)
    model = build_sew(SEW_SPECS["loihinet_sew_s"], SHAPE, CLASSES, surrogate_alpha=2.0, batch_norm=True,
                      hw_timing=hw_timing, cnf=cnf, **NEURON)
    _lively(model, seed)
    return model


# -- shapes and latency -----------------------------------------------------------------------------


def test_loihinet_sew_s_layers_shapes_and_latency() -> None:
    model = build_model(ModelConfig(name="loihinet_sew_s"), SHAPE, CLASSES).eval()
    layers = {layer.name: layer for layer in model.graph()}
    assert layers["stem"].shape == (16, 17, 17) and layers["stem"].sources == (INPUT,)
    # Block 1 (identity shortcut): its output is stem + conv2, read by block 2's conv1 and downsample.
    assert layers["s2b0_conv1"].sources == layers["s2b0_down"].sources == ("stem", "s1b0_conv2")
    assert layers["s2b0_down"].shape == layers["s2b0_conv2"].shape == (32, 9, 9)
    # Block 2's output (downsample + conv2) is pooled (a depthwise 3x3 stride-2 conv) to keep the dense
    # layer's fan-in within Loihi 2's 4,096 (two flattened 32x9x9 sources would be 5,184).
    assert layers["pool"].sources == ("s2b0_down", "s2b0_conv2") and layers["pool"].shape == (32, 5, 5)
    assert layers["features"].sources == ("pool_flat",)
    assert layers["classifier"].sources == ("features",) and layers["classifier"].shape == (CLASSES,)
    # Longest path: stem, conv1, conv2, conv1, conv2, pool, features, classifier.
    assert model.latency == 8
    x = _frames(0)
    with torch.no_grad():
        out = model(x)
        functional.reset_net(model)
        feats = model.features(x)
        functional.reset_net(model)
        spikes = model.layer_spikes(x)
        # A linear probe trains the classifier on classifier_input: exactly what forward feeds it.
        probe = model.classifier_input(x)
        functional.reset_net(model)
        assert torch.equal(model.classifier(probe), out) and probe.shape[0] == T + 8 - 1
        functional.reset_net(model)
    assert out.shape == (T + 8, B, CLASSES) and feats.shape == (T, B, 128)
    assert [tuple(s.shape[2:]) for s in spikes] == [layer.shape for layer in model.graph()]
    assert all(s.shape[:2] == (T + 8, B) for s in spikes)
    assert torch.equal(spikes[-1], out)
    plain = build_model(ModelConfig(name="loihinet_sew_s", hw_timing=False), SHAPE, CLASSES)
    assert plain.latency == 0


def test_sew_resnet18_loihi_is_the_papers_topology_without_max_pool() -> None:
    model = build_model(ModelConfig(name="sew_resnet18_loihi"), SHAPE, CLASSES)
    layers = model.graph()
    convs = [layer for layer in layers if layer.kind == "conv"]
    # stem + 8 blocks x 2 convs + 3 downsamples + the pooling conv
    assert len(convs) == 1 + 16 + 3 + 1
    stem = model.blocks[0].synapse
    assert stem.in_channels == 2 and stem.kernel_size == (7, 7) and stem.stride == (2, 2)
    pool = model.blocks[[layer.name for layer in layers].index("pool")]
    assert pool.synapse.groups == 224 and pool.synapse.kernel_size == (3, 3) and pool.norm is not None
    assert max(len(layer.sources) for layer in layers) == 3  # an identity block after an identity block
    assert [model.blocks[[layer.name for layer in layers].index(f"s{s}b0_conv1")].synapse.out_channels
            for s in (1, 2, 3, 4)] == [64, 128, 144, 224]
    assert model.feature_dim == 224 and model.latency == 19


@pytest.mark.parametrize("shape, cores, chips", [((2, 34, 34), 102, 1), ((2, 128, 128), 937, 8)])
def test_sew_resnet18_loihi_fits_loihi2(shape: tuple[int, int, int], cores: int, chips: int) -> None:
    """Its stages 3-4 (144, 224 channels) keep every neuron within Loihi 2's 4,096 input axons, the widest
    merge included (s4b1_conv1: 2 sources x 3 x 3 x 224 = 4,032); the paper's 256/512 do not
    (tests/export/test_check.py)."""
    torch.manual_seed(0)
    net = lower(build_model(ModelConfig(name="sew_resnet18_loihi"), shape, CLASSES).eval(), shape)
    check_network(net, LOIHI2)
    table = estimate_resources(net, LOIHI2)
    assert (table.cores, table.chips) == (cores, chips)
    assert 4000 < max(layer.fan_in for layer in table.layers) <= 4032  # weights quantized to 0 do not count


# -- ADD semantics ----------------------------------------------------------------------------------


def _spikingjelly_block(ours: dict[str, LoihiBlock], prefix: str, inplanes: int, planes: int, stride: int,
                        cnf: str) -> nn.Module:
    """spikingjelly's own SEW BasicBlock with our weights and neurons."""
    downsample = None
    if f"{prefix}_down" in ours:
        downsample = nn.Sequential(layer.Conv2d(inplanes, planes, 1, stride, bias=False), layer.BatchNorm2d(planes))
    block = sew_resnet.BasicBlock(inplanes, planes, stride, downsample, cnf=cnf, spiking_neuron=CubaLIFNode, **NEURON)
    pairs = [(block.conv1, block.bn1, f"{prefix}_conv1"), (block.conv2, block.bn2, f"{prefix}_conv2")]
    if downsample is not None:
        pairs.append((downsample[0], downsample[1], f"{prefix}_down"))
    for conv, bn, name in pairs:
        conv.load_state_dict(ours[name].synapse.state_dict())
        bn.load_state_dict(ours[name].norm.state_dict())
    functional.set_step_mode(block, "m")
    return block.eval()


@pytest.mark.parametrize("cnf", ["ADD", "IAND"])
def test_merges_are_spikingjellys_sew_function_without_hardware_timing(cnf: str) -> None:
    """Without the synaptic delays the graph is spikingjelly's SEW network (the cnf's operand order too)."""
    model = _sew_s(1, hw_timing=False, cnf=cnf)
    ours = {l.name: b for l, b in zip(model.graph(), model.blocks) if isinstance(b, LoihiBlock)}
    block1 = _spikingjelly_block(ours, "s1b0", 16, 16, 1, cnf)
    block2 = _spikingjelly_block(ours, "s2b0", 16, 32, 2, cnf)
    x = _frames(1)
    with torch.no_grad():
        got = model.layer_spikes(x)
        stem = ours["stem"](x)
        out1 = block1(stem)
        out2 = block2(out1)
        feats = ours["features"](ours["pool"](out2).flatten(2))
        logits = ours["classifier"](feats)
    assert 0 < float(out2.mean()) and float(feats.mean()) > 0, "the test needs activity"
    names = [layer.name for layer in model.graph()]
    assert torch.equal(got[names.index("features")], feats)
    assert torch.equal(got[-1], logits)


def test_hardware_timing_sums_what_reaches_the_chip_at_each_step() -> None:
    """A step-by-step loop written from the chip's rule: at step k a synapse delivers its sources' spikes of
    step k - 1 (the merge sums them), the first step is bias only, and every layer runs T + L steps."""
    model = _sew_s(2)
    x = _frames(2)
    steps = T + model.latency
    frames = torch.cat([x, torch.zeros(model.latency, *x.shape[1:])])
    layers = model.graph()
    with torch.no_grad():
        got = model.layer_spikes(x)
        functional.reset_net(model)
        prev: dict[str, torch.Tensor] = {}
        ref: dict[str, list[torch.Tensor]] = {layer.name: [] for layer in layers}
        for k in range(steps):
            now: dict[str, torch.Tensor] = {INPUT: frames[k]}
            for layer, block in zip(layers, model.blocks):
                if layer.kind == "flatten":
                    now[layer.name] = now[layer.sources[0]].flatten(1)
                else:
                    inp = torch.zeros_like(now[layer.sources[0]]) if k == 0 else sum(prev[s] for s in layer.sources)
                    drive = block.synapse(inp)
                    if block.norm is not None:
                        drive = block.norm(drive)
                    now[layer.name] = block.neuron(drive[None])[0]
                ref[layer.name].append(now[layer.name])
            prev = now
        functional.reset_net(model)
    for i, layer in enumerate(layers):
        expected = torch.stack(ref[layer.name])
        assert torch.equal(got[i], expected), f"{layer.name}: first differing step " \
            f"{int((got[i] != expected).flatten(1).any(1).nonzero()[0])}"
    assert all(float(s.mean()) > 0 for s in got), "every layer must spike for the test to mean something"
    # The shortcut arrives before conv2: block 2's conv1 sees stem spikes two steps before conv2's.
    hops = {layer.name: model._hops[layer.name] for layer in layers}
    assert hops["s1b0_conv2"] - hops["stem"] == 2


# -- QAT twin ---------------------------------------------------------------------------------------


def _reference_run(qnet: QuantGraphNet, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The QAT graph's integer arithmetic from the simulator's kernels: int64 synaptic sums per source,
    int32 CUBA-LIF steps (sims.kernels.lif_step), one step of delay per hop."""
    spikes = qnet.prepare_input(x).to(torch.int64)  # (T + L, B, C, H, W)
    steps = spikes.shape[0]
    outs: dict[str, torch.Tensor] = {INPUT: spikes}
    runs = []
    for name, srcs, block in zip(qnet.layer_names, qnet.layer_sources, qnet.blocks):
        if not isinstance(block, QuantBlock):
            outs[name] = outs[srcs[0]].flatten(2)
            runs.append((outs[name], None, None))
            continue
        w = block.int_weight().detach().to(torch.float64)
        a = torch.zeros((steps, B, *block.synapse(outs[srcs[0]][0].float()).shape[1:]), dtype=torch.int64)
        for src in srcs:
            s = outs[src].to(torch.float64)
            for k in range(1, steps):  # step k delivers step k - 1
                if block.kind == "conv":
                    acc = nn.functional.conv2d(s[k - 1], w, stride=block.stride, padding=block.padding,
                                               dilation=block.dilation, groups=block.groups)
                else:
                    acc = s[k - 1] @ w.T
                a[k] += acc.round().to(torch.int64)
        b = block.int_bias().detach().to(torch.int32)
        bias = (b.view(-1, 1, 1) if block.kind == "conv" else b) << C.BIAS_EXP
        p = kernels.LifParams(C.DECAY_UNITY - block.i_decay, C.DECAY_UNITY - block.v_decay, bias,
                              block.v_th_mant << C.VTH_SHIFT)
        u = torch.zeros(a.shape[1:], dtype=torch.int32)
        v = torch.zeros_like(u)
        ss, us, vs = [], [], []
        for k in range(steps):
            u, v, s_k = kernels.lif_step(u, v, a[k].to(torch.int32), p)
            ss.append(s_k)
            us.append(u)
            vs.append(v)
        outs[name] = torch.stack(ss).to(torch.int64)
        runs.append((outs[name], torch.stack(us), torch.stack(vs)))
    return runs


@pytest.mark.parametrize("seed", [0, 1])
def test_qat_twin_equals_the_integer_reference(seed: int) -> None:
    qnet = to_quant(_sew_s(seed), SHAPE).eval()
    assert isinstance(qnet, QuantGraphNet) and qnet.latency == 8
    x = _frames(10 + seed)
    with torch.no_grad():
        got = qnet.run_layers(x)
        out = qnet(x)
    ref = _reference_run(qnet, x)
    assert torch.equal(out, got[-1][0])
    for name, (s, u, v), (rs, ru, rv) in zip(qnet.layer_names, got, ref):
        assert torch.equal(s.to(torch.int64), rs), f"{name} spikes"
        if u is not None:
            assert torch.equal(u.to(torch.int32), ru) and torch.equal(v.to(torch.int32), rv), f"{name} u/v"
    assert all(float(s.float().mean()) > 0 for s, _, _ in got), "every layer must spike"


def test_float_and_qat_agree_after_conversion() -> None:
    """With a memoryless current the conversion is exact up to rounding: most spikes agree in every layer."""
    model = _sew_s(3)
    qnet = to_quant(model, SHAPE).eval()
    x = _frames(3)
    with torch.no_grad():
        floats = model.layer_spikes(x)
        fixed = [s for s, _, _ in qnet.run_layers(x)]
    for name, f, q in zip(qnet.layer_names, floats, fixed):
        agree = float((f == q).float().mean())
        assert agree > 0.9, f"{name}: only {agree:.3f} of the spikes agree"
    counts = float_layer_spikes(model, x)
    assert [c.shape for c in counts] == [(B, *layer.shape) for layer in model.graph()]


def test_gradients_reach_every_block_through_the_merges() -> None:
    qnet = to_quant(_sew_s(4), SHAPE).train()
    qnet(_frames(4)).sum().backward()
    for name, block in zip(qnet.layer_names, qnet.blocks):
        if isinstance(block, QuantBlock):
            assert block.weight.grad is not None and float(block.weight.grad.abs().sum()) > 0, name


def test_qat_checkpoint_round_trip() -> None:
    """A QAT checkpoint is rebuilt as build_model -> to_quant -> load_state_dict (train/checkpoint.py)."""
    qnet = to_quant(_sew_s(5), SHAPE)
    fresh = to_quant(build_model(ModelConfig(name="loihinet_sew_s"), SHAPE, CLASSES).eval(), SHAPE)
    fresh.load_state_dict(qnet.state_dict())
    x = _frames(5)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), qnet.eval()(x))


# -- lowering ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SEW_SPECS))
def test_lowered_ir_is_the_graph(name: str) -> None:
    model = build_model(ModelConfig(name=name), SHAPE, CLASSES).eval()
    net = lower(model, SHAPE)
    assert net.is_graph and net.depth == model.latency
    assert [layer.name for layer in net.layers] == [layer.name for layer in model.graph()]
    for i, layer in enumerate(model.graph()):
        assert [net.layers[j].name for j in net.sources(i)] == [s for s in layer.sources if s != INPUT]
        assert net.layers[i].out_shape == layer.shape
    assert from_dict(to_dict(net)).depth == net.depth


def test_qat_equals_native_simulator_on_the_lowered_ir() -> None:
    """QAT twin == native simulator on the lowered graph: spikes, u and v in every layer at every step."""
    qnet = to_quant(_sew_s(6), SHAPE).eval()
    net = graph_quant_to_ir(qnet)
    x = _frames(6)
    with torch.no_grad():
        layers = qnet.run_layers(x)
    steps = T + qnet.latency
    result = simulate(net, x.transpose(0, 1).numpy().astype(np.int32), steps, record_state=True)
    assert result.layer_names == [layer.name for layer in net.layers]
    for i, (s, u, v) in enumerate(layers):
        to_np = lambda t: t.transpose(0, 1).numpy()  # noqa: E731  (T, B, ...) -> (B, T, ...)
        name = net.layers[i].name
        assert np.array_equal(result.spikes[i], to_np(s).astype(bool)), f"{name} spikes"
        if u is not None:
            assert np.array_equal(result.u[i], to_np(u).astype(np.int32)), f"{name} u"
            assert np.array_equal(result.v[i], to_np(v).astype(np.int32)), f"{name} v"
    assert all(r.any() for r in result.spikes), "every layer must spike"


def test_a_layer_reading_the_input_later_gets_an_input_layer() -> None:
    """A shortcut from the input itself: the IR starts with a shape-only input layer that the merge names."""
    node = lambda: CubaLIFNode(**NEURON)  # noqa: E731
    shape = (2, 6, 6)
    layers = [
        (GraphLayer("c1", "conv", (INPUT,), (2, 6, 6)), LoihiBlock(nn.Conv2d(2, 2, 3, 1, 1), None, node(), True)),
        (GraphLayer("c2", "conv", (INPUT, "c1"), (2, 6, 6)), LoihiBlock(nn.Conv2d(2, 2, 3, 1, 1), None, node(), True)),
        (GraphLayer("flat", "flatten", ("c2",), (72,)), Flatten()),
        (GraphLayer("out", "dense", ("flat",), (3,)), LoihiBlock(nn.Linear(72, 3), None, node(), True)),
    ]
    torch.manual_seed(7)
    model = LoihiGraphNet(layers, shape, hw_timing=True).eval()
    qnet = to_quant(model, shape).eval()
    net = lower(qnet, shape)
    assert [layer.name for layer in net.layers] == ["input", "c1", "c2", "flat", "out"]
    assert net.layers[2].sources == ("input", "c1") and net.depth == model.latency == 3
    x = _frames(7, shape=shape)
    with torch.no_grad():
        runs = qnet.run_layers(x)
    assert len(runs) == len(net.layers) == len(model.layer_spikes(x))
    result = simulate(net, x.transpose(0, 1).numpy().astype(np.int32), T + 3)
    for i, (s, _, _) in enumerate(runs):
        assert np.array_equal(result.spikes[i], s.transpose(0, 1).numpy().astype(bool)), net.layers[i].name


# -- refusals ---------------------------------------------------------------------------------------


def test_non_add_merges_are_refused_naming_the_layer() -> None:
    model = _sew_s(8, cnf="IAND")
    with pytest.raises(TargetLimitError, match=r"layer 's2b0_conv1' \(#3, conv\).*cnf='IAND'.*cnf='ADD'"):
        check_deployable(model)
    with pytest.raises(TargetLimitError, match=r"layer 's2b0_conv1'.*IAND"):
        to_quant(model, SHAPE)
    with pytest.raises(TargetLimitError, match=r"s2b0_conv1.*IAND"):
        lower(model, SHAPE)


def test_the_papers_sew_resnet18_points_at_its_deployable_form() -> None:
    model = build_model(ModelConfig(name="sew_resnet18"), SHAPE, CLASSES).eval()
    with pytest.raises(TargetLimitError, match=r"sew_resnet18_loihi"):
        lower(model, SHAPE)
    with pytest.raises(TargetLimitError, match=r"sew_resnet18_loihi"):
        to_quant(model, SHAPE)


def test_a_conv_whose_accumulator_could_wrap_is_refused() -> None:
    # 64 x 33 x 33 = 69696 inputs x 127 > 2**23 - 1: one Lava conv process could wrap on its own.
    node = lambda: CubaLIFNode(**NEURON)  # noqa: E731
    layers = [
        (GraphLayer("wide", "conv", (INPUT,), (1, 1, 1)), LoihiBlock(nn.Conv2d(64, 1, 33), None, node(), True)),
        (GraphLayer("flat", "flatten", ("wide",), (1,)), Flatten()),
        (GraphLayer("out", "dense", ("flat",), (2,)), LoihiBlock(nn.Linear(1, 2), None, node(), True)),
    ]
    model = LoihiGraphNet(layers, (64, 33, 33), hw_timing=True).eval()
    with pytest.raises(TargetLimitError, match=r"layer 'wide' \(#0, conv\): fan-in 69696.*24-bit accumulator"):
        to_quant(model, (64, 33, 33))


def test_bad_graphs_are_refused_at_construction() -> None:
    from hw_targets.errors import ConfigError

    node = lambda: CubaLIFNode(**NEURON)  # noqa: E731
    dense = lambda: LoihiBlock(nn.Linear(4, 4), None, node(), True)  # noqa: E731
    with pytest.raises(ConfigError, match=r"layer 'a': sources \['b'\] must name earlier layers"):
        LoihiGraphNet([(GraphLayer("a", "dense", ("b",), (4,)), dense()), (GraphLayer("b", "dense", ("a",), (4,)), dense())],
                      (4, 1, 1), True)
    with pytest.raises(ConfigError, match=r"layer 'a'.*cnf='OR'"):
        LoihiGraphNet([(GraphLayer("a", "dense", (INPUT,), (4,), "OR"), dense())], (4, 1, 1), True)
    copy.deepcopy(_sew_s(0))  # a built graph is an ordinary module (deepcopy: MoCo's momentum encoder)
