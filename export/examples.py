"""Small integer networks made from a seed: for the demo, the benchmarks and the tests.

These are not trained: they are random integer networks with plausible
activity, built so every layer kind and parameter form is exercised.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from export.ir import Conv, CubaNeuron, Dense, Flatten, InputLayer, Layer, Network, SigmaDeltaNeuron, conv_output_hw


def _neuron(rng: np.random.Generator, channels: int, per_channel: bool, vth: int | None = None) -> CubaNeuron:
    def draw(lo: int, hi: int) -> npt.NDArray[np.int32]:
        return rng.integers(lo, hi + 1, size=channels if per_channel else ()).astype(np.int32)

    return CubaNeuron(
        i_decay=draw(0, 4096),
        v_decay=draw(0, 4096),
        v_th_mant=np.int32(vth) if vth is not None else draw(1, 400),
    )


def dense_weight(rng: np.random.Generator, n_out: int, n_in: int, lo: int = -256, hi: int = 254) -> npt.NDArray[np.int32]:
    """Mixed-sign integer weights with at least one positive entry (netx needs max > 0)."""
    w = rng.integers(lo, hi + 1, size=(n_out, n_in)).astype(np.int32)
    if w.max() <= 0:
        w[0, 0] = max(hi, 1)
    return w


def conv_layer(
    rng: np.random.Generator,
    name: str,
    in_shape: tuple[int, ...],
    out_channels: int,
    kernel: int,
    stride: int = 1,
    padding: int = 0,
    dilation: int = 1,
    groups: int = 1,
    weight_range: int = 64,
    bias: bool = True,
    per_channel: bool = False,
    vth: int | None = None,
) -> Conv:
    """A random conv layer with its output shape computed from ``in_shape``."""
    h, w = conv_output_hw(in_shape[1:], (kernel, kernel), (stride, stride), (padding, padding), (dilation, dilation))  # type: ignore[arg-type]
    weight = rng.integers(-weight_range, weight_range + 1, size=(out_channels, in_shape[0] // groups, kernel, kernel))
    return Conv(
        name=name,
        shape=(out_channels, h, w),
        weight=weight.astype(np.int32),
        stride=(stride, stride),
        padding=(padding, padding),
        dilation=(dilation, dilation),
        groups=groups,
        bias=rng.integers(-50, 80, size=out_channels).astype(np.int32) if bias else None,
        neuron=_neuron(rng, out_channels, per_channel, vth),
    )


def small_conv_network(seed: int = 0, input_shape: tuple[int, int, int] = (2, 34, 34), classes: int = 10) -> Network:
    """conv(2->8, s2) -> conv(8->16, s2) -> flatten -> dense(64) -> dense(classes): the demo network."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    c1 = conv_layer(rng, "conv0", input_shape, 8, 3, stride=2, padding=1, weight_range=60, vth=60)
    c2 = conv_layer(rng, "conv1", c1.shape, 16, 3, stride=2, padding=1, weight_range=40, vth=80)
    n = int(np.prod(c2.shape))
    layers += [c1, c2, Flatten("flatten2", (n,))]
    layers.append(Dense("dense3", (64,), dense_weight(rng, 64, n, -40, 60),
                        rng.integers(-20, 20, size=64).astype(np.int32), _neuron(rng, 64, False, 100)))
    layers.append(Dense("dense4", (classes,), dense_weight(rng, classes, 64, -80, 120), None,
                        _neuron(rng, classes, False, 80)))
    return Network(tuple(layers), input_shape)


