"""Frame augmentations: deterministic under a seed, shape-preserving, each transform doing what it says."""

from __future__ import annotations

import pytest
import torch

from hw_targets.errors import ConfigError
from neuromoco.data import AugmentConfig, DatasetInfo, make_augment

#: All transforms off; tests switch on one at a time.
OFF = dict(crop_scale=(1.0, 1.0), flip_prob=0.0, translate_px=0.0, rotate_deg=0.0,
           drop_time_prob=0.0, drop_area_prob=0.0, drop_event_prob=0.0, polarity_swap_prob=0.0)


def _frames(steps: int = 8, height: int = 34, width: int = 30) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    return torch.poisson(torch.full((steps, 2, height, width), 0.8), generator=gen)  # (T, 2, H, W) counts


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_default_augment_is_deterministic_and_keeps_shape() -> None:
    frames = _frames()
    before = frames.clone()
    augment = make_augment(AugmentConfig())
    first = augment(frames, _gen(1))
    assert first.shape == frames.shape and first.dtype == frames.dtype
    assert torch.equal(frames, before), "the input is not modified"
    assert torch.equal(first, augment(frames, _gen(1)))
    assert not torch.equal(first, augment(frames, _gen(2)))
    assert torch.equal(first, first.round()) and first.min() >= 0, "counts stay non-negative integers"


def test_identity_config_returns_the_input() -> None:
    frames = _frames()
    assert torch.equal(make_augment(AugmentConfig(**OFF))(frames, _gen(0)), frames)


def test_flip_is_an_exact_mirror() -> None:
    frames = _frames()
    out = make_augment(AugmentConfig(**{**OFF, "flip_prob": 1.0}))(frames, _gen(0))
    assert torch.equal(out, frames.flip(-1))


def test_polarity_swap() -> None:
    frames = _frames()
    out = make_augment(AugmentConfig(**{**OFF, "polarity_swap_prob": 1.0}))(frames, _gen(0))
    assert torch.equal(out[:, 0], frames[:, 1]) and torch.equal(out[:, 1], frames[:, 0])


def test_drop_by_time_blanks_a_contiguous_span() -> None:
    frames = _frames() + 1  # no empty bin before the drop
    for seed in range(10):
        out = make_augment(AugmentConfig(**{**OFF, "drop_time_prob": 1.0, "drop_time_max": 0.25}))(frames, _gen(seed))
        blank = [t for t in range(8) if out[t].sum() == 0]
        assert 1 <= len(blank) <= 2 and blank == list(range(blank[0], blank[0] + len(blank)))
        kept = [t for t in range(8) if t not in blank]
        assert torch.equal(out[kept], frames[kept])


def test_drop_by_area_blanks_one_rectangle_in_every_bin() -> None:
    frames = _frames() + 1
    out = make_augment(AugmentConfig(**{**OFF, "drop_area_prob": 1.0, "drop_area_max": 0.25}))(frames, _gen(3))
    hole = out.sum(dim=(0, 1)) == 0  # (H, W)
    rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
    assert 0 < hole.sum() <= 0.25 * hole.numel() + 2 * 34
    assert hole[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].all(), "a rectangle"
    assert torch.equal(out[:, :, ~hole], frames[:, :, ~hole])


def test_random_event_drop_thins_counts() -> None:
    frames = _frames() * 5
    out = make_augment(AugmentConfig(**{**OFF, "drop_event_prob": 1.0, "drop_event_max": 0.5}))(frames, _gen(4))
    assert torch.all(out <= frames) and out.sum() < frames.sum() and out.sum() > 0.45 * frames.sum()
    binary = (frames > 0).float()
    thinned = make_augment(AugmentConfig(**{**OFF, "drop_event_prob": 1.0}))(binary, _gen(4))
    assert set(thinned.unique().tolist()) <= {0.0, 1.0}


def test_spatial_transforms_move_content_and_keep_binary_frames_binary() -> None:
    binary = (_frames() > 0).float()
    cfg = AugmentConfig(**{**OFF, "crop_scale": (0.3, 0.6), "translate_px": 4.0, "rotate_deg": 30.0})
    out = make_augment(cfg)(binary, _gen(5))
    assert set(out.unique().tolist()) <= {0.0, 1.0} and not torch.equal(out, binary)


def _info(name: str, mirror_safe: bool) -> DatasetInfo:
    return DatasetInfo(name, 11, tuple("abcdefghijk"), (128, 128, 2), (2, 128, 128), 8, 10, 2, mirror_safe, 0, None)


def test_no_flips_for_gestures_unless_asked() -> None:
    assert make_augment(AugmentConfig(), _info("dvs_gesture", False)).flip_prob == 0.0  # type: ignore[attr-defined]
    assert make_augment(AugmentConfig(), _info("dvs_cifar10", True)).flip_prob == 0.5  # type: ignore[attr-defined]
    asked = make_augment(AugmentConfig(flip_prob=0.3), _info("dvs_gesture", False))
    assert asked.flip_prob == 0.3  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("field", "value"),
    [("crop_scale", (0.5, 1.5)), ("crop_scale", (0.0, 1.0)), ("flip_prob", 2.0), ("drop_event_max", -0.1),
     ("translate_px", -1.0), ("rotate_deg", 200.0)],
)
def test_bad_augment_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=rf"\[augment\] {field}="):
        AugmentConfig(**{field: value})
