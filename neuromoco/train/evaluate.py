"""Accuracy measurements: kNN on frozen features (pre-training monitor) and top-1 of the classifier."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from neuromoco.models.base import SpikingBackbone, readout_logits

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


@torch.no_grad()
def extract_features(
    model: SpikingBackbone, batches: Batches, device: torch.device, autocast: Callable[[], AbstractContextManager[None]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit time-mean features of every sample, in eval mode.

    Args:
        model: Backbone (its train/eval mode is restored afterwards).
        batches: ``(frames (B, T, C, H, W), labels (B,))`` pairs.
        device: Where to run.
        autocast: Context factory for mixed precision (a no-op on CPU).

    Returns:
        ``(features (N, D) float32 unit rows, labels (N,) int64)`` on the CPU.
    """
    was_training = model.training
    model.eval()
    feats, labels = [], []
    try:
        for frames, label in batches:
            x = frames.to(device, non_blocking=True).transpose(0, 1)  # (T, B, C, H, W)
            with autocast():
                f = model.features(x)  # (T, B, D)
            functional.reset_net(model)
            feats.append(F.normalize(f.float().mean(0), dim=1).cpu())
            labels.append(label.cpu())
    finally:
        model.train(was_training)
    return torch.cat(feats), torch.cat(labels).long()


def knn_top1(
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    queries: torch.Tensor,
    query_labels: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float,
) -> float:
    """Weighted kNN accuracy (Wu et al. 2018, as in the MoCo CIFAR Colab).

    Each query's ``k`` most cosine-similar bank entries vote for their label
    with weight ``exp(similarity / temperature)``.

    Args:
        bank: ``(N, D)`` unit features of the labelled set.
        bank_labels: ``(N,)``.
        queries: ``(M, D)`` unit features to classify.
        query_labels: ``(M,)``.
        num_classes: Number of labels.
        k: Neighbours (capped at ``N``).
        temperature: Vote temperature.

    Returns:
        Top-1 accuracy in [0, 1].
    """
    k = min(k, bank.shape[0])
    sim = queries @ bank.T  # (M, N)
    top_sim, top_idx = sim.topk(k, dim=1)  # (M, k)
    votes = torch.zeros(queries.shape[0], num_classes)
    votes.scatter_add_(1, bank_labels[top_idx], (top_sim / temperature).exp())
    return float((votes.argmax(1) == query_labels).float().mean())


@torch.no_grad()
def top1_accuracy(
    model: SpikingBackbone, batches: Batches, device: torch.device, autocast: Callable[[], AbstractContextManager[None]]
) -> float:
    """Top-1 accuracy of the model's read-out (spike count or time-mean output), in eval mode.

    Ties between spike counts go to the lowest class index (``argmax``), which
    is also what a count read on the chip would give.

    Args:
        model: Backbone with its classifier.
        batches: ``(frames (B, T, C, H, W), labels (B,))`` pairs.
        device: Where to run.
        autocast: Context factory for mixed precision.

    Returns:
        Accuracy in [0, 1].
    """
    was_training = model.training
    model.eval()
    correct = total = 0
    try:
        for frames, label in batches:
            x = frames.to(device, non_blocking=True).transpose(0, 1)  # (T, B, C, H, W)
            with autocast():
                logits = readout_logits(model, model(x).float())  # (B, num_classes)
            functional.reset_net(model)
            correct += int((logits.argmax(1).cpu() == label).sum())
            total += int(label.numel())
    finally:
        model.train(was_training)
    return correct / max(total, 1)
