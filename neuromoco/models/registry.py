"""One registry of backbones, built from a :class:`ModelConfig` and the data's shape.

``build_model(ModelConfig(name="loihinet_s"), input_shape=(2, 34, 34), num_classes=10)``
is the only way the training code, the exporter and the tests make a model,
so a name means the same network everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from hw_targets.errors import ConfigError
from neuromoco.models.adaptive import make_adaptive
from neuromoco.models.base import SpikingBackbone
from neuromoco.models.encoding import ENCODINGS, build_encoder, encoded_channels
from neuromoco.models.loihinet import LOIHINET_SPECS, LoihiNet
from neuromoco.models.loihinet_sdnn import SDNN_SPECS, LoihiSdnn
from neuromoco.models.loihinet_sew import SEW_SPECS, build_sew
from neuromoco.models.neuron import check_cuba_params
from neuromoco.models.sew_resnet import SEWResNet18
from neuromoco.models.spikformer import Spikformer

#: ``lif``: each family's fixed-parameter neuron (CUBA-LIF in loihinet, LIF elsewhere); ``adaptive``: ASNN's.
NEURONS = ("lif", "adaptive")


@dataclass(frozen=True)
class ModelConfig:
    """The ``[model]`` section: which backbone and its neuron settings.

    Layer sizes belong to the name (``loihinet_s`` vs ``loihinet_m``); the input
    shape and the number of classes come from the data.

    Attributes:
        name: A registered backbone (``nmoco train --model NAME``).
        current_decay: loihinet (and its SEW graphs, ``loihinet_sew_s``, ``sew_resnet18_loihi``) CUBA-LIF current decay, a multiple of 1/4096 (4096/4096: memoryless current).
        voltage_decay: loihinet CUBA-LIF voltage decay, a multiple of 1/4096 (128/4096: nearly integrating).
        threshold: loihinet CUBA-LIF threshold, a multiple of 1/64.
        batch_norm: loihinet and loihinet_sdnn put a foldable batch-norm after each conv and their dense feature layer.
        hw_timing: loihinet trains with Loihi's one-step synaptic delay per layer (lava-dl's
            ``delay_shift``; :mod:`neuromoco.models.loihinet`): ``forward`` then runs ``T + L``
            steps, the chip's run. Checkpoints written before this field existed load with False.
        lif_tau: LIF membrane time constant (steps) of ``sew_resnet18`` and ``spikformer_2_256``.
        surrogate_alpha: ``alpha`` of the ATan surrogate gradient, all backbones.
        neuron: ``lif`` (the family's fixed-parameter neuron, the only one Loihi 2 runs) or
            ``adaptive`` (ASNN: learnable leak and input gain per time step, soft reset, and a
            learnable scale per step on the read-out; :mod:`neuromoco.models.adaptive`).
        encoding: How a static image becomes ``T`` steps (:mod:`neuromoco.models.encoding`):
            ``direct`` (the frames as the data gives them; for images the analog image every
            step), ``latency`` (one spike per lit pixel, brighter earlier) or ``hybrid`` (analog
            step 0 through its own conv + batch-norm, latency spikes after). Event data takes
            ``direct`` only.
    """

    name: str = "loihinet_s"
    # loihinet is the deployable family, so its defaults are the ones that convert to Loihi
    # exactly: with a memoryless current (decay 1) the float bias, which enters u, equals
    # Loihi's, which enters v (neuromoco/quant/convert.py), and with hw_timing the float
    # network already has the chip's per-layer delay and bias-only first steps. Trained
    # without them, the conversion lost ~17 points on ndigits before QAT.
    current_decay: float = 1.0
    voltage_decay: float = 0.03125
    threshold: float = 1.0
    batch_norm: bool = True
    hw_timing: bool = True
    lif_tau: float = 2.0
    surrogate_alpha: float = 2.0
    neuron: str = "lif"
    encoding: str = "direct"

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise ConfigError(f"[model] name={self.name!r} is not a registered backbone; choose one of {sorted(MODELS)}")
        check_cuba_params(self.current_decay, self.voltage_decay, self.threshold, "[model]")
        if self.lif_tau <= 1.0:
            raise ConfigError(f"[model] lif_tau={self.lif_tau!r} must be > 1 (steps)")
        if self.surrogate_alpha <= 0.0:
            raise ConfigError(f"[model] surrogate_alpha={self.surrogate_alpha!r} must be > 0")
        if self.neuron not in NEURONS:
            raise ConfigError(f"[model] neuron={self.neuron!r}; choose one of {list(NEURONS)}")
        if self.encoding not in ENCODINGS:
            raise ConfigError(f"[model] encoding={self.encoding!r}; choose one of {list(ENCODINGS)}")


Builder = Callable[[ModelConfig, tuple[int, int, int], int], SpikingBackbone]


def _loihinet(name: str) -> Builder:
    def build(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> SpikingBackbone:
        return LoihiNet(
            LOIHINET_SPECS[name],
            input_shape,
            num_classes,
            cfg.current_decay,
            cfg.voltage_decay,
            cfg.threshold,
            cfg.surrogate_alpha,
            cfg.batch_norm,
            cfg.hw_timing,
        )

    return build


def _loihinet_sew(name: str) -> Builder:
    def build(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> SpikingBackbone:
        return build_sew(SEW_SPECS[name], input_shape, num_classes, cfg.current_decay, cfg.voltage_decay,
                         cfg.threshold, cfg.surrogate_alpha, cfg.batch_norm, cfg.hw_timing)

    return build


def _loihinet_sdnn(name: str) -> Builder:
    def build(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> SpikingBackbone:
        return LoihiSdnn(SDNN_SPECS[name], input_shape, num_classes, cfg.batch_norm)

    return build


def _sew_resnet18(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> SpikingBackbone:
    return SEWResNet18(input_shape, num_classes, cfg.lif_tau, cfg.surrogate_alpha)


def _spikformer_2_256(cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int) -> SpikingBackbone:
    return Spikformer(input_shape, num_classes, depth=2, embed_dim=256, heads=16, lif_tau=cfg.lif_tau,
                      surrogate_alpha=cfg.surrogate_alpha)


MODELS: dict[str, Builder] = {
    "loihinet_s": _loihinet("loihinet_s"),
    "loihinet_m": _loihinet("loihinet_m"),
    "loihinet_sdnn_s": _loihinet_sdnn("loihinet_sdnn_s"),
    "loihinet_sew_s": _loihinet_sew("loihinet_sew_s"),
    "sew_resnet18_loihi": _loihinet_sew("sew_resnet18_loihi"),
    "sew_resnet18": _sew_resnet18,
    "spikformer_2_256": _spikformer_2_256,
}


def list_models() -> list[str]:
    """Registered backbone names, sorted."""
    return sorted(MODELS)


def build_model(
    cfg: ModelConfig, input_shape: tuple[int, int, int], num_classes: int, time_steps: int | None = None
) -> SpikingBackbone:
    """Build a registered backbone.

    With ``neuron="lif"`` and ``encoding="direct"`` this is exactly the
    registered backbone. ``adaptive`` swaps every neuron in place
    (:func:`~neuromoco.models.adaptive.make_adaptive`); ``latency`` and
    ``hybrid`` install an input encoder that ``features`` runs first, and
    ``hybrid`` builds the backbone for ``2C`` input channels.

    Args:
        cfg: Name, neuron and encoding settings.
        input_shape: ``(C, H, W)`` of one frame (of the image, for static-image encodings).
        num_classes: Classifier width.
        time_steps: ``T`` of the data; needed by ``neuron="adaptive"`` (one leak and gain per step,
            for ``T + latency`` steps in hardware timing).

    Returns:
        The backbone, in train mode, on the CPU.

    Raises:
        ConfigError: Unknown name, a bad shape, ``adaptive`` without ``time_steps`` or with a sigma-delta model.
    """
    if len(input_shape) != 3 or min(input_shape) <= 0 or num_classes <= 0:
        raise ConfigError(f"[model] {cfg.name}: bad input_shape {input_shape!r} or num_classes {num_classes!r}")
    channels, height, width = (int(s) for s in input_shape)
    backbone_shape = (encoded_channels(cfg.encoding, channels), height, width)
    model = MODELS[cfg.name](cfg, backbone_shape, int(num_classes))
    if cfg.neuron == "adaptive":
        if isinstance(model, LoihiSdnn):
            raise ConfigError(f"[model] neuron='adaptive' swaps spiking LIF neurons, but {cfg.name} has ReLU "
                              "sigma-delta neurons; use neuron='lif' (the family's own neurons)")
        if time_steps is None or int(time_steps) < 1:
            raise ConfigError(f"[model] neuron='adaptive' needs the number of time steps (got time_steps={time_steps!r})")
        # In hardware timing the deepest neurons run ``latency`` steps more than the input has.
        make_adaptive(model, int(time_steps) + int(getattr(model, "latency", 0)))
    encoder = build_encoder(cfg.encoding, channels)
    if encoder is not None:
        model.set_input_encoder(encoder)
    return model