def pilotnet_shaped_network(seed: int = 0) -> Network:
    """Intel's PilotNet LIF shapes (input neuron, 5 conv, flatten, 4 dense) with random weights."""
    rng = np.random.default_rng(seed)
    in_shape = (3, 66, 200)
    neuron = CubaNeuron(np.int32(4096), np.int32(1024), np.int32(25), kind="LOIHI")
    layers: list[Layer] = [InputLayer("input0", in_shape, neuron)]
    shape: tuple[int, ...] = in_shape
    specs = [(24, 2, 0), (36, 2, 0), (48, 2, 0), (64, (2, 1), (1, 0)), (64, 1, 0)]
    for i, (cout, stride, pad) in enumerate(specs, start=1):
        st = stride if isinstance(stride, tuple) else (stride, stride)
        pd = pad if isinstance(pad, tuple) else (pad, pad)
        hw = conv_output_hw(shape[1:], (3, 3), st, pd, (1, 1))  # type: ignore[arg-type]
        w = rng.integers(-12, 13, size=(cout, shape[0], 3, 3)).astype(np.int32)
        layers.append(Conv(f"conv{i}", (cout, *hw), w, st, pd, (1, 1), 1,
                           rng.integers(-30, 30, size=cout).astype(np.int32), neuron))
        shape = (cout, *hw)
    n = int(np.prod(shape))
    layers.append(Flatten("flatten6", (n,)))
    for i, width in enumerate((100, 50, 10), start=7):
        layers.append(Dense(f"dense{i}", (width,), dense_weight(rng, width, n, -14, 14),
                            rng.integers(-30, 30, size=width).astype(np.int32), neuron))
        n = width
    readout = CubaNeuron(np.int32(4096), np.int32(0), np.int32(131071), kind="LOIHI")
    layers.append(Dense("dense10", (1,), dense_weight(rng, 1, n, -24, 42), np.zeros(1, np.int32), readout))
    return Network(tuple(layers), in_shape)


def dense_network(seed: int = 0, sizes: tuple[int, ...] = (784, 128, 64, 10)) -> Network:
    """A dense CUBA chain such as lava-dl's MNIST tutorial network (784-128-64-10)."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Dense(f"dense{i}", (n_out,), dense_weight(rng, n_out, n_in, -60, 90), None,
                            CubaNeuron(np.int32(410), np.int32(410), np.int32(64))))
    return Network(tuple(layers), (sizes[0],))


def small_sdnn_network(seed: int = 0, in_shape: tuple[int, int, int] = (2, 16, 16), classes: int = 10) -> Network:
    """A small sigma-delta network: a Delta input layer, two strided ReLU convs, a dense layer and a
    Sigma readout (netx's graded-spike layout, as Intel's PilotNet SDNN)."""
    rng = np.random.default_rng(seed)
    layers: list[Layer] = [InputLayer("input0", in_shape, SigmaDeltaNeuron(np.int32(1)))]
    shape: tuple[int, ...] = in_shape
    for i, channels in enumerate((8, 12), start=1):
        hw = conv_output_hw((shape[1], shape[2]), (3, 3), (2, 2), (1, 1), (1, 1))
        weight = rng.integers(-12, 13, size=(channels, shape[0], 3, 3)).astype(np.int32)
        bias = rng.integers(-20, 30, size=channels).astype(np.int32)
        layers.append(Conv(f"conv{i}", (channels, *hw), weight, (2, 2), (1, 1), bias=bias,
                           neuron=SigmaDeltaNeuron(np.int32(int(rng.integers(0, 8))))))
        shape = (channels, *hw)
    n = int(np.prod(shape))
    layers.append(Flatten("flatten3", (n,)))
    layers.append(Dense("dense4", (32,), dense_weight(rng, 32, n, -16, 18), rng.integers(-10, 20, 32).astype(np.int32),
                        SigmaDeltaNeuron(np.int32(4))))
    layers.append(Dense("dense5", (classes,), dense_weight(rng, classes, 32, -20, 24), None,
                        SigmaDeltaNeuron(np.int32(0), sigma_output=True)))
    return Network(tuple(layers), in_shape)


def _reading(layer: Conv, sources: list[str]) -> Conv:
    """``layer`` reading the sum of ``sources``' spikes (a SEW ADD: one synapse per source)."""
    return dataclasses.replace(layer, sources=tuple(sources))


