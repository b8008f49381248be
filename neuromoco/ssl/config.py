"""The ``[moco]`` section: NeuroMoCo's contrastive settings."""

from __future__ import annotations

from dataclasses import dataclass

from hw_targets.errors import ConfigError
from neuromoco.ssl.losses import LOSSES


@dataclass(frozen=True)
class MoCoConfig:
    """Momentum contrast with a queue of per-step keys.

    Defaults follow the MoCo CIFAR-10 recipe (facebookresearch/moco
    ``colab/moco_cifar10_demo.ipynb``: m 0.99, τ 0.1, 128-d, split-BN 8),
    scaled to ndigits (1,438 training samples, 22 steps of 64 per epoch):

    - the queue holds 1,024 keys instead of 4,096, less than one epoch, so it
      rarely holds a second key of the sample being contrasted;
    - the momentum is 0.9 instead of 0.99: CIFAR's 0.99 averages the key
      encoder over about one epoch of its 97 steps, and with 0.99 on ndigits
      the spiking key features drifted so far from the query's that two
      identical views had cosine 0.25 after 40 steps (0.6 with 0.9).

    Attributes:
        dim: Width of the projection (the contrasted vectors).
        hidden_dim: Hidden width of the 2-layer MLP projection head (MoCo v2).
        queue_size: Number of negative keys ``K``; each stores all ``T`` steps.
        momentum: EMA coefficient ``m`` of the key (subordinate) encoder.
        temperature: ``τ`` of the softmax.
        loss: ``"mixinfonce"`` or ``"infonce"`` (time-mean features only).
        mix_lambda: ``λ``, weight of the per-step term of MixInfoNCE.
        symmetric: Also contrast view 2 against view 1 (2x compute).
        bn_splits: Batch-norm groups on a single device (split-BN); ignored under DDP.
        shuffle_bn: Shuffle the key batch before the key encoder (across ranks under DDP).
    """

    dim: int = 128
    hidden_dim: int = 256
    queue_size: int = 1024
    momentum: float = 0.9
    temperature: float = 0.1
    loss: str = "mixinfonce"
    # Chosen by the ablation in experiments/README.md (ndigits, 3 seeds): linear probe and kNN fall as λ
    # grows; 0.25 is the best λ > 0 (probe 83.2 %, kNN 87.7 %; 0.5 gave 81.3 % / 86.1 %).
    mix_lambda: float = 0.25
    symmetric: bool = False
    bn_splits: int = 8
    shuffle_bn: bool = True

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ConfigError(f"[moco] loss={self.loss!r}: choose one of {list(LOSSES)}")
        if not 0.0 <= self.mix_lambda <= 1.0:
            raise ConfigError(f"[moco] mix_lambda={self.mix_lambda!r} must lie in [0, 1]")
        if not 0.0 <= self.momentum <= 1.0:
            raise ConfigError(f"[moco] momentum={self.momentum!r} must lie in [0, 1]")
        if self.temperature <= 0.0:
            raise ConfigError(f"[moco] temperature={self.temperature!r} must be > 0")
        for field in ("dim", "hidden_dim", "queue_size", "bn_splits"):
            if getattr(self, field) < 1:
                raise ConfigError(f"[moco] {field}={getattr(self, field)!r} must be >= 1")

    @property
    def effective_lambda(self) -> float:
        """``λ`` the loss uses: ``mix_lambda`` for MixInfoNCE, 0 for InfoNCE."""
        return self.mix_lambda if self.loss == "mixinfonce" else 0.0
