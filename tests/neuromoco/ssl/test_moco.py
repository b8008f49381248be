"""MoCo: momentum update, queue, neuron reset, gradients, split batch-norm and key shuffling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neuromoco.models import CubaLIFNode, ModelConfig, build_model
from neuromoco.ssl.config import MoCoConfig
from neuromoco.ssl.moco import MoCo
from neuromoco.ssl.shuffle import shuffle_batch, unshuffle_batch
from neuromoco.ssl.split_bn import SplitBatchNorm2d, convert_split_bn

T, B = 3, 4
INPUT_SHAPE = (2, 16, 16)
#: EMA and batch-norm in float32: a handful of ulps.
ATOL_PARAM = 1e-6


def tiny_moco(queue_size: int = 6, **moco_kwargs) -> MoCo:
    torch.manual_seed(0)
    backbone = build_model(ModelConfig(name="loihinet_s"), INPUT_SHAPE, 10)
    cfg = MoCoConfig(dim=8, hidden_dim=16, queue_size=queue_size, bn_splits=2, **moco_kwargs)
    return MoCo(convert_split_bn(backbone, cfg.bn_splits), cfg, T)


def views(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(T, B, *INPUT_SHAPE, generator=gen) < 0.3).float() * 2 for _ in range(2)]


def test_momentum_update_formula():
    moco = tiny_moco(momentum=0.9)
    with torch.no_grad():
        for p in moco.query_encoder.parameters():
            p.add_(1.0)
    before = [p.clone() for p in moco.momentum_encoder.parameters()]
    moco.momentum_update()
    for k_old, k_new, q in zip(before, moco.momentum_encoder.parameters(), moco.query_encoder.parameters()):
        assert torch.allclose(k_new, 0.9 * k_old + 0.1 * q, atol=ATOL_PARAM)


def test_key_encoder_starts_equal_and_has_no_gradient():
    moco = tiny_moco()
    for q, k in zip(moco.query_encoder.parameters(), moco.momentum_encoder.parameters()):
        assert torch.equal(q, k) and not k.requires_grad
    loss = moco(*views())
    loss.backward()
    assert all(p.grad is None for p in moco.momentum_encoder.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in moco.query_encoder.parameters())
    assert any(p.grad is not None for p in moco.query_head.parameters())


def test_queue_overwrites_oldest_and_wraps():
    moco = tiny_moco()
    keys = [nn.functional.normalize(torch.randn(T, B, 8), dim=-1) for _ in range(2)]
    moco.enqueue(keys[0])
    assert int(moco.queue_ptr) == 4
    assert torch.equal(moco.queue[:4], keys[0].transpose(0, 1))
    moco.enqueue(keys[1])  # rows 4, 5, then 0, 1
    assert int(moco.queue_ptr) == 2
    assert torch.equal(moco.queue[4:6], keys[1].transpose(0, 1)[:2])
    assert torch.equal(moco.queue[0:2], keys[1].transpose(0, 1)[2:])
    assert torch.equal(moco.queue[2:4], keys[0].transpose(0, 1)[2:])


def test_forward_enqueues_keys_and_resets_neurons():
    moco = tiny_moco()
    old = moco.queue.clone()
    loss = moco(*views())
    assert torch.isfinite(loss)
    assert int(moco.queue_ptr) == B
    assert not torch.equal(moco.queue[:B], old[:B]) and torch.equal(moco.queue[B:], old[B:])
    norms = moco.queue.norm(dim=-1)
    assert torch.allclose(norms, torch.ones_like(norms), atol=1e-5)
    for node in moco.modules():
        if isinstance(node, CubaLIFNode):
            assert node.v == 0.0 and node.u == 0.0


def test_symmetric_enqueues_both_directions():
    moco = tiny_moco(queue_size=12, symmetric=True)
    moco(*views())
    assert int(moco.queue_ptr) == 2 * B


def test_infonce_and_mixinfonce_differ():
    losses = {}
    for loss in ("infonce", "mixinfonce"):
        moco = tiny_moco(loss=loss, mix_lambda=0.5)
        losses[loss] = float(moco(*views()).detach())
    assert losses["infonce"] != losses["mixinfonce"]


def test_split_bn_equals_bn_per_group():
    torch.manual_seed(0)
    x = torch.randn(8, 3, 4, 4)
    split = SplitBatchNorm2d(3, num_splits=2)
    out = split(x)
    for group in range(2):
        ref = nn.BatchNorm2d(3)(x[group::2])
        assert torch.allclose(out[group::2], ref, atol=1e-5)
    split.eval()
    plain = nn.BatchNorm2d(3).eval()
    plain.load_state_dict(split.state_dict())
    assert torch.allclose(split(x), plain(x))


def test_split_bn_keeps_state_dict_keys():
    model = build_model(ModelConfig(name="loihinet_s"), INPUT_SHAPE, 10)
    keys = set(model.state_dict())
    convert_split_bn(model, 4)
    assert set(model.state_dict()) == keys
    assert any(isinstance(m, SplitBatchNorm2d) for m in model.modules())


def test_shuffle_round_trip():
    x = torch.arange(T * B * 2, dtype=torch.float32).reshape(T, B, 2)
    shuffled, undo = shuffle_batch(x)
    assert torch.equal(unshuffle_batch(shuffled, undo), x)
    assert sorted(shuffled[0, :, 0].tolist()) == sorted(x[0, :, 0].tolist())