def _sew_block(
    rng: np.random.Generator,
    prefix: str,
    block_in: list[str],
    in_shape: tuple[int, ...],
    channels: int,
    stride: int,
    weight_range: int,
    vth: int,
) -> tuple[list[Layer], list[str], tuple[int, ...]]:
    """One SEW BasicBlock with ADD: ``conv1 -> conv2``, output = conv2's spikes + the shortcut's.

    The block's input is the sum of the spike tensors ``block_in`` (each a layer); the sum is never a
    layer of its own: every synapse that reads it reads each of those layers (the merge). The
    shortcut is the input itself, or, where the block changes shape, a 1x1 strided conv with neurons.

    Returns:
        The block's layers, the names whose spikes sum to its output, and the output shape.
    """
    conv1 = _reading(conv_layer(rng, f"{prefix}_conv1", in_shape, channels, 3, stride, 1,
                                weight_range=weight_range, vth=vth), block_in)
    conv2 = conv_layer(rng, f"{prefix}_conv2", conv1.shape, channels, 3, 1, 1, weight_range=weight_range, vth=vth)
    layers: list[Layer] = [conv1, conv2]
    if stride != 1 or channels != in_shape[0]:
        down = _reading(conv_layer(rng, f"{prefix}_down", in_shape, channels, 1, stride, 0,
                                   weight_range=weight_range, vth=vth), block_in)
        layers.append(down)
        return layers, [conv2.name, down.name], conv2.shape
    return layers, [conv2.name, *block_in], conv2.shape


def _average_pool(name: str, in_shape: tuple[int, ...], sources: list[str], scale: int, vth: int) -> Conv:
    """Global average pooling as a depthwise conv over the whole map: every weight ``scale / (H*W)``
    (at least 1), so the pooled sum is the average times ``scale``."""
    channels, h, w = in_shape
    weight = np.full((channels, 1, h, w), max(1, round(scale / (h * w))), dtype=np.int32)
    neuron = CubaNeuron(np.int32(0), np.int32(4096), np.int32(vth))
    return Conv(name, (channels, 1, 1), weight, groups=channels, neuron=neuron, sources=tuple(sources))


def small_residual_network(
    seed: int = 0,
    input_shape: tuple[int, int, int] = (2, 16, 16),
    classes: int = 10,
    channels: tuple[int, int] = (4, 8),
    dense_merge: bool = True,
) -> Network:
    """A small SEW residual graph (random CUBA weights within Loihi 2's limits), for tests.

    ``stem`` conv (s2) -> identity block -> downsampling block -> average pool (depthwise conv,
    merging the block's two outputs) -> flatten -> ``fc1``; with ``dense_merge``, ``fc2`` reads ``fc1``
    and the readout ``fc3`` reads both (a dense merge); else ``fc1`` is the readout.
    """
    rng = np.random.default_rng(seed)
    stem = conv_layer(rng, "stem", input_shape, channels[0], 3, 2, 1, weight_range=60, vth=60)
    layers: list[Layer] = [stem]
    out, shape = [stem.name], stem.shape
    for prefix, width, stride in (("block1", channels[0], 1), ("block2", channels[1], 2)):
        block, out, shape = _sew_block(rng, prefix, out, shape, width, stride, 40, 70)
        layers += block
    pool = _average_pool("pool", shape, out, 64, 40)
    n = int(np.prod(pool.shape))
    layers += [pool, Flatten("flatten", (n,))]
    hidden = 16 if dense_merge else classes
    layers.append(Dense("fc1", (hidden,), dense_weight(rng, hidden, n, -40, 60),
                        rng.integers(-10, 20, size=hidden).astype(np.int32), _neuron(rng, hidden, False, 60)))
    if dense_merge:
        layers.append(Dense("fc2", (hidden,), dense_weight(rng, hidden, hidden, -40, 60), None,
                            _neuron(rng, hidden, False, 60)))
        layers.append(Dense("fc3", (classes,), dense_weight(rng, classes, hidden, -60, 90), None,
                            _neuron(rng, classes, False, 80), sources=("fc1", "fc2")))
    return Network(tuple(layers), input_shape)


