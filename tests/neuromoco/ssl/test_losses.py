"""InfoNCE and MixInfoNCE against a slow loop written from the formulas."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from neuromoco.ssl.losses import info_nce, mix_info_nce, nce

#: float32 fast path vs float64 loop over at most a few hundred logits of size <= 1/τ = 10: ~1e-6 relative.
ATOL_LOSS = 1e-5


def slow_nce(q, k, negatives, tau):
    """-log(exp(q·k/τ) / (exp(q·k/τ) + Σ_n exp(q·n/τ))) for one query, in float64."""
    pos = math.exp(float(q.double() @ k.double()) / tau)
    neg = sum(math.exp(float(q.double() @ n.double()) / tau) for n in negatives)
    return -math.log(pos / (pos + neg))


def unit_mean(z, dim):
    return F.normalize(z.double().mean(dim), dim=-1)


def slow_mix(q, k, queue, tau, lam):
    steps, batch, _ = q.shape
    per_step = sum(slow_nce(q[t, b], k[t, b], queue[:, t], tau) for t in range(steps) for b in range(batch))
    per_step /= steps * batch
    q_bar, k_bar, n_bar = unit_mean(q, 0), unit_mean(k, 0), unit_mean(queue, 1)
    mean = sum(slow_nce(q_bar[b], k_bar[b], n_bar, tau) for b in range(batch)) / batch
    return lam * per_step + (1 - lam) * mean


def random_unit(*shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=gen), dim=-1)


@pytest.mark.parametrize("lam", [0.0, 0.3, 1.0])
def test_mixinfonce_matches_formula(lam):
    q, k, queue = random_unit(4, 3, 8, seed=0), random_unit(4, 3, 8, seed=1), random_unit(16, 4, 8, seed=2)
    fast = mix_info_nce(q, k, queue, 0.1, lam)
    assert float(fast) == pytest.approx(slow_mix(q, k, queue, 0.1, lam), abs=ATOL_LOSS)


def test_infonce_is_time_mean_only():
    q, k, queue = random_unit(3, 5, 6, seed=3), random_unit(3, 5, 6, seed=4), random_unit(10, 3, 6, seed=5)
    assert float(info_nce(q, k, queue, 0.2)) == pytest.approx(slow_mix(q, k, queue, 0.2, 0.0), abs=ATOL_LOSS)


def test_nce_is_cross_entropy_with_label_zero():
    q, k, negs = random_unit(5, 4, seed=6), random_unit(5, 4, seed=7), random_unit(9, 4, seed=8)
    logits = torch.cat([(q * k).sum(1, keepdim=True), q @ negs.T], 1) / 0.07
    expected = F.cross_entropy(logits, torch.zeros(5, dtype=torch.long))
    assert float(nce(q, k, negs, 0.07)) == pytest.approx(float(expected), abs=ATOL_LOSS)


def test_gradient_reaches_queries_only():
    q = random_unit(2, 3, 4, seed=9).requires_grad_(True)
    k, queue = random_unit(2, 3, 4, seed=10), random_unit(6, 2, 4, seed=11)
    mix_info_nce(q, k, queue, 0.1, 0.5).backward()
    assert q.grad is not None and q.grad.abs().sum() > 0


@settings(max_examples=25, deadline=None)
@given(
    steps=st.integers(1, 4),
    batch=st.integers(1, 4),
    queue=st.integers(1, 6),
    lam=st.floats(0.0, 1.0),
    tau=st.floats(0.05, 1.0),
    seed=st.integers(0, 1000),
)
def test_mixinfonce_property(steps, batch, queue, lam, tau, seed):
    q, k = random_unit(steps, batch, 5, seed=seed), random_unit(steps, batch, 5, seed=seed + 1)
    negs = random_unit(queue, steps, 5, seed=seed + 2)
    fast = float(mix_info_nce(q, k, negs, tau, lam))
    assert fast >= 0.0
    assert fast == pytest.approx(slow_mix(q, k, negs, tau, lam), abs=ATOL_LOSS * max(1.0, 0.1 / tau))
