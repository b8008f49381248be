"""Split batch-norm: MoCo's stand-in for shuffle-BN on a single device.

With one device, the query batch and the key batch would each be normalised
with statistics of the very samples they are compared with; the model can then
"cheat" by recognising its positive through those shared statistics (He et al.,
MoCo, section 3.3). Splitting the batch into ``num_splits`` groups with their
own statistics, and shuffling the key batch before the key encoder, makes the
query and the key of one sample see different groups, as several GPUs would.
This follows the MoCo CIFAR-10 Colab (facebookresearch/moco
``colab/moco_cifar10_demo.ipynb``, ``SplitBatchNorm``).

A multi-step input ``[T, B, ...]`` flattened to ``[T*B, ...]`` keeps sample
``b`` of every step in group ``b mod num_splits`` when ``num_splits`` divides
``B``. In eval mode the layers are plain batch-norms, and their state dict has
the keys of ``nn.BatchNorm1d``/``nn.BatchNorm2d``, so a checkpoint loads into
the unsplit backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _split_batch_norm(bn: nn.modules.batchnorm._BatchNorm, x: torch.Tensor, num_splits: int) -> torch.Tensor:
    """Normalise ``x`` ``[N, C, *]`` in ``num_splits`` interleaved groups; update the shared running stats."""
    batch, channels = x.shape[:2]
    if batch % num_splits:
        raise ValueError(f"split batch-norm: batch {batch} is not a multiple of bn_splits={num_splits}")
    assert bn.running_mean is not None and bn.running_var is not None and bn.weight is not None
    mean_split = bn.running_mean.repeat(num_splits)
    var_split = bn.running_var.repeat(num_splits)
    # (N, C, *) -> (N/S, S*C, *): sample n lands in group n mod S.
    out = F.batch_norm(
        x.reshape(batch // num_splits, channels * num_splits, *x.shape[2:]),
        mean_split,
        var_split,
        bn.weight.repeat(num_splits),
        bn.bias.repeat(num_splits) if bn.bias is not None else None,
        True,
        bn.momentum if bn.momentum is not None else 0.1,
        bn.eps,
    ).reshape(x.shape)
    with torch.no_grad():
        bn.running_mean.copy_(mean_split.view(num_splits, channels).mean(0))
        bn.running_var.copy_(var_split.view(num_splits, channels).mean(0))
    return out


class SplitBatchNorm2d(nn.BatchNorm2d):
    """``BatchNorm2d`` whose training statistics come from ``num_splits`` groups; accepts ``[T, B, C, H, W]`` too."""

    def __init__(self, num_features: int, num_splits: int, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(0, 1) if x.dim() == 5 else x  # multi-step spikingjelly layout
        if self.training and self.num_splits > 1:
            out = _split_batch_norm(self, flat, self.num_splits)
        else:
            out = super().forward(flat)
        return out.reshape(x.shape)


class SplitBatchNorm1d(nn.BatchNorm1d):
    """``BatchNorm1d`` whose training statistics come from ``num_splits`` groups."""

    def __init__(self, num_features: int, num_splits: int, **kwargs: object) -> None:
        super().__init__(num_features, **kwargs)  # type: ignore[arg-type]
        self.num_splits = num_splits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.num_splits > 1:
            return _split_batch_norm(self, x, self.num_splits)
        return super().forward(x)


def convert_split_bn(module: nn.Module, num_splits: int) -> nn.Module:
    """Replace every ``BatchNorm1d``/``BatchNorm2d`` in ``module`` (in place) by its split version.

    Args:
        module: A backbone or MoCo head.
        num_splits: Groups per batch; 1 leaves the module unchanged.

    Returns:
        ``module``, for chaining.
    """
    if num_splits <= 1:
        return module
    for name, child in module.named_children():
        if isinstance(child, (SplitBatchNorm1d, SplitBatchNorm2d)):
            continue
        if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)):
            cls = SplitBatchNorm2d if isinstance(child, nn.BatchNorm2d) else SplitBatchNorm1d
            split = cls(
                child.num_features,
                num_splits,
                eps=child.eps,
                momentum=child.momentum,
                affine=child.affine,
                track_running_stats=child.track_running_stats,
            )
            split.load_state_dict(child.state_dict())
            split.train(child.training)
            setattr(module, name, split.to(next(child.buffers(), torch.empty(0)).device))
        else:
            convert_split_bn(child, num_splits)
    return module