def sew_resnet18_graph(
    input_shape: tuple[int, int, int] = (2, 34, 34),
    num_classes: int = 10,
    seed: int = 0,
    widths: tuple[int, int, int, int] = (64, 128, 256, 512),
) -> Network:
    """SEW-ResNet-18 (Fang et al. 2021, ADD connect) as an integer graph with random weights.

    ``widths`` are the four stages' channels: the paper's by default (refused by Loihi 2's fan-in in five
    convs of stages 3-4); ``(64, 128, 144, 224)`` is ``sew_resnet18_loihi``'s, which fits.

    7x7 stride-2 stem conv (no max-pool), four stages of two BasicBlocks (``conv1``, ``conv2``; the
    first block of stages 2-4 downsamples with stride 2 and a 1x1 stride-2 conv shortcut with
    neurons), global average pooling as a depthwise conv over the last map, flatten, dense
    classifier. A block's output (conv2's spikes plus the shortcut's) is never a layer: the ADD is
    merged into every synapse that reads it, so within a stage the sources add up (the second block
    of stage 1 reads ``stem``, ``stage1_block1_conv2``; the pool reads three layers).
    """
    rng = np.random.default_rng(seed)
    stem = conv_layer(rng, "stem", input_shape, widths[0], 7, 2, 3, weight_range=24, vth=120)
    layers: list[Layer] = [stem]
    out, shape = [stem.name], stem.shape
    for stage, width in enumerate(widths, start=1):
        for block in (1, 2):
            stride = 2 if stage > 1 and block == 1 else 1
            made, out, shape = _sew_block(rng, f"stage{stage}_block{block}", out, shape, width, stride, 8, 100)
            layers += made
    pool = _average_pool("avgpool", shape, out, 64, 40)
    n = int(np.prod(pool.shape))
    layers += [pool, Flatten("flatten", (n,))]
    layers.append(Dense("fc", (num_classes,), dense_weight(rng, num_classes, n, -40, 60), None,
                        _neuron(rng, num_classes, False, 80)))
    return Network(tuple(layers), input_shape)


def random_spikes(seed: int, shape: tuple[int, ...], rate: float) -> npt.NDArray[np.bool_]:
    """Bernoulli spike frames of the given shape (bool)."""
    return np.random.default_rng(seed).random(shape) < rate


def kind_examples() -> list[Network]:
    """Small networks that between them hold every IR layer kind (for the per-kind tests):
    an input layer with a neuron feeding conv -> flatten -> dense, and a conv-first network
    whose dense layer has synaptic delays."""
    rng = np.random.default_rng(7)
    in_shape = (2, 8, 8)
    inp = InputLayer("input0", in_shape, CubaNeuron(np.int32(0), np.int32(4096), np.int32(1)))
    conv = conv_layer(rng, "conv1", in_shape, 4, 3, stride=2, padding=1, weight_range=40, vth=40)
    n = int(np.prod(conv.shape))
    dense = Dense("dense3", (5,), dense_weight(rng, 5, n, -40, 60), None, _neuron(rng, 5, False, 60))
    first = Network((inp, conv, Flatten("flatten2", (n,)), dense), in_shape)
    conv0 = conv_layer(rng, "conv0", in_shape, 3, 3, stride=1, padding=0, weight_range=30, vth=30)
    n0 = int(np.prod(conv0.shape))
    delays = rng.integers(0, 3, size=(6, n0)).astype(np.int32)
    dense0 = Dense("dense2", (6,), dense_weight(rng, 6, n0, -30, 50), None, _neuron(rng, 6, False, 50), delays)
    second = Network((conv0, Flatten("flatten1", (n0,)), dense0), in_shape)
    return [first, second]
