"""Deployable residual backbones: SEW-ResNet blocks as a graph of conv/dense CUBA-LIF layers.

A :class:`LoihiGraphNet` is a list of named layers in execution order, each a
:class:`~neuromoco.models.loihinet.LoihiBlock` (synapse, optional foldable
batch-norm, :class:`CubaLIFNode`) or a :class:`~neuromoco.models.loihinet.Flatten`,
and each naming the layers it reads (``sources``; :data:`INPUT` is the frames).
A synaptic layer reading several sources merges them with a SEW connect
function (spikingjelly's :func:`~spikingjelly.activation_based.model.sew_resnet.sew_function`)
before its synapse. With ``cnf='ADD'`` that is a sum of spike tensors, and a
synapse of a sum is the sum of one synapse per source into the same neurons:
exactly what a Loihi 2 chip computes when several synapse processes feed one
neuron's ``a_in`` (the IR's ``sources``, ``export.ir.Network``). The layers
here are the IR's layers one for one, flatten layers included (a flatten
reshapes one source; a merge after a flatten is a dense layer reading two
flattens).

A SEW BasicBlock (Fang et al. 2021; spikingjelly's ``sew_resnet.BasicBlock``
with ``cnf='ADD'``) is conv-BN-LIF, conv-BN-LIF, then ``ADD`` with the block
input's spikes (or a strided 1x1 conv-BN-LIF downsample of them). The ADD is
not a layer: the layers that read the block's output read both of its sources.
spikingjelly's block itself is not used because it adds the branches at the
same step, which is not what the chip does (below).

Hardware timing (``hw_timing``): every synaptic hop is one step on the chip,
so the two branches of an ADD arrive with different latencies (the shortcut
takes fewer hops than ``conv2``). The float model therefore runs on the chip's
time axis of ``T + L`` steps (the input padded with ``L`` zero frames, ``L =
latency`` the longest path in synaptic hops), and every synapse delivers its
sources' spikes of step ``k - 1`` at step ``k`` (bias only at step 0). A merge
then sums, at each step, exactly the spikes that reach the chip's neurons at
that step. ``layer_spikes`` runs every layer for all ``T + L`` steps, as the
chip does; ``forward`` stops each layer where its steps could no longer reach
the output within the run (for a chain: layer ell runs ``T + ell`` steps,
exactly ``loihinet``'s timing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from spikingjelly.activation_based import functional, surrogate
from spikingjelly.activation_based.model.sew_resnet import sew_function
from torch import nn

from hw_targets.errors import ConfigError
from neuromoco.models.base import SpikingBackbone
from neuromoco.models.loihinet import Flatten, LoihiBlock
from neuromoco.models.neuron import CubaLIFNode

#: The source name of the network's input frames.
INPUT = "input"
#: SEW connect functions (spikingjelly's ``sew_function``); only ADD is a sum of spikes, which Loihi computes.
CONNECT_FUNCTIONS = ("ADD", "AND", "IAND")


@dataclass(frozen=True)
class GraphLayer:
    """One layer of a :class:`LoihiGraphNet`, as the IR will name it.

    Attributes:
        name: Stable layer name (the IR's and every report's).
        kind: ``conv``, ``dense`` or ``flatten``.
        sources: Names of the layers it reads (:data:`INPUT` for the frames), in merge order.
        shape: Output ``(C, H, W)`` or ``(N,)``.
        cnf: How several sources merge (spikingjelly's ``sew_function``, applied left to right).
    """

    name: str
    kind: str
    sources: tuple[str, ...]
    shape: tuple[int, ...]
    cnf: str = "ADD"


@dataclass(frozen=True)
class SewSpec:
    """The layer sizes of a named SEW variant.

    Attributes:
        stem: ``(out_channels, kernel, stride)`` of the stem conv (padding ``kernel // 2``).
        stages: Per stage ``(channels, blocks, stride)``; a stage's first block has the stride and, when the
            stride or the width changes, a 1x1 conv-BN-LIF downsample on the shortcut.
        feature_dim: Width of a spiking dense feature layer, or 0 for a spiking average pool (a depthwise conv
            over the whole last map + BN + LIF) whose channels are the features.
        pool: ``(kernel, stride)`` of a spiking local average pool before a dense feature layer (a depthwise
            conv, padding ``kernel // 2``, initialised to the mean, + BN + LIF), or ``None``. It keeps the
            dense layer's fan-in, twice the last map's size when it reads a merge, within Loihi 2's 4,096
            input axons per neuron.
    """

    stem: tuple[int, int, int]
    stages: tuple[tuple[int, int, int], ...]
    feature_dim: int
    pool: tuple[int, int] | None = None


#: ``loihinet_sew_s`` trains on ndigits on 2 CPU cores as ``loihinet_s`` does (its 3x3 stride-2 pool takes the
#: last block's 2 x 32 x 9 x 9 = 5,184 dense inputs at 2x34x34, over the chip's 4,096, to 32 x 5 x 5 = 800);
#: ``sew_resnet18_loihi`` is the paper's SEW-ResNet-18 (2-ch 7x7 stem, [2, 2, 2, 2] BasicBlocks, ADD) without
#: max pooling and with stages 3-4 narrowed from 256/512 to :data:`SEW_RESNET18_LOIHI_WIDTHS` (144, 224)
#: channels, the widest multiples of 16 whose neurons fit Loihi 2's 4,096 input axons: a 3x3 conv reading a
#: merge of k sources has fan-in 9 * k * C_in (``s4b0_conv1`` reads stage 3's three sources: 27 * 144 = 3,888;
#: ``s4b1_conv1`` two of stage 4's: 18 * 224 = 4,032). At the paper's widths five convs of stages 3-4 are
#: refused (4,600 to 9,204 inputs per neuron; ``export.examples.sew_resnet18_graph(widths=PAPER_WIDTHS)``).
SEW_RESNET18_PAPER_WIDTHS = (64, 128, 256, 512)
SEW_RESNET18_LOIHI_WIDTHS = (64, 128, 144, 224)
SEW_SPECS: dict[str, SewSpec] = {
    "loihinet_sew_s": SewSpec(stem=(16, 3, 2), stages=((16, 1, 1), (32, 1, 2)), feature_dim=128, pool=(3, 2)),
    "sew_resnet18_loihi": SewSpec(
        stem=(64, 7, 2),
        stages=tuple((width, 2, 1 if i == 0 else 2) for i, width in enumerate(SEW_RESNET18_LOIHI_WIDTHS)),
        feature_dim=0),
}


def _merge(inputs: list[torch.Tensor], cnf: str) -> torch.Tensor:
    """spikingjelly's SEW merge of several spike tensors, left to right (``sew_function(x, y, cnf)``)."""
    out = inputs[0]
    for other in inputs[1:]:
        out = sew_function(out, other, cnf)
    return out


class LoihiGraphNet(SpikingBackbone):
    """Named conv/dense CUBA-LIF layers reading named sources; read out by spike count.

    ``forward`` returns the classifier's spikes ``[T + L, B, num_classes]`` in hardware timing (the chip's
    run, ``L = latency``), ``[T, B, num_classes]`` otherwise. ``features`` are the classifier's source's
    spikes ``[T, B, feature_dim]`` (in hardware timing its steps ``L - 1 .. T + L - 2``, the first that can
    have seen the input, as ``loihinet`` does), and ``classify(features(x))`` differs from ``forward(x)`` only
    in the classifier's first ``L - 1`` steps.

    Attributes:
        blocks: The layers' modules, in execution order (``LoihiBlock`` or ``Flatten``).
        layers: What each is: :class:`GraphLayer`.
        hw_timing: Loihi's one-step synaptic delay per hop.
    """

    readout = "spike_count"

    def __init__(self, layers: Sequence[tuple[GraphLayer, nn.Module]], input_shape: tuple[int, int, int],
                 hw_timing: bool) -> None:
        """Build the network from its layers.

        Args:
            layers: ``(GraphLayer, module)`` in execution order; the last is the classifier, a synaptic layer
                reading one source (the feature layer).
            input_shape: ``(C, H, W)`` of one frame.
            hw_timing: Loihi's one-step synaptic delay per hop.

        Raises:
            ConfigError: A source that is no earlier layer, an unknown ``cnf``, a flatten or classifier
                reading several sources.
        """
        super().__init__()
        if not layers:
            raise ConfigError("a graph network needs at least its classifier layer")
        seen = {INPUT}
        for layer, _ in layers:
            if layer.name in seen:
                raise ConfigError(f"layer '{layer.name}': the name is taken (or is the input's, {INPUT!r})")
            missing = [s for s in layer.sources if s not in seen]
            if not layer.sources or missing:
                raise ConfigError(f"layer '{layer.name}': sources {list(layer.sources)} must name earlier layers")
            if layer.cnf not in CONNECT_FUNCTIONS:
                raise ConfigError(f"layer '{layer.name}': cnf={layer.cnf!r}; choose one of {list(CONNECT_FUNCTIONS)}")
            if layer.kind == "flatten" and len(layer.sources) != 1:
                raise ConfigError(f"layer '{layer.name}': a flatten reshapes one source, got {list(layer.sources)}")
            seen.add(layer.name)
        head = layers[-1][0]
        if head.kind == "flatten" or len(head.sources) != 1 or head.sources[0] == INPUT:
            raise ConfigError(f"layer '{head.name}': the classifier must be a synapse reading one feature layer")
        self.layers = tuple(layer for layer, _ in layers)
        self.blocks = nn.ModuleList([module for _, module in layers])
        self.input_shape = tuple(int(s) for s in input_shape)
        self.hw_timing = hw_timing
        self.num_classes = int(head.shape[0])
        index = {layer.name: i for i, layer in enumerate(self.layers)}
        feature = self.layers[index[head.sources[0]]]
        self.feature_dim = int(torch.tensor(feature.shape).prod())
        hops: dict[str, int] = {INPUT: 0}
        for layer in self.layers:
            hops[layer.name] = max(hops[s] for s in layer.sources) + int(layer.kind != "flatten")
        self._hops = hops
        # Synaptic hops on the shortest path from each layer's output to the classifier's: a layer's last
        # ``cut`` steps of the chip's run reach the output after the run ends, so training skips them.
        cut: dict[str, int] = {self.layers[-1].name: 0}
        for layer in reversed(self.layers):
            for source in layer.sources:
                through = cut.get(layer.name, 0) + int(layer.kind != "flatten")
                cut[source] = min(cut.get(source, through), through)
        self._cut = cut

    def graph(self) -> tuple[GraphLayer, ...]:
        """The layers, their sources and shapes: what the lowering turns into IR layers, one for one."""
        return self.layers

    @property
    def reads_input_later(self) -> bool:
        """Whether a layer but the first reads the frames (the IR then starts with a shape-only input layer)."""
        return any(INPUT in layer.sources for layer in self.layers[1:])

    @property
    def latency(self) -> int:
        """``L``: synaptic hops on the longest path from the input to the classifier (0 without hardware timing)."""
        return self._hops[self.layers[-1].name] if self.hw_timing else 0

    @property
    def classifier(self) -> nn.Module:
        """The last layer: dense synapse and spiking neuron (``blocks[-1]``)."""
        return self.blocks[-1]

    def _run(self, x: torch.Tensor, upto: int, whole_run: bool = False) -> dict[str, torch.Tensor]:
        """Outputs of layers ``0 .. upto - 1`` (and the input).

        In hardware timing every layer runs the chip's ``T + L`` steps with ``whole_run``; otherwise a layer
        stops where its steps could no longer reach the classifier within the run (``T + L`` minus its
        shortest hop count to the output), which leaves the output, and what ``features`` returns, unchanged.
        """
        x = self.encode_input(x)  # (T, B, C, H, W)
        steps = x.shape[0] + self.latency
        if self.latency:
            # The chip's run: the last input frame needs L more steps to reach the classifier.
            x = torch.cat([x, x.new_zeros((self.latency, *x.shape[1:]))])  # (T + L, B, C, H, W)

        def kept(name: str) -> int:
            return steps if whole_run or not self.hw_timing else steps - self._cut.get(name, 0)

        outs = {INPUT: x[: kept(INPUT)]}
        for layer, block in zip(self.layers[:upto], self.blocks[:upto]):
            # A synapse prepends its step of delay (bias only at step 0): it reads one step less than it runs.
            reads = kept(layer.name) - int(layer.kind != "flatten" and self.hw_timing)
            outs[layer.name] = block(_merge([outs[s][:reads] for s in layer.sources], layer.cnf))
        return outs

    def layer_spikes(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's spikes, the IR's layers one for one (a leading input layer when the IR has one).

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            Per layer ``[T + L, B, *shape]`` (``[T, B, *shape]`` without hardware timing); the network's state
            is reset before and after.
        """
        functional.reset_net(self)
        outs = self._run(x, len(self.layers), whole_run=True)
        functional.reset_net(self)
        first = [outs[INPUT]] if self.reads_input_later else []
        return first + [outs[layer.name] for layer in self.layers]

    def classifier_input(self, x: torch.Tensor) -> torch.Tensor:
        """The feature layer's run as ``forward`` feeds it to the classifier (``T + L - 1`` steps in hardware timing)."""
        feats = self._run(x, len(self.layers) - 1)[self.layers[-1].sources[0]]
        return feats  # the feature layer is one hop from the output: T + L - 1 steps in hardware timing

    def features(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.classifier_input(x)
        steps = x.shape[0]
        return feats[self.latency - 1 : self.latency - 1 + steps] if self.latency else feats  # (T, B, D)

    def classify(self, features: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.classifier(features)  # (T, B, num_classes); T + 1 steps in hardware timing
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Per-step class spikes.

        Args:
            x: Frames ``[T, B, C, H, W]``.

        Returns:
            ``[T + latency, B, num_classes]``.
        """
        out: torch.Tensor = self.classifier(self.classifier_input(x))
        return out


class _Builder:
    """Appends named layers, tracking each one's output shape."""

    def __init__(self, input_shape: tuple[int, int, int], node: Callable[[], CubaLIFNode],
                 batch_norm: bool, hw_timing: bool, cnf: str = "ADD") -> None:
        self.cnf = cnf
        self.shapes: dict[str, tuple[int, ...]] = {INPUT: tuple(input_shape)}
        self.layers: list[tuple[GraphLayer, nn.Module]] = []
        self.node = node
        self.batch_norm = batch_norm
        self.hw_timing = hw_timing

    def conv(self, name: str, sources: tuple[str, ...], out_channels: int, kernel: int | tuple[int, int],
             stride: int, padding: int, groups: int = 1) -> tuple[str, ...]:
        channels, height, width = self.shapes[sources[0]]
        kh, kw = (kernel, kernel) if isinstance(kernel, int) else kernel
        # With a batch-norm after it, a conv bias would only duplicate the BN shift.
        synapse = nn.Conv2d(channels, out_channels, (kh, kw), stride, padding, groups=groups, bias=not self.batch_norm)
        bn = nn.BatchNorm2d(out_channels) if self.batch_norm else None
        hw = ((height + 2 * padding - kh) // stride + 1, (width + 2 * padding - kw) // stride + 1)
        if min(hw) < 1:
            raise ConfigError(f"[model] layer '{name}': input {self.shapes[INPUT]} is too small for the strides")
        return self._add(GraphLayer(name, "conv", sources, (out_channels, *hw), self.cnf), synapse, bn)

    def dense(self, name: str, sources: tuple[str, ...], out_features: int, norm: bool) -> tuple[str, ...]:
        use_norm = norm and self.batch_norm
        synapse = nn.Linear(self.shapes[sources[0]][0], out_features, bias=not use_norm)
        bn = nn.BatchNorm1d(out_features) if use_norm else None
        return self._add(GraphLayer(name, "dense", sources, (out_features,), self.cnf), synapse, bn)

    def avg_pool(self, name: str, sources: tuple[str, ...], kernel: int | tuple[int, int], stride: int,
                 padding: int) -> tuple[str, ...]:
        """Average pooling as Loihi runs it (netx has no pooling layer): a depthwise conv initialised to the
        mean and trainable, then a batch-norm and a neuron that make it spikes."""
        channels = self.shapes[sources[0]][0]
        out = self.conv(name, sources, channels, kernel, stride, padding, groups=channels)
        synapse = self.layers[-1][1].synapse
        assert isinstance(synapse, nn.Conv2d)
        nn.init.constant_(synapse.weight, 1.0 / (synapse.kernel_size[0] * synapse.kernel_size[1]))
        return out

    def flatten(self, sources: tuple[str, ...]) -> tuple[str, ...]:
        """One flatten per source (a flatten reshapes one layer); the merge moves to the dense layer after."""
        names = []
        for source in sources:
            name = f"{source}_flat"
            size = int(torch.tensor(self.shapes[source]).prod())
            self.shapes[name] = (size,)
            self.layers.append((GraphLayer(name, "flatten", (source,), (size,)), Flatten()))
            names.append(name)
        return tuple(names)

    def _add(self, layer: GraphLayer, synapse: nn.Conv2d | nn.Linear,
             norm: nn.BatchNorm2d | nn.BatchNorm1d | None) -> tuple[str, ...]:
        self.layers.append((layer, LoihiBlock(synapse, norm, self.node(), self.hw_timing)))
        self.shapes[layer.name] = layer.shape
        return (layer.name,)

    def sew_block(self, prefix: str, inputs: tuple[str, ...], planes: int, stride: int) -> tuple[str, ...]:
        """A SEW BasicBlock; returns the sources of its output (the shortcut's, then conv2), which the layers
        reading it merge with the builder's ``cnf`` (spikingjelly: ``sew_function(identity, out, cnf)``)."""
        out = self.conv(f"{prefix}_conv1", inputs, planes, 3, stride, 1)
        out = self.conv(f"{prefix}_conv2", out, planes, 3, 1, 1)
        if stride != 1 or self.shapes[inputs[0]][0] != planes:
            shortcut = self.conv(f"{prefix}_down", inputs, planes, 1, stride, 0)
        else:
            shortcut = inputs  # the block input's spikes: the sum of its own sources
        return shortcut + out  # spikingjelly folds sew_function(identity, out, cnf)


def build_sew(spec: SewSpec, input_shape: tuple[int, int, int], num_classes: int, current_decay: float,
              voltage_decay: float, threshold: float, surrogate_alpha: float, batch_norm: bool,
              hw_timing: bool, cnf: str = "ADD") -> LoihiGraphNet:
    """A registered SEW variant (:data:`SEW_SPECS`) as a :class:`LoihiGraphNet`.

    Args:
        spec: Layer sizes.
        input_shape: ``(C, H, W)`` of one frame.
        num_classes: Classifier width.
        current_decay, voltage_decay, threshold: CUBA-LIF parameters of every layer.
        surrogate_alpha: ``alpha`` of the ATan surrogate gradient.
        batch_norm: A foldable batch-norm after every synapse but the classifier's.
        hw_timing: Loihi's one-step synaptic delay per hop.
        cnf: The SEW connect function of every merge (spikingjelly's; only ``ADD`` deploys).

    Raises:
        ConfigError: The input is too small for the strides.
    """

    def node() -> CubaLIFNode:
        return CubaLIFNode(current_decay, voltage_decay, threshold,
                           surrogate_function=surrogate.ATan(alpha=surrogate_alpha))

    b = _Builder(input_shape, node, batch_norm, hw_timing, cnf)
    out_channels, kernel, stride = spec.stem
    out = b.conv("stem", (INPUT,), out_channels, kernel, stride, kernel // 2)
    for s, (channels, blocks, first_stride) in enumerate(spec.stages, start=1):
        for k in range(blocks):
            out = b.sew_block(f"s{s}b{k}", out, channels, first_stride if k == 0 else 1)
    if spec.feature_dim:
        if spec.pool is not None:
            kernel, stride = spec.pool
            out = b.avg_pool("pool", out, kernel, stride, kernel // 2)
        feats = b.dense("features", b.flatten(out), spec.feature_dim, norm=True)
    else:
        # Average pooling as Loihi runs it (netx has no pooling layer): a depthwise conv over the whole last
        # map, initialised to the mean and trainable, then a batch-norm and a neuron that make it spikes.
        _, height, width = b.shapes[out[0]]
        feats = b.flatten(b.avg_pool("pool", out, (height, width), 1, 0))
    b.dense("classifier", feats, num_classes, norm=False)
    return LoihiGraphNet(b.layers, input_shape, hw_timing)
