"""The deployable integer network: one small typed description.

A :class:`Network` is a list of layers in execution (topological) order, each a
frozen dataclass. By default a layer reads the layer before it, so most networks
are chains, as a netx file is. A layer may instead name the layers it reads
(``sources``): that makes the network a directed acyclic graph, as residual
networks are. A synapse reading several sources is one synapse per source, with
the same weights, into the same neurons (Lava's ``a_in`` port sums every
connection made to it), which is exactly a SEW-ResNet ``ADD`` of spike tensors
feeding that synapse. The IR holds everything a netx file holds and nothing that
needs computing: the arithmetic lives in ``sims/``, the file formats in
``export/netx.py``.

Two neuron families exist, one per network: binary-spike CUBA-LIF
(:class:`CubaNeuron`) and Loihi 2's graded-spike sigma-delta neurons
(:class:`SigmaDeltaNeuron`), whose messages carry an integer payload.

Shapes are (C, H, W) for spatial layers and (N,) for dense ones. Integer arrays
are numpy ``int32``. Neuron parameters are integers in Loihi units (decays in
1/4096, the threshold as a mantissa shifted left by 6 in hardware).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Union

import numpy as np
import numpy.typing as npt

from hw_targets import constants as C
from hw_targets.errors import IRError

IR_FORMAT_VERSION = 1

IntArray = npt.NDArray[np.int32]
#: What neuron parameters accept: a scalar or an array; stored as int32 arrays.
IntParam = Union[IntArray, np.integer[Any], int]
Scalar = Union[int, float, bool, str]


def _as_int_array(value: Any, where: str, field_name: str) -> IntArray:
    """Convert ``value`` to an int32 array, refusing non-integral or out-of-range values."""
    try:
        arr = np.asarray(value)
    except Exception as exc:  # numpy raises many types for ragged input
        raise IRError(f"{where}: field '{field_name}' is not an array ({exc})") from None
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise IRError(f"{where}: field '{field_name}' has dtype {arr.dtype}; expected integers")
    if np.issubdtype(arr.dtype, np.floating):
        if not np.all(np.isfinite(arr)):
            raise IRError(f"{where}: field '{field_name}' contains NaN or inf")
        if not np.all(arr == np.trunc(arr)):
            raise IRError(f"{where}: field '{field_name}' holds non-integer values; the IR is integer-only")
    info = np.iinfo(np.int32)
    if arr.size and (arr.min() < info.min or arr.max() > info.max):
        raise IRError(f"{where}: field '{field_name}' has values outside int32")
    out = arr.astype(np.int32)
    out.setflags(write=False)
    return out


def _check_range(arr: IntArray, lo: int, hi: int, where: str, field_name: str) -> None:
    if arr.size and (int(arr.min()) < lo or int(arr.max()) > hi):
        raise IRError(
            f"{where}: field '{field_name}' has values in [{int(arr.min())}, {int(arr.max())}], "
            f"outside the allowed [{lo}, {hi}]"
        )


def _normalize(obj: object, **fields: Any) -> None:
    """Store validated, normalized field values (int32 arrays, int pairs) on a frozen IR object.

    The IR's dataclasses are frozen so that nothing changes them after validation; validation
    itself is the one place that writes, and only the normalized form of what was given.
    """
    for name, value in fields.items():
        object.__setattr__(obj, name, value)


def _pair(value: Any, where: str, field_name: str) -> tuple[int, int]:
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.array([arr[0], arr[0]])
    if arr.size != 2 or not np.all(arr == np.trunc(arr.astype(np.float64))):
        raise IRError(f"{where}: field '{field_name}' must be an integer or an (H, W) pair, got {value!r}")
    return int(arr[0]), int(arr[1])


@dataclass(frozen=True, eq=False)
class CubaNeuron:
    """Loihi current-based leaky integrate-and-fire neuron (Lava ``LIF``, fixed point).

    Per step, with synaptic input ``a`` and bias ``b`` (integers)::

        u <- wrap24(trunc0(u * (4096 - i_decay) / 4096) + a * 2**6)
        v <- sat24(trunc0(v * (4096 - v_decay) / 4096) + u + b * 2**6)
        s  = v > v_th_mant * 2**6;   v <- 0 where s

    Attributes:
        i_decay: current decay in 1/4096 units, 0..4096; scalar or one per channel.
        v_decay: voltage decay in 1/4096 units, 0..4096; scalar or one per channel.
        v_th_mant: threshold mantissa, 0..2**17; scalar or one per channel.
        kind: the netx neuron type string, ``CUBA`` or the legacy ``LOIHI``.
        extras: keys of the ``neuron/`` group netx ignores (``refDelay``,
            ``gradedSpike``, ``theta``, ...), kept so a read/write round trip
            loses nothing.
    """

    i_decay: IntParam
    v_decay: IntParam
    v_th_mant: IntParam
    kind: str = "CUBA"
    extras: tuple[tuple[str, Scalar], ...] = ()

    def __post_init__(self) -> None:
        self.validate("neuron")

    def validate(self, where: str, channels: int | None = None) -> None:
        """Check ranges, and per-channel lengths against ``channels``.

        Raises:
            IRError: naming ``where`` and the field.
        """
        for name, hi in (("i_decay", C.DECAY_MAX), ("v_decay", C.DECAY_MAX), ("v_th_mant", C.VTH_MANT_IR_MAX)):
            arr = _as_int_array(getattr(self, name), where, name)
            _normalize(self, **{name: arr})
            if arr.ndim > 1:
                raise IRError(f"{where}: field '{name}' must be a scalar or one value per channel")
            if channels is not None and arr.ndim == 1 and arr.shape[0] != channels:
                raise IRError(
                    f"{where}: field '{name}' has {arr.shape[0]} values, expected 1 or {channels} (one per channel)"
                )
            _check_range(arr, 0, hi, where, name)
        if self.kind not in ("CUBA", "LOIHI"):
            raise IRError(f"{where}: neuron type {self.kind!r} is not a CUBA-LIF neuron (CUBA or LOIHI)")


@dataclass(frozen=True, eq=False)
class SigmaDeltaNeuron:
    """Loihi 2 sigma-delta neuron with graded spikes (netx type ``SDNN``; Lava ``lava.proc.sdn``).

    netx builds one of three Lava processes from it, by position (:func:`sdnn_role`): ``Delta``
    on the input layer, ``Sigma`` where ``sigma_output`` is set, else ``SigmaDelta`` (ReLU).
    With ``E = spike_exp + state_exp``, threshold ``vth = v_th_mant << E`` and bias
    ``b << E``, per step and neuron, in numpy int32 arithmetic (Lava 0.10's
    ``PySigmaDeltaModelFixed``/``PyDeltaModelFixed``)::

        sigma <- sigma + a                      (Sigma, SigmaDelta; Delta: act_new = a << E)
        act_new = relu(sigma + b << E)          (SigmaDelta)
        delta = act_new - act + residue
        s = delta where |delta| >= vth else 0;  residue <- delta - s;  act <- act_new
        message = s >> state_exp                (Sigma sends sigma itself)

    Attributes:
        v_th_mant: delta threshold mantissa, a scalar (netx's ``vThMant``; Lava holds one value).
        spike_exp: fixed-point position of the graded message (netx's ``Network(spike_exp=)``,
            default 6; not a netx field: written as ``neuron/spikeExp``, which netx ignores).
        state_exp: fixed-point position of the state; netx always uses 6.
        sigma_output: the layer is a ``Sigma`` readout (netx's ``neuron/sigma_output``).
        activation: the activation name the file carries (slayer writes ``relu``). netx ignores it:
            Lava's ``SigmaDelta`` always applies ReLU, and so does the simulator.
        kind: the netx neuron type string, ``SDNN``.
        extras: keys of the ``neuron/`` group netx ignores (``gradedSpike``, ...), kept for a
            lossless round trip.
    """

    v_th_mant: IntParam
    spike_exp: int = C.SDNN_SPIKE_EXP
    state_exp: int = C.SDNN_STATE_EXP
    sigma_output: bool = False
    activation: str = "relu"
    kind: str = "SDNN"
    extras: tuple[tuple[str, Scalar], ...] = ()

    def __post_init__(self) -> None:
        self.validate("neuron")

    def validate(self, where: str, channels: int | None = None) -> None:
        """Check the fields' ranges (``channels`` is accepted for symmetry with :class:`CubaNeuron`).

        Raises:
            IRError: naming ``where`` and the field.
        """
        vth = _as_int_array(self.v_th_mant, where, "v_th_mant")
        if vth.ndim != 0:
            raise IRError(f"{where}: field 'v_th_mant' of a sigma-delta neuron must be a scalar "
                          "(Lava's Delta/SigmaDelta hold one threshold per layer)")
        _check_range(vth, 0, C.VTH_MANT_IR_MAX, where, "v_th_mant")
        for name in ("spike_exp", "state_exp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= int(value) <= C.SDNN_EXP_MAX:
                raise IRError(f"{where}: field '{name}' must be an integer in [0, {C.SDNN_EXP_MAX}], got {value!r}")
        if int(vth) << (int(self.spike_exp) + int(self.state_exp)) >= 2**31:
            raise IRError(f"{where}: field 'v_th_mant' {int(vth)} shifted by spike_exp + state_exp = "
                          f"{int(self.spike_exp) + int(self.state_exp)} leaves int32 (Lava's threshold register)")
        if not isinstance(self.activation, str):
            raise IRError(f"{where}: field 'activation' must be a string, got {self.activation!r}")
        if self.kind != "SDNN":
            raise IRError(f"{where}: neuron type {self.kind!r} is not a sigma-delta neuron (SDNN)")
        _normalize(self, v_th_mant=vth, spike_exp=int(self.spike_exp), state_exp=int(self.state_exp),
                   sigma_output=bool(self.sigma_output))


Neuron = Union[CubaNeuron, SigmaDeltaNeuron]


def neuron_family(neuron: Neuron | None) -> str:
    """``"SDNN"`` for sigma-delta neurons, ``"CUBA"`` for CUBA-LIF ones and netx's default (None)."""
    return "SDNN" if isinstance(neuron, SigmaDeltaNeuron) else "CUBA"


def sdnn_role(layer: "Layer") -> str:
    """The Lava process netx builds for a sigma-delta layer: ``Delta``, ``Sigma`` or ``SigmaDelta``."""
    neuron = getattr(layer, "neuron", None)
    assert isinstance(neuron, SigmaDeltaNeuron)
    if isinstance(layer, InputLayer):
        return "Delta"
    return "Sigma" if neuron.sigma_output else "SigmaDelta"


def default_dense_neuron() -> CubaNeuron:
    """The neuron netx builds for a ``dense`` layer stored without ``neuron/``."""
    return CubaNeuron(
        i_decay=np.int32(C.NETX_DEFAULT_I_DECAY),
        v_decay=np.int32(C.NETX_DEFAULT_V_DECAY),
        v_th_mant=np.int32(C.NETX_DEFAULT_VTH_MANT),
    )


class _LayerBase:
    """What every IR layer kind has besides its fields: its output shape and its role.

    Attributes:
        synaptic: the layer is a synapse (one step of latency, synaptic events counted).
    """

    shape: tuple[int, ...]
    synaptic: ClassVar[bool] = False

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def has_neurons(self) -> bool:
        """Whether Lava builds neurons for the layer."""
        return False


class _SynapseLayer(_LayerBase):
    """A synapse plus neurons (dense, conv): Lava always builds the neurons."""

    synaptic: ClassVar[bool] = True

    @property
    def has_neurons(self) -> bool:
        """Always (a dense layer without a neuron gets netx's default integrator)."""
        return True


@dataclass(frozen=True, eq=False)
class InputLayer(_LayerBase):
    """The network's entry.

    Without a neuron it only declares the input shape (netx builds no process).
    With a neuron, input spikes enter that neuron's current (as lava-dl's tests
    drive it) and its spikes feed the next synapse.

    Attributes:
        name: stable layer name.
        shape: (C, H, W) or (N,).
        neuron: the input neuron, or None for a shape declaration.
        weight, bias: slayer's scalar input transform; netx stores but never applies them.
    """

    name: str
    shape: tuple[int, ...]
    neuron: Neuron | None = None
    weight: int | None = None
    bias: int | None = None
    kind: str = field(default="input", init=False)

    @property
    def has_neurons(self) -> bool:
        """Whether Lava builds neurons for the layer (only an input layer with a neuron)."""
        return self.neuron is not None

    def check(self, where: str, in_shape: tuple[int, ...] | None) -> None:
        """Validate against the shape flowing in (None: the layer comes first).

        Raises:
            IRError: naming ``where`` and the field.
        """
        if in_shape is not None:
            raise IRError(f"{where}: an input layer may only come first")
        if self.neuron is not None:
            self.neuron.validate(where, self.shape[0])


@dataclass(frozen=True, eq=False)
class Dense(_SynapseLayer):
    """Fully connected synapse plus CUBA-LIF neurons.

    Attributes:
        weight: (N_out, N_in) int32, the integer weights as stored in the file.
        bias: None, a scalar, or (N_out,) int32 bias mantissas (enter ``v`` << 6).
        neuron: the neuron, or None for netx's default integrator (never spikes).
        delay: None or (N_out, N_in) int32 synaptic delays in steps (0..62).
        sources: the layers this one reads (see :class:`Network`); () reads the layer before.
    """

    name: str
    shape: tuple[int, ...]
    weight: IntArray
    bias: IntArray | None = None
    neuron: Neuron | None = None
    delay: IntArray | None = None
    sources: tuple[str, ...] = ()
    kind: str = field(default="dense", init=False)

    def check(self, where: str, in_shape: tuple[int, ...] | None) -> None:
        """Validate against the (N,) input flowing in.

        Raises:
            IRError: naming ``where`` and the field.
        """
        shape = self.shape
        if in_shape is None or len(in_shape) != 1:
            raise IRError(f"{where}: dense input must be 1-D, got {in_shape}; insert a flatten layer")
        if len(shape) != 1:
            raise IRError(f"{where}: dense shape must be (N,), got {shape}")
        w = _as_int_array(self.weight, where, "weight")
        if w.shape != (shape[0], in_shape[0]):
            raise IRError(f"{where}: weight has shape {w.shape}; expected {(shape[0], in_shape[0])}")
        _normalize(self, weight=w, bias=_check_bias(self.bias, shape, where))
        if self.delay is not None:
            d = _as_int_array(self.delay, where, "delay")
            if d.shape != w.shape:
                raise IRError(f"{where}: delay has shape {d.shape}; expected {w.shape}")
            _check_range(d, 0, C.NETX_MAX_DELAY, where, "delay")
            _normalize(self, delay=d)
        if self.neuron is not None:
            self.neuron.validate(where, shape[0])


@dataclass(frozen=True, eq=False)
class Conv(_SynapseLayer):
    """2-D convolution synapse (torch layout, cross-correlation) plus CUBA-LIF neurons.

    Attributes:
        shape: output (C, H, W).
        weight: (C_out, C_in / groups, kH, kW) int32.
        stride, padding, dilation: (H, W) pairs.
        groups: channel groups.
        bias: None, (C_out,) per channel, or (C, H, W) per neuron.
        neuron: the neuron (netx requires one on conv layers).
        sources: the layers this one reads (see :class:`Network`); () reads the layer before.
    """

    name: str
    shape: tuple[int, ...]
    weight: IntArray
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    bias: IntArray | None = None
    neuron: Neuron | None = None
    sources: tuple[str, ...] = ()
    kind: str = field(default="conv", init=False)

    def check(self, where: str, in_shape: tuple[int, ...] | None) -> None:
        """Validate against the (C, H, W) input flowing in.

        Raises:
            IRError: naming ``where`` and the field.
        """
        shape = self.shape
        if in_shape is None or len(in_shape) != 3 or len(shape) != 3:
            raise IRError(f"{where}: conv needs (C, H, W) input and output, got {in_shape} -> {shape}")
        w = _as_int_array(self.weight, where, "weight")
        groups = int(self.groups)
        if groups < 1 or in_shape[0] % groups or shape[0] % groups:
            raise IRError(f"{where}: groups={groups} must divide input channels {in_shape[0]} and output channels {shape[0]}")
        if w.ndim != 4 or w.shape[0] != shape[0] or w.shape[1] != in_shape[0] // groups:
            raise IRError(
                f"{where}: weight has shape {w.shape}; expected ({shape[0]}, {in_shape[0] // groups}, kH, kW)"
            )
        stride = _pair(self.stride, where, "stride")
        padding = _pair(self.padding, where, "padding")
        dilation = _pair(self.dilation, where, "dilation")
        if min(stride) < 1 or min(dilation) < 1 or min(padding) < 0:
            raise IRError(f"{where}: stride and dilation must be >= 1 and padding >= 0")
        out_hw = conv_output_hw(in_shape[1:], w.shape[2:], stride, padding, dilation)  # type: ignore[arg-type]
        if out_hw != shape[1:]:
            raise IRError(f"{where}: output shape {shape} does not match the convolution of {in_shape}: ({shape[0]}, {out_hw[0]}, {out_hw[1]})")
        _normalize(self, weight=w, stride=stride, padding=padding, dilation=dilation, groups=groups,
                   bias=_check_bias(self.bias, shape, where))
        if self.neuron is None:
            raise IRError(f"{where}: conv layers need a neuron (netx reads conv/neuron unconditionally)")
        self.neuron.validate(where, shape[0])


@dataclass(frozen=True, eq=False)
class Flatten(_LayerBase):
    """Reshape (C, H, W) -> (C*H*W,) in C order (torch ``flatten(1)`` on NCHW).

    Attributes:
        sources: () reads the layer before; or the one layer it reshapes (a flatten merges nothing).
    """

    name: str
    shape: tuple[int, ...]
    sources: tuple[str, ...] = ()
    kind: str = field(default="flatten", init=False)

    def check(self, where: str, in_shape: tuple[int, ...] | None) -> None:
        """Validate against the shape flowing in.

        Raises:
            IRError: naming ``where`` and the field.
        """
        if in_shape is None:
            raise IRError(f"{where}: flatten cannot be the first layer")
        if len(self.shape) != 1 or self.shape[0] != int(np.prod(in_shape)):
            raise IRError(f"{where}: shape {self.shape} does not flatten input {in_shape}; "
                          f"expected ({int(np.prod(in_shape))},)")


Layer = Union[InputLayer, Dense, Conv, Flatten]
LAYER_KINDS: dict[str, type] = {"input": InputLayer, "dense": Dense, "conv": Conv, "flatten": Flatten}


def conv_output_hw(
    in_hw: tuple[int, int],
    kernel_hw: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
) -> tuple[int, int]:
    """Output height and width of a convolution (Lava's ``conv.utils.output_shape``)."""
    return tuple(  # type: ignore[return-value]
        (x + 2 * p - d * (k - 1) - 1) // s + 1
        for x, k, s, p, d in zip(in_hw, kernel_hw, stride, padding, dilation)
    )


def _describe(layer: Layer, index: int) -> str:
    return f"layer '{layer.name}' (#{index}, {layer.kind})"


def _check_bias(bias: IntArray | None, shape: tuple[int, ...], where: str) -> IntArray | None:
    if bias is None:
        return None
    arr = _as_int_array(bias, where, "bias")
    _check_range(arr, C.BIAS_STORE_MIN, C.BIAS_STORE_MAX, where, "bias")
    if len(shape) == 1:
        if arr.shape not in ((), (shape[0],)):
            raise IRError(f"{where}: bias has shape {arr.shape}; expected a scalar or ({shape[0]},)")
    else:
        if arr.shape not in ((shape[0],), tuple(shape)):
            raise IRError(f"{where}: bias has shape {arr.shape}; expected ({shape[0]},) per channel or {tuple(shape)}")
    return arr


def _resolve_sources(layers: tuple[Layer, ...], index: dict[str, int], i: int) -> tuple[int, ...]:
    """Layer i's source indices; normalizes ``sources`` naming just the layer before to () (a chain).

    Raises:
        IRError: a dangling, duplicate or backward (cycle-making) edge, a merge into a layer without a
            synapse, or sources of different shapes; naming the layer and the field.
    """
    layer = layers[i]
    where = _describe(layer, i)
    raw = getattr(layer, "sources", ())
    if isinstance(raw, str) or not isinstance(raw, (tuple, list)) or not all(isinstance(s, str) for s in raw):
        raise IRError(f"{where}: field 'sources' must be a list of layer names, got {raw!r}")
    names = tuple(raw)
    if not names:
        return () if i == 0 else (i - 1,)
    if i == 0:
        raise IRError(f"{where}: field 'sources' {list(names)}: the first layer reads the network's input")
    out: list[int] = []
    for name in names:
        j = index.get(name)
        if j is None:
            raise IRError(f"{where}: field 'sources' names {name!r}, which is no layer of the network "
                          "(a dangling edge)")
        if j >= i:
            raise IRError(f"{where}: field 'sources' names {name!r} (#{j}), which does not come before it; "
                          "layers are stored in execution order, so this edge would make a cycle")
        if j in out:
            raise IRError(f"{where}: field 'sources' names {name!r} twice (a duplicate edge)")
        out.append(j)
    if len(out) > 1:
        if not layer.synaptic:
            raise IRError(f"{where}: field 'sources' {list(names)}: only a dense or conv layer may read several "
                          "layers (a merge is one synapse per source into the same neurons)")
        shapes = {layers[j].name: tuple(int(s) for s in layers[j].out_shape) for j in out}
        if len(set(shapes.values())) > 1:
            raise IRError(f"{where}: field 'sources': the merged layers have different shapes {shapes}; "
                          "a merge adds spike tensors of one shape")
    _normalize(layer, sources=() if out == [i - 1] else names)
    return tuple(out)


def check_layer(layer: Layer, index: int, in_shape: tuple[int, ...] | None) -> None:
    """Validate one layer (at position ``index``) against the shape flowing into it.

    Raises:
        IRError: naming the layer and the field.
    """
    where = _describe(layer, index)
    if not layer.name or not isinstance(layer.name, str):
        raise IRError(f"layer #{index}: every layer needs a non-empty name")
    shape = tuple(int(s) for s in layer.shape)
    if not shape or any(s <= 0 for s in shape) or len(shape) not in (1, 3):
        raise IRError(f"{where}: shape {layer.shape} must be (N,) or (C, H, W) with positive sizes")
    _normalize(layer, shape=shape)
    if type(layer) is not LAYER_KINDS.get(layer.kind):
        raise IRError(f"layer #{index}: unknown layer class {type(layer).__name__}")
    layer.check(where, in_shape)


@dataclass(frozen=True, eq=False)
class Network:
    """An ordered chain of layers and the input shape.

    Attributes:
        layers: the layers, in execution order.
        input_shape: (C, H, W) or (N,); taken from the first layer when it is an input layer.
        simulation: the legacy slayerPytorch ``simulation`` group (e.g. ``Ts``, ``tSample``), kept verbatim.
    """

    layers: tuple[Layer, ...]
    input_shape: tuple[int, ...] = ()
    simulation: tuple[tuple[str, Scalar], ...] = ()

    def __post_init__(self) -> None:
        layers = tuple(self.layers)
        _normalize(self, layers=layers)
        if not layers:
            raise IRError("network has no layers")
        names = [layer.name for layer in layers]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise IRError(f"layer names must be unique; repeated: {sorted(dup)}")
        first = layers[0]
        if isinstance(first, InputLayer):
            in_shape: tuple[int, ...] = tuple(int(s) for s in first.shape)
            if self.input_shape and tuple(self.input_shape) != in_shape:
                raise IRError(f"input_shape {self.input_shape} differs from input layer '{first.name}' shape {in_shape}")
        elif self.input_shape:
            in_shape = tuple(int(s) for s in self.input_shape)
        elif isinstance(first, Dense):
            in_shape = (int(np.asarray(first.weight).shape[-1]),)
        else:
            raise IRError(f"layer '{first.name}' (#0, {first.kind}): input shape unknown; pass input_shape or start with an input layer")
        _normalize(self, input_shape=in_shape)
        shape: tuple[int, ...] | None = None if isinstance(first, InputLayer) else in_shape
        index = {name: i for i, name in enumerate(names)}
        sources: list[tuple[int, ...]] = []
        for i, layer in enumerate(layers):
            srcs = _resolve_sources(layers, index, i)
            sources.append(srcs)
            if srcs:
                shape = layers[srcs[0]].out_shape
            elif i:
                shape = layers[i - 1].out_shape
            check_layer(layer, i, shape)
        object.__setattr__(self, "_sources", tuple(sources))
        consumed = {j for srcs in sources for j in srcs}
        for i in range(len(layers) - 1):
            if i not in consumed:
                raise IRError(f"{self.describe(i)}: its output reaches no layer; only the last layer may be "
                              "the network's output (field 'sources' of the later layers)")
        _check_family(self)

    def sources(self, index: int) -> tuple[int, ...]:
        """Indices of the layers whose output layer ``index`` reads: () for the first layer (it reads
        the network's input), ``(index - 1,)`` in a chain, several for a merge. A shape-only input
        layer's output is the network's input."""
        srcs: tuple[tuple[int, ...], ...] = getattr(self, "_sources")
        return srcs[index]

    @property
    def is_graph(self) -> bool:
        """Whether some layer reads anything but the layer before it (a residual network)."""
        return any(getattr(layer, "sources", ()) for layer in self.layers)

    def consumers(self, index: int) -> tuple[int, ...]:
        """Indices of the layers that read layer ``index``'s output."""
        return tuple(j for j in range(len(self.layers)) if index in self.sources(j))

    def hops(self) -> tuple[int, ...]:
        """Per layer, the synaptic hops on the longest path from the input to its output.

        Every synapse is one step of latency on the chip, so layer i's output first depends on input
        frame 0 at step ``hops()[i]`` (along its slowest branch; a shorter branch arrives earlier)."""
        out: list[int] = []
        for i, layer in enumerate(self.layers):
            before = max((out[j] for j in self.sources(i)), default=0)
            out.append(before + int(layer.synaptic))
        return tuple(out)

    @property
    def depth(self) -> int:
        """Synaptic hops on the longest path from the input to the output (a chain: its synaptic layers)."""
        return self.hops()[-1]

    def require_chain(self, what: str) -> None:
        """Refuse a graph where only chains are handled.

        Raises:
            IRError: naming the first layer that reads anything but the layer before it.
        """
        for i, layer in enumerate(self.layers):
            srcs = getattr(layer, "sources", ())
            if srcs:
                raise IRError(f"{self.describe(i)}: field 'sources' {list(srcs)}: a residual graph; {what} "
                              "handles chains only")

    @property
    def family(self) -> str:
        """The network's neuron family: ``"SDNN"`` (graded sigma-delta) or ``"CUBA"`` (binary CUBA-LIF)."""
        return "SDNN" if any(isinstance(getattr(l, "neuron", None), SigmaDeltaNeuron) for l in self.layers) else "CUBA"

    @property
    def spike_exp(self) -> int:
        """The sigma-delta message position netx is built with (``Network(spike_exp=)``); 6 for CUBA networks."""
        for layer in self.layers:
            neuron = getattr(layer, "neuron", None)
            if isinstance(neuron, SigmaDeltaNeuron):
                return int(neuron.spike_exp)
        return C.SDNN_SPIKE_EXP

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.layers[-1].out_shape

    def layer_index(self, name: str) -> int:
        """Index of the layer called ``name``."""
        for i, layer in enumerate(self.layers):
            if layer.name == name:
                return i
        raise IRError(f"no layer named {name!r}; layers: {[l.name for l in self.layers]}")

    def describe(self, index: int) -> str:
        """``layer 'conv1' (#2, conv)``, as used in messages."""
        return _describe(self.layers[index], index)


# ----------------------------------------------------------------------------- dict serializer


def _check_family(net: Network) -> None:
    """One neuron family per network, and what netx needs of a sigma-delta one.

    A netx ``Network`` takes one ``spike_exp`` for all its SDNN layers; Lava's ``Sigma`` takes no
    bias; netx builds a ``Delta`` on an input layer whatever ``sigma_output`` says, and the CUBA
    integrator for a dense layer without a neuron.

    Raises:
        IRError: naming the first layer that breaks a rule.
    """
    if net.family != "SDNN":
        return
    if net.is_graph:
        net.require_chain("a sigma-delta network")
    exps: tuple[int, int] | None = None
    for i, layer in enumerate(net.layers):
        if not layer.has_neurons:
            continue
        neuron = getattr(layer, "neuron", None)
        where = net.describe(i)
        if not isinstance(neuron, SigmaDeltaNeuron):
            what = "netx's default CUBA integrator (no neuron)" if neuron is None else f"a {neuron.kind} neuron"
            raise IRError(f"{where}: {what} in a sigma-delta network; a network holds one neuron family")
        if exps is None:
            exps = (neuron.spike_exp, neuron.state_exp)
        elif (neuron.spike_exp, neuron.state_exp) != exps:
            raise IRError(f"{where}: field 'spike_exp'/'state_exp' is {(neuron.spike_exp, neuron.state_exp)}, "
                          f"the network's first sigma-delta layer has {exps}; netx builds one spike_exp per network")
        if isinstance(layer, InputLayer) and neuron.sigma_output:
            raise IRError(f"{where}: field 'sigma_output' on an input layer; netx builds a Delta encoder there")
        if neuron.sigma_output and getattr(layer, "bias", None) is not None:
            raise IRError(f"{where}: field 'bias' on a sigma_output layer; Lava's Sigma process takes no bias")
        if getattr(layer, "delay", None) is not None:
            raise IRError(f"{where}: field 'delay' on a sigma-delta layer is not supported")


def _arr_to_dict(arr: IntParam | None) -> Any:
    if arr is None:
        return None
    arr = np.asarray(arr)
    return {"shape": list(arr.shape), "data": np.asarray(arr).reshape(-1).tolist()}


def _arr_from_dict(d: Any) -> IntArray | None:
    if d is None:
        return None
    return np.asarray(d["data"], dtype=np.int32).reshape(d["shape"])


def _neuron_to_dict(n: Neuron | None) -> Any:
    if n is None:
        return None
    if isinstance(n, SigmaDeltaNeuron):
        return {
            "v_th_mant": _arr_to_dict(n.v_th_mant),
            "spike_exp": n.spike_exp,
            "state_exp": n.state_exp,
            "sigma_output": n.sigma_output,
            "activation": n.activation,
            "kind": n.kind,
            "extras": [[k, v] for k, v in n.extras],
        }
    return {
        "i_decay": _arr_to_dict(n.i_decay),
        "v_decay": _arr_to_dict(n.v_decay),
        "v_th_mant": _arr_to_dict(n.v_th_mant),
        "kind": n.kind,
        "extras": [[k, v] for k, v in n.extras],
    }


def _neuron_from_dict(d: Any) -> Neuron | None:
    if d is None:
        return None
    if d.get("kind") == "SDNN":
        return SigmaDeltaNeuron(
            v_th_mant=_arr_from_dict(d["v_th_mant"]),  # type: ignore[arg-type]
            spike_exp=d["spike_exp"],
            state_exp=d["state_exp"],
            sigma_output=d["sigma_output"],
            activation=d["activation"],
            extras=tuple((k, v) for k, v in d["extras"]),
        )
    return CubaNeuron(
        i_decay=_arr_from_dict(d["i_decay"]),  # type: ignore[arg-type]
        v_decay=_arr_from_dict(d["v_decay"]),  # type: ignore[arg-type]
        v_th_mant=_arr_from_dict(d["v_th_mant"]),  # type: ignore[arg-type]
        kind=d["kind"],
        extras=tuple((k, v) for k, v in d["extras"]),
    )


def _encode(value: Any) -> Any:
    """One layer field as JSON-compatible data: arrays as shape + data, neurons as dicts, pairs as lists."""
    if isinstance(value, (CubaNeuron, SigmaDeltaNeuron)):
        return _neuron_to_dict(value)
    if isinstance(value, np.ndarray):
        return _arr_to_dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _decode(value: Any) -> Any:
    """Inverse of :func:`_encode` (the encoded forms are distinct: a neuron dict has ``kind``)."""
    if isinstance(value, dict):
        return _neuron_from_dict(value) if "kind" in value else _arr_from_dict(value)
    if isinstance(value, list):
        return tuple(value)
    return value


def to_dict(net: Network) -> dict[str, Any]:
    """A plain, JSON-compatible dict of ``net`` with a format version.

    Every layer kind serializes the same way: its kind, then its dataclass fields in order.
    """
    layers: list[dict[str, Any]] = []
    for layer in net.layers:
        d: dict[str, Any] = {"kind": layer.kind, "name": layer.name, "shape": list(layer.shape)}
        d.update((f.name, _encode(getattr(layer, f.name))) for f in fields(layer)
                 if f.init and f.name not in ("name", "shape"))
        layers.append(d)
    return {
        "format": "neuromoco-ir",
        "version": IR_FORMAT_VERSION,
        "input_shape": list(net.input_shape),
        "simulation": [[k, v] for k, v in net.simulation],
        "layers": layers,
    }


def from_dict(d: dict[str, Any]) -> Network:
    """Inverse of :func:`to_dict`.

    Raises:
        IRError: for an unknown version or layer kind, or any invalid layer.
    """
    if d.get("format") != "neuromoco-ir" or d.get("version") != IR_FORMAT_VERSION:
        raise IRError(f"not a neuromoco IR dict of version {IR_FORMAT_VERSION}: {d.get('format')!r} v{d.get('version')!r}")
    layers: list[Layer] = []
    for i, ld in enumerate(d["layers"]):
        cls = LAYER_KINDS.get(ld["kind"])
        if cls is None:
            raise IRError(f"layer #{i}: unknown kind {ld['kind']!r}")
        values = {key: _decode(value) for key, value in ld.items() if key != "kind"}
        try:
            layers.append(cls(**values))
        except TypeError as exc:
            raise IRError(f"layer #{i} ({ld['kind']}): {exc}") from None
    return Network(tuple(layers), tuple(d["input_shape"]), tuple((k, v) for k, v in d["simulation"]))


def networks_equal(a: Network, b: Network) -> bool:
    """True when two networks describe the same thing (exact integer equality)."""
    return to_dict(a) == to_dict(b)
