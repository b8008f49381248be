"""Frame augmentations for the SSL views: crop, flip, shift, rotate, EventDrop, polarity swap.

One spatial warp per sample (random resized crop, horizontal flip, rotation and
translation composed into a single affine map, sampled with nearest neighbour
so count frames keep integer counts and binary frames stay binary) is applied
to every time bin and both polarities alike. Then the EventDrop operations of
Gu et al. 2021 ("EventDrop: data augmentation for event-based learning"),
carried over from events to frames: blank a span of time bins, blank a
rectangle in every bin, or thin the events (binomial thinning of the counts,
i.e. each event kept independently). All randomness comes from the
``torch.Generator`` passed in, so a view is a pure function of (frames, seed).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from neuromoco.data.config import AugmentConfig, DatasetInfo

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
#: Flip probability when ``AugmentConfig.flip_prob`` is None and the dataset is mirror-safe.
_FLIP_PROB_MIRROR_SAFE = 0.5
#: Uniform draws taken per call, always all of them, so one transform switching on or
#: off never shifts the random numbers another transform sees.
_N_DRAWS = 18


class FrameAugment:
    """The augmentation of one view: ``(T, P, H, W) -> (T, P, H, W)``, same dtype."""

    def __init__(self, cfg: AugmentConfig, flip_prob: float) -> None:
        """Fix the parameters.

        Args:
            cfg: Augmentation settings.
            flip_prob: Resolved horizontal flip probability.
        """
        self.cfg = cfg
        self.flip_prob = flip_prob
        self._grids: dict[tuple[int, int, torch.dtype], torch.Tensor] = {}

    def __call__(self, frames: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment one sample.

        Args:
            frames: ``(T, P, H, W)`` float frames (counts or binary); not modified.
            generator: Source of all randomness.

        Returns:
            A new ``(T, P, H, W)`` tensor.
        """
        cfg = self.cfg
        u = torch.rand(_N_DRAWS, generator=generator, dtype=torch.float64).tolist()
        steps, polarities, height, width = frames.shape
        out = self._warp(frames, u)

        if u[8] < cfg.drop_time_prob and steps > 0:
            span = max(1, round((1.0 - u[9]) * cfg.drop_time_max * steps))
            start = min(int(u[10] * (steps - span + 1)), steps - span)
            out[start : start + span] = 0
        if u[11] < cfg.drop_area_prob:
            side = math.sqrt((1.0 - u[12]) * cfg.drop_area_max)  # of a square of that area fraction
            box_h, box_w = max(1, round(side * height)), max(1, round(side * width))
            top = min(int(u[13] * (height - box_h + 1)), height - box_h)
            left = min(int(u[14] * (width - box_w + 1)), width - box_w)
            out[:, :, top : top + box_h, left : left + box_w] = 0
        if u[15] < cfg.drop_event_prob:
            keep = 1.0 - cfg.drop_event_max * (1.0 - u[16])  # removed fraction in (0, max]
            events = out > 0  # frames are sparse: thin only the bins that hold events
            counts = out[events]
            out[events] = torch.binomial(counts, torch.full_like(counts, keep), generator=generator)
        if polarities == 2 and u[17] < cfg.polarity_swap_prob:
            out = out.flip(1)  # (T, [OFF, ON] -> [ON, OFF], H, W)
        return out

    def _warp(self, frames: torch.Tensor, u: list[float]) -> torch.Tensor:
        """Crop-resize, flip, rotate and translate in one nearest-neighbour resampling."""
        cfg = self.cfg
        steps, polarities, height, width = frames.shape
        low, high = cfg.crop_scale
        area = low + (high - low) * u[0]
        log_lo, log_hi = math.log(cfg.crop_ratio[0]), math.log(cfg.crop_ratio[1])
        ratio = math.exp(log_lo + (log_hi - log_lo) * u[1])
        ratio = min(max(ratio, area), 1.0 / area)  # the crop must fit: a full-area crop is the frame
        crop_w = min(1.0, math.sqrt(area * ratio))  # fractions of the frame's width and height
        crop_h = min(1.0, math.sqrt(area / ratio))
        centre_x = (1.0 - crop_w) * (2.0 * u[2] - 1.0)  # normalised [-1, 1] coordinates
        centre_y = (1.0 - crop_h) * (2.0 * u[3] - 1.0)
        flip = -1.0 if u[4] < self.flip_prob else 1.0
        angle = math.radians(cfg.rotate_deg * (2.0 * u[5] - 1.0))
        shift_x = cfg.translate_px * (2.0 * u[6] - 1.0)  # pixels
        shift_y = cfg.translate_px * (2.0 * u[7] - 1.0)
        if (crop_w, crop_h, flip, angle, shift_x, shift_y) == (1.0, 1.0, 1.0, 0.0, 0.0, 0.0):
            return frames.clone()

        # Output -> input map, normalised coordinates: in = c + S F A (out - t), where A undoes
        # the rotation in pixel units (so non-square frames rotate without shearing).
        cos, sin = math.cos(angle), math.sin(angle)
        half_w, half_h = width / 2.0, height / 2.0
        a = ((cos, sin * half_h / half_w), (-sin * half_w / half_h, cos))  # D^-1 R(-angle) D
        scale = (crop_w * flip, crop_h)
        sfa = [[scale[r] * a[r][0], scale[r] * a[r][1]] for r in range(2)]
        t = (shift_x / half_w, shift_y / half_h)
        centre = (centre_x, centre_y)
        theta = torch.tensor(
            [[sfa[r][0], sfa[r][1], centre[r] - sfa[r][0] * t[0] - sfa[r][1] * t[1]] for r in range(2)],
            dtype=frames.dtype,
        )  # (2, 3)
        grid = (self._base_grid(height, width, frames.dtype) @ theta.T).reshape(1, height, width, 2)
        flat = frames.reshape(1, steps * polarities, height, width)
        warped = F.grid_sample(flat, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        return warped.reshape(steps, polarities, height, width)

    def _base_grid(self, height: int, width: int, dtype: torch.dtype) -> torch.Tensor:
        """``(H*W, 3)`` pixel centres ``(x, y, 1)`` in normalised coordinates (what ``affine_grid`` uses), cached."""
        key = (height, width, dtype)
        if key not in self._grids:
            ys = (torch.arange(height, dtype=torch.float64) * 2 + 1) / height - 1
            xs = (torch.arange(width, dtype=torch.float64) * 2 + 1) / width - 1
            y, x = torch.meshgrid(ys, xs, indexing="ij")
            self._grids[key] = torch.stack([x, y, torch.ones_like(x)], dim=-1).reshape(-1, 3).to(dtype)
        return self._grids[key]


def make_augment(cfg: AugmentConfig, info: DatasetInfo | None = None) -> Augment:
    """The augmentation of one view.

    Args:
        cfg: Augmentation settings.
        info: The dataset; with ``cfg.flip_prob`` None, a dataset that is not mirror-safe
            (DVS128 Gesture) gets no flips. Without it, flips default to 0.5.

    Returns:
        ``augment(frames (T, P, H, W), generator) -> (T, P, H, W)``; picklable, so
        DataLoader workers can run it.
    """
    if cfg.flip_prob is not None:
        flip = cfg.flip_prob
    else:
        flip = _FLIP_PROB_MIRROR_SAFE if info is None or info.mirror_safe else 0.0
    return FrameAugment(cfg, flip)
