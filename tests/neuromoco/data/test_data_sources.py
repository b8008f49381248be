"""Real datasets from local folders: layouts, splits, corrupt files, clear errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from hw_targets.errors import ConfigError, DataError
from neuromoco.data import DataConfig, build_dataset, dataset_info
from neuromoco.data.registry import canonical_name, event_source
from neuromoco.data.sources import index_dataset


def test_real_nmnist_folder(real_events: Path) -> None:
    cfg = DataConfig(name="nmnist", data_root=str(real_events / "nmnist"))
    info = dataset_info(cfg)
    assert (info.train_size, info.test_size, info.num_classes) == (10, 4, 10)
    assert info.sensor_size == (34, 34, 2) and info.input_shape == (2, 34, 34)
    train = event_source(cfg, "train")
    assert sorted(train.label(i) for i in range(len(train))) == list(range(10))
    for i in range(len(train)):  # the folder name is the label
        assert train.sample_id(i).startswith(f"Train/{train.label(i)}/")
    frames, label = build_dataset(cfg, "test")[0]
    assert frames.shape == (8, 2, 34, 34) and label == 0


def test_real_ncaltech101_folder(real_events: Path) -> None:
    cfg = DataConfig(name="ncaltech101", data_root=str(real_events / "ncaltech101"), size=(48, 64))
    info = dataset_info(cfg)
    assert info.class_names == ("airplanes",) and (info.train_size, info.test_size) == (1, 0)
    assert info.sensor_size == (240, 180, 2) and info.input_shape == (2, 48, 64)
    frames, _ = build_dataset(cfg, "train")[0]
    assert frames.shape == (8, 2, 48, 64)
    assert 0.99 * 116026 <= frames.sum() <= 116026, "binning to 48x64 keeps every event"


def test_gesture_labels_without_recording_is_an_error(real_events: Path) -> None:
    cfg = DataConfig(name="dvs_gesture", data_root=str(real_events / "dvsgesture"))
    with pytest.warns(UserWarning, match="user01_natural"), pytest.raises(DataError, match="no readable DVS128 Gesture"):
        dataset_info(cfg)


def _gesture_folder(root: Path, formats) -> Path:  # type: ignore[no-untyped-def]
    folder = root / "DvsGesture"
    rng = np.random.default_rng(1)
    for trial, windows in (("user01_fluorescent", [(1, 1_000, 40_000), (11, 50_000, 90_000)]),
                           ("user24_led", [(3, 5_000, 30_000)])):
        x, y, on, t = formats.random_events(rng, 3000, duration_us=100_000)
        formats.write_aedat31(folder / f"{trial}.aedat", [{"type": 1, "words": formats.polarity_words(x, y, on, t)}])
        rows = "\n".join(f"{c},{s},{e}" for c, s, e in windows)
        (folder / f"{trial}_labels.csv").write_text(f"class,startTime_usec,endTime_usec\n{rows}\n")
    (folder / "trials_to_train.txt").write_text("user01_fluorescent.aedat\n")
    (folder / "trials_to_test.txt").write_text("user24_led.aedat\n")
    return folder


def test_gesture_original_layout(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    folder = _gesture_folder(tmp_path, formats)
    cfg = DataConfig(name="DVS128-Gesture", data_root=str(tmp_path), n_time_bins=4)
    info = dataset_info(cfg)
    assert (info.train_size, info.test_size, info.num_classes) == (2, 1, 11)
    assert not info.mirror_safe, "left and right hand waves swap under a mirror"
    train = event_source(cfg, "train")
    assert [train.label(i) for i in range(2)] == [0, 10], "csv classes 1..11 are labels 0..10"
    window = train.events(0)
    assert window["t"].min() >= 1_000 and window["t"].max() < 40_000
    assert len(list(_cached_windows(folder))) >= 2, "the first read cut the whole recording into gestures"
    frames, label = build_dataset(cfg, "test")[0]
    assert frames.shape == (4, 2, 128, 128) and label == 2


def _cached_windows(folder: Path) -> list[Path]:
    from neuromoco.data.cache import cache_root

    return [p for p in (cache_root() / "dvs_gesture").glob("*/*.npy")]


def _cifar_folder(root: Path, formats, per_class: int = 10, classes=("airplane", "cat", "truck")) -> Path:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(2)
    for cls in classes:
        for k in range(per_class):
            x, y, on, t = formats.random_events(rng, 200)
            formats.write_aedat2(root / "CIFAR10DVS" / cls / f"cifar10_{cls}_{k}.aedat", formats.dvs128_address(x, y, on), t)
    return root / "CIFAR10DVS"


def test_dvs_cifar10_seeded_stratified_split_is_cached(tmp_path: Path, formats, private_cache: Path) -> None:  # type: ignore[no-untyped-def]
    folder = _cifar_folder(tmp_path, formats)
    cfg = DataConfig(name="cifar10-dvs", data_root=str(tmp_path))
    with pytest.warns(UserWarning, match="class folders missing"):
        index = index_dataset("dvs_cifar10", cfg.data_root, cfg.seed)
    assert index.folder == folder.resolve()
    assert index.class_names[0] == "airplane" and len(index.class_names) == 10
    assert (len(index.train), len(index.test)) == (27, 3)
    assert sorted(r.label for r in index.test) == [0, 3, 9], "one of ten per class held out"
    written = list((private_cache / "splits").glob("dvs_cifar10-seed0-*.json"))
    assert len(written) == 1
    stored = json.loads(written[0].read_text())
    assert sorted(stored["test"]) == sorted(r.sample_id for r in index.test)

    # Another seed, another split; the same seed, the same split (recomputed from the file list).
    from neuromoco.data import sources

    sources._index_cached.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = index_dataset("dvs_cifar10", cfg.data_root, 0)
        other = index_dataset("dvs_cifar10", cfg.data_root, 5)
    assert [r.sample_id for r in again.test] == [r.sample_id for r in index.test]
    assert [r.sample_id for r in other.test] != [r.sample_id for r in index.test]


def test_corrupt_file_is_skipped_with_a_warning_and_counted(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    folder = _cifar_folder(tmp_path, formats, per_class=3, classes=("dog",))
    bad = folder / "dog" / "cifar10_dog_1.aedat"
    bad.write_bytes(bad.read_bytes()[:-5])
    cfg = DataConfig(name="dvs_cifar10", data_root=str(folder))
    with pytest.warns(UserWarning) as record:
        info = dataset_info(cfg)
    assert any("cifar10_dog_1.aedat" in str(w.message) for w in record)
    assert info.skipped_files == 1 and info.train_size + info.test_size == 2


def test_no_readable_file_is_an_error(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    for k in range(2):
        formats.write_atis(tmp_path / "Caltech101" / "ant" / f"image_{k:04d}.bin", [1], [1], [True], [1])
        path = tmp_path / "Caltech101" / "ant" / f"image_{k:04d}.bin"
        path.write_bytes(path.read_bytes()[:-1])
    with pytest.warns(UserWarning, match=r"skipping corrupt event file: .*image_000[01]\.bin"), pytest.raises(DataError, match="no readable N-Caltech101"):
        dataset_info(DataConfig(name="ncaltech101", data_root=str(tmp_path)))


@pytest.mark.parametrize("name", ["nmnist", "ncaltech101", "dvs_cifar10", "dvs_gesture"])
def test_wrong_data_root_names_folder_and_layout(tmp_path: Path, name: str) -> None:
    with pytest.raises(DataError, match=f"in {tmp_path}.*expected .*Nothing is downloaded"):
        dataset_info(DataConfig(name=name, data_root=str(tmp_path)))
    with pytest.raises(DataError, match=f"the data root {tmp_path / 'nope'} does not exist"):
        dataset_info(DataConfig(name=name, data_root=str(tmp_path / "nope")))
    with pytest.raises(DataError, match="no --data-root was given"):
        dataset_info(DataConfig(name=name))


def test_names_and_splits() -> None:
    assert canonical_name("N-Caltech101") == "ncaltech101"
    with pytest.raises(ConfigError, match="'mnist'.*ndigits"):
        DataConfig(name="mnist")
    with pytest.raises(ConfigError, match="split='val'"):
        build_dataset(DataConfig(), "val")


def test_dataset_folder_found_one_level_down(real_events: Path) -> None:
    info = dataset_info(DataConfig(name="nmnist", data_root=str(real_events)))
    assert info.data_root == str((real_events / "nmnist").resolve()) and info.train_size == 10
    info = dataset_info(DataConfig(name="ncaltech101", data_root=str(real_events)))
    assert info.class_names == ("airplanes",)


def test_gesture_tonic_reexport(tmp_path: Path) -> None:
    for split, user, label in (("ibmGestureTrain", "user01_led", 0), ("ibmGestureTrain", "user01_led", 7),
                               ("ibmGestureTest", "user24_natural", 3)):
        folder = tmp_path / "DVSGesture" / split / user
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"{label}.npy", np.array([[1, 2, 1, 0.0], [5, 6, 0, 20.0], [9, 9, 1, 40.0]]))
    cfg = DataConfig(name="dvs_gesture", data_root=str(tmp_path), n_time_bins=2)
    info = dataset_info(cfg)
    assert (info.train_size, info.test_size) == (2, 1)
    frames, label = build_dataset(cfg, "test")[0]
    assert label == 3 and frames.shape == (2, 2, 128, 128) and frames.sum() >= 2
