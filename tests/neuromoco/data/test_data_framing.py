"""Events to frames: shapes, dtypes, counts, downsampling, time windows, and the frame cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from neuromoco.data import DataConfig, build_dataset
from neuromoco.data.events import make_events
from neuromoco.data.framing import FramedDataset, FrameSpec, frame_events
from neuromoco.data.sources import ArraySource

COUNT = 40  # ndigits images used by these tests


def _events(n: int = 2000, size: int = 34, duration: int = 300_000) -> np.ndarray:
    rng = np.random.default_rng(0)
    t = np.sort(rng.integers(0, duration, n))
    return make_events(rng.integers(0, size, n), rng.integers(0, size, n), t, rng.random(n) < 0.5)


def test_n_time_bins_frames() -> None:
    events = _events()
    frames = frame_events(events, FrameSpec((34, 34, 2), 8, None, None))
    assert frames.shape == (8, 2, 34, 34) and frames.dtype == np.int16
    assert len(events) - 8 <= frames.sum() <= len(events), "tonic's equal bins miss at most the last few events"
    on = events[events["p"]]
    assert abs(int(frames[:, 1].sum()) - len(on)) <= 8, "channel 1 is ON"


def test_time_window_pads_and_cuts() -> None:
    events = _events(duration=300_000)
    start = events["t"][0]
    short = frame_events(events, FrameSpec((34, 34, 2), 4, 50_000.0, None))
    assert short.shape == (4, 2, 34, 34)
    assert short.sum() == np.sum(events["t"] < start + 200_000), "frames cover 4 x 50 ms from the first event"
    long = frame_events(events, FrameSpec((34, 34, 2), 10, 50_000.0, None))
    assert long.shape == (10, 2, 34, 34) and long[7:].sum() == 0, "past the recording: empty frames"


def test_downsampling_keeps_every_event() -> None:
    events = _events()
    full = frame_events(events, FrameSpec((34, 34, 2), 8, None, None))
    small = frame_events(events, FrameSpec((34, 34, 2), 8, None, (17, 17)))
    assert small.shape == (8, 2, 17, 17)
    np.testing.assert_array_equal(small, full.reshape(8, 2, 17, 2, 17, 2).sum(axis=(3, 5)))


def test_empty_and_non_square() -> None:
    spec = FrameSpec((240, 180, 2), 5, None, None)
    assert frame_events(_events(0), spec).shape == (5, 2, 180, 240)
    events = make_events(np.array([239, 0]), np.array([0, 179]), np.array([0, 10_000]), np.array([True, False]))
    frames = frame_events(events, spec)
    assert frames.shape == (5, 2, 180, 240) and frames[0, 1, 0, 239] == 1


@pytest.mark.parametrize("mode", ["count", "binary"])
def test_dataset_items(mode: str) -> None:
    cfg = DataConfig(ndigits_count=COUNT, frame_mode=mode)
    train, test = build_dataset(cfg, "train"), build_dataset(cfg, "test")
    assert len(train) + len(test) == COUNT
    frames, label = train[0]
    assert frames.shape == (8, 2, 34, 34) and frames.dtype == torch.float32 and isinstance(label, int)
    if mode == "binary":
        assert set(frames.unique().tolist()) <= {0.0, 1.0}
    else:
        assert frames.max() > 1 and torch.equal(frames, frames.round())


def test_model_input_size_and_t() -> None:
    frames, _ = build_dataset(DataConfig(ndigits_count=COUNT, size=[16, 16], n_time_bins=5), "train")[1]
    assert frames.shape == (5, 2, 16, 16)


def test_second_epoch_reads_no_events(tmp_path: Path) -> None:
    cfg = DataConfig(ndigits_count=COUNT)
    eager = build_dataset(cfg, "train")
    source = eager.source  # type: ignore[attr-defined]
    assert isinstance(source, ArraySource)
    lazy = FramedDataset(source, eager.spec, "count", tmp_path / "frames")  # type: ignore[attr-defined]
    assert lazy.store is not None and lazy.store.filled() == 0
    first = [lazy[i][0] for i in range(len(lazy))]
    assert lazy.store.filled() == len(lazy)

    def no_events(index: int) -> np.ndarray:
        raise AssertionError("read events although the frames are cached")

    source.events = no_events  # type: ignore[method-assign]
    for i, frames in enumerate(first):
        assert torch.equal(lazy[i][0], frames)
        assert torch.equal(eager[i][0], frames), "framed on build or on first read: the same frames"
    rebuilt = build_dataset(cfg, "train")  # reads the cached frames, frames nothing
    assert torch.equal(rebuilt[3][0], first[3])


def test_damaged_cache_entry_is_framed_again(tmp_path: Path) -> None:
    eager = build_dataset(DataConfig(ndigits_count=COUNT), "train")
    lazy = FramedDataset(eager.source, eager.spec, "count", tmp_path)  # type: ignore[attr-defined]
    frames = lazy[0][0]
    store = lazy.store
    assert store is not None and store._frames is not None
    store._frames[0, 0, 0, 0, 0] += 7  # as if a crash cut the write short
    with pytest.warns(UserWarning, match="frames.bin: sample 0 is damaged"):
        again = lazy[0][0]
    assert torch.equal(again, frames) and store.get(0) is not None


def test_cache_of_another_layout_is_an_error(tmp_path: Path) -> None:
    from hw_targets.errors import DataError
    from neuromoco.data.store import FrameStore

    FrameStore(tmp_path / "frames.bin", 3, (2, 2, 4, 4))
    with pytest.raises(DataError, match="frames.bin.*delete the file"):
        FrameStore(tmp_path / "frames.bin", 4, (2, 2, 4, 4))
