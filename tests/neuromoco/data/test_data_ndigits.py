"""``ndigits``: deterministic, balanced, N-MNIST-like event statistics, cached."""

from __future__ import annotations

import numpy as np
import pytest

from neuromoco.data import ndigits
from neuromoco.data.emulator import DvsParams, emulate, pixel_thresholds
from neuromoco.data.events import EVENT_DTYPE
from neuromoco.data.splits import stratified_split

SMALL = 40


@pytest.fixture(scope="module")
def small() -> ndigits.EventSet:
    return ndigits.generate(seed=0, count=SMALL)


def _same(a: ndigits.EventSet, b: ndigits.EventSet) -> bool:
    return (np.array_equal(a.offsets, b.offsets) and np.array_equal(a.labels, b.labels)
            and np.array_equal(a.events, b.events))


def test_same_seed_same_events(small: ndigits.EventSet) -> None:
    assert _same(small, ndigits.generate(seed=0, count=SMALL))


def test_other_seed_other_events(small: ndigits.EventSet) -> None:
    other = ndigits.generate(seed=1, count=SMALL)
    np.testing.assert_array_equal(other.labels, small.labels)
    assert not np.array_equal(other.events, small.events)


def test_a_sample_does_not_depend_on_the_batch(small: ndigits.EventSet) -> None:
    fewer = ndigits.generate(seed=0, count=20)
    for i in range(20):
        np.testing.assert_array_equal(fewer.sample(i), small.sample(i))


def test_event_statistics_are_plausible(small: ndigits.EventSet) -> None:
    counts = np.diff(small.offsets)
    # Real N-MNIST: 1,665-5,520 events per sample (../shared/data/real_events/SOURCES.md).
    assert 1500 < counts.mean() < 8000 and counts.min() > 500
    rate = counts.mean() / 0.315  # events per second over the three saccades
    assert 5_000 < rate < 25_000
    for i in range(len(small)):
        sample = small.sample(i)
        assert sample.dtype == EVENT_DTYPE
        assert np.all(np.diff(sample["t"]) >= 0)
        assert sample["t"].min() >= 0 and sample["t"].max() < 315_000
        assert sample["x"].min() >= 0 and sample["x"].max() < 34
        assert sample["y"].min() >= 0 and sample["y"].max() < 34
        assert 0.4 < sample["p"].mean() < 0.6


def test_events_follow_the_saccades(small: ndigits.EventSet) -> None:
    """During the first saccade the digit moves down: ON events (bright ink arriving) lie below OFF ones."""
    sample = small.sample(0)
    first = sample[(sample["t"] > 30_000) & (sample["t"] < 75_000)]
    assert first["y"][first["p"]].mean() > first["y"][~first["p"]].mean() + 1.0


def test_labels_balanced_and_split_stratified() -> None:
    _, labels = ndigits.digit_images()
    assert len(labels) == 1797
    per_class = np.bincount(labels)
    assert per_class.min() >= 174 and per_class.max() <= 183
    train, test = stratified_split(labels, ndigits.TEST_FRACTION, seed=0)
    assert len(train) + len(test) == 1797 and not set(train) & set(test)
    held = np.bincount(labels[test], minlength=10) / per_class
    assert np.all(np.abs(held - ndigits.TEST_FRACTION) < 0.01)
    again = stratified_split(labels, ndigits.TEST_FRACTION, seed=0)
    np.testing.assert_array_equal(again[1], test)


def test_load_caches_under_nmoco_cache(private_cache, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    first = ndigits.load(seed=3, count=20)
    path = ndigits.cache_path(3, 20)
    assert path.is_file() and private_cache in path.parents

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again instead of reading the cache")

    monkeypatch.setattr(ndigits, "generate", fail)
    assert _same(first, ndigits.load(seed=3, count=20))


def test_emulator_fires_on_brightening_and_respects_refractory() -> None:
    params = DvsParams(threshold=0.2, threshold_sigma=0.0, refractory_us=5_000.0, noise_rate_hz=0.0, dark_level=0.1)
    c_on, c_off = pixel_thresholds(params, (1, 1), np.random.default_rng(0))
    times = np.arange(0, 11_000, 1_000, dtype=np.float64)
    ramp = [np.full((1, 1, 1), 0.1 * k, dtype=np.float32) for k in range(len(times))]  # +0.1 log units per ms
    raw = emulate(iter(ramp), times, c_on, c_off, np.zeros((1, 1, 1), np.float32), params.refractory_us)
    assert raw.p.all(), "a brightening pixel gives ON events"
    assert np.all(np.diff(raw.t) >= 5_000), "events of one pixel are a refractory period apart"
    assert abs(int(raw.t[0]) - 2_000) <= 1, "the first threshold crossing (0.2 at 0.1/ms) is at 2 ms"


@pytest.mark.slow
def test_full_dataset_is_deterministic_and_balanced() -> None:
    full = ndigits.generate(seed=0)
    assert len(full) == 1797
    assert _same(full, ndigits.generate(seed=0))
    assert np.bincount(full.labels).min() >= 174
    head = ndigits.generate(seed=0, count=SMALL)
    np.testing.assert_array_equal(full.events[: head.offsets[-1]], head.events)
