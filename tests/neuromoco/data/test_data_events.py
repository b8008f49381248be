"""Event-file readers: real N-MNIST / N-Caltech101 recordings, and AEDAT files in the published formats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw_targets.errors import DataError
from neuromoco.data.events import (
    EVENT_DTYPE,
    check_file,
    clip_to_sensor,
    file_format,
    read_aedat2_dvs128,
    read_aedat31_polarity,
    read_events,
    read_gesture_labels,
    read_gesture_npy,
)

#: Event counts of the shared recordings, as listed in ../shared/data/real_events/SOURCES.md.
NMNIST_COUNTS = {
    "Test/0/00004.bin": 5293,
    "Test/1/00003.bin": 1665,
    "Test/2/00002.bin": 4840,
    "Test/7/00001.bin": 3330,
    "Train/0/00002.bin": 5028,
    "Train/1/00004.bin": 2723,
    "Train/2/00006.bin": 4921,
    "Train/3/00008.bin": 5520,
    "Train/4/00003.bin": 3307,
    "Train/5/00001.bin": 4681,
    "Train/6/00014.bin": 4542,
    "Train/7/00016.bin": 4138,
    "Train/8/00018.bin": 4096,
    "Train/9/00005.bin": 3913,
    "tonic_sample_nmnist.bin": 4325,
}


def _check_stream(events: np.ndarray, width: int, height: int) -> None:
    assert events.dtype == EVENT_DTYPE
    assert np.all(np.diff(events["t"]) >= 0), "timestamps must be in time order"
    assert events["x"].min() >= 0 and events["x"].max() < width
    assert events["y"].min() >= 0 and events["y"].max() < height
    on = events["p"].mean()
    assert 0.4 < on < 0.6, f"ON fraction {on:.2f}: N-MNIST/N-Caltech101 saccades give about half ON"


@pytest.mark.parametrize("relative", sorted(NMNIST_COUNTS))
def test_real_nmnist_recordings_parse(real_events: Path, relative: str) -> None:
    events = read_events(real_events / "nmnist" / relative)
    assert len(events) == NMNIST_COUNTS[relative]
    _check_stream(events, 34, 34)
    span_s = (events["t"][-1] - events["t"][0]) * 1e-6
    assert 0.28 < span_s < 0.32, "three 105 ms saccades"


def test_real_ncaltech101_recording_parses(real_events: Path) -> None:
    events = read_events(real_events / "ncaltech101" / "airplanes" / "image_0005.bin")
    assert len(events) == 116026
    _check_stream(events, 240, 180)
    assert events["x"].max() == 232 and events["y"].max() == 100


def test_real_gesture_labels_parse(real_events: Path) -> None:
    table = read_gesture_labels(real_events / "dvsgesture" / "user01_natural_labels.csv")
    assert table.shape == (12, 3)
    assert sorted(set(table[:, 0].tolist())) == list(range(1, 12))
    assert np.all(table[:, 2] > table[:, 1])


def test_nmnist_digit_is_upright(real_events: Path) -> None:
    """Convention check on real data: the '1' of Train/1 is a tall stroke (rows span > columns span)."""
    events = read_events(real_events / "nmnist" / "Train" / "1" / "00004.bin")
    first = events[events["t"] < 100_000]  # first saccade
    image = np.zeros((34, 34))
    np.add.at(image, (first["y"], first["x"]), 1)
    rows = np.flatnonzero(image.sum(1) > 0.1 * image.sum(1).max())
    cols = np.flatnonzero(image.sum(0) > 0.1 * image.sum(0).max())
    assert rows.ptp() > cols.ptp()


def test_aedat2_uses_jaer_dvs128_map(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    # Raw addresses per jAER DVS128.java: x = 127 - bits 1..7, y (from the bottom) = bits 8..14, ON = bit 0 clear.
    raw = np.array([0x0000, 0x0001, 0x0002, 0x0100, 0x7FFE, 0x8000], dtype=np.int64)
    path = formats.write_aedat2(tmp_path / "a.aedat", raw, np.arange(6) * 10)
    events = read_aedat2_dvs128(path)
    assert len(events) == 5, "bit 15 marks an external event, not a pixel"
    # Image rows from the top: jAER y_raw = 0 (bottom) is row 127.
    assert events["x"].tolist() == [127, 127, 126, 127, 0]
    assert events["y"].tolist() == [127, 127, 127, 126, 0]
    assert events["p"].tolist() == [True, False, True, True, True]
    assert events["t"].tolist() == [0, 10, 20, 30, 40]


def test_aedat2_round_trips_image_coordinates(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    x, y, on, t = formats.random_events(rng, 500)
    path = formats.write_aedat2(tmp_path / "cifar10_cat_0.aedat", formats.dvs128_address(x, y, on), t)
    assert file_format(path) == "aedat2"
    events = read_events(path)
    np.testing.assert_array_equal(events["x"], x)
    np.testing.assert_array_equal(events["y"], y)
    np.testing.assert_array_equal(events["p"], on)
    np.testing.assert_array_equal(events["t"], t)


def test_aedat31_reads_polarity_packets_only(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    words = formats.polarity_words([3, 100], [5, 120], [True, False], [10, 20])
    invalid = formats.polarity_words([7], [7], [True], [25], valid=False)
    special = np.array([[0x12345679, 15]], dtype=np.uint32)  # a type-0 special event, would decode as a pixel
    late = formats.polarity_words([127], [0], [True], [5])
    path = formats.write_aedat31(
        tmp_path / "user01_led.aedat",
        [
            {"type": 1, "words": np.concatenate([words, invalid])},
            {"type": 0, "words": special},
            {"type": 1, "words": late, "overflow": 1},
        ],
    )
    assert file_format(path) == "aedat31"
    events = read_aedat31_polarity(path)
    assert events["x"].tolist() == [3, 100, 127]
    assert events["y"].tolist() == [5, 120, 0]
    assert events["p"].tolist() == [True, False, True]
    assert events["t"].tolist() == [10, 20, (1 << 31) | 5], "tsOverflow extends the 31-bit timestamp"


@pytest.mark.parametrize("cut", [1, 7, 30])
def test_truncated_aedat31_is_a_data_error(tmp_path: Path, formats, cut: int) -> None:  # type: ignore[no-untyped-def]
    words = formats.polarity_words(np.arange(10), np.arange(10), np.ones(10, bool), np.arange(10))
    path = formats.write_aedat31(tmp_path / "user02_led.aedat", [{"type": 1, "words": words}] * 2)
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(DataError, match="user02_led.aedat.*truncated"):
        check_file(path)


def test_truncated_atis_and_aedat2_are_data_errors(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    atis = formats.write_atis(tmp_path / "0" / "1.bin", [1, 2], [3, 4], [True, False], [5, 6])
    atis.write_bytes(atis.read_bytes()[:-2])
    with pytest.raises(DataError, match="1.bin.*truncated"):
        check_file(atis)
    aedat = formats.write_aedat2(tmp_path / "a.aedat", np.array([2, 4]), np.array([1, 2]))
    aedat.write_bytes(aedat.read_bytes()[:-3])
    with pytest.raises(DataError, match="a.aedat.*8-byte"):
        check_file(aedat)
    garbage = tmp_path / "b.aedat"
    garbage.write_bytes(b"\x00\x01\x02 not an aedat file")
    with pytest.raises(DataError, match="b.aedat"):
        check_file(garbage)


def test_atis_writer_matches_tonic_reader(tmp_path: Path, formats) -> None:  # type: ignore[no-untyped-def]
    path = formats.write_atis(tmp_path / "s.bin", [0, 33, 10], [0, 2, 33], [True, False, True], [1, 70_000, 300_000])
    events = read_events(path)
    assert events["x"].tolist() == [0, 33, 10] and events["y"].tolist() == [0, 2, 33]
    assert events["p"].tolist() == [True, False, True] and events["t"].tolist() == [1, 70_000, 300_000]


def test_tonic_gesture_reexport_npy(tmp_path: Path) -> None:
    array = np.array([[1, 2, 1, 0.5], [3, 4, 0, 2.0]])  # x, y, p, t in ms (tonic's DVSGesture .npy)
    np.save(tmp_path / "3.npy", array)
    events = read_gesture_npy(tmp_path / "3.npy")
    assert events["t"].tolist() == [500, 2000] and events["p"].tolist() == [True, False]


def test_unknown_extension_and_bad_labels(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="x.txt"):
        file_format(tmp_path / "x.txt")
    bad = tmp_path / "u_labels.csv"
    bad.write_text("class,startTime_usec,endTime_usec\n12,5,10\n")
    with pytest.raises(DataError, match="1..11"):
        read_gesture_labels(bad)


def test_clip_to_sensor_warns_with_the_file_name() -> None:
    events = np.zeros(3, dtype=EVENT_DTYPE)
    events["x"] = [0, 5, 40]
    with pytest.warns(UserWarning, match="rec.bin: dropped 1 of 3"):
        kept = clip_to_sensor(events, 34, 34, "rec.bin")
    assert len(kept) == 2


def test_aedat4_reexport_names_its_missing_package(tmp_path: Path) -> None:
    import importlib.util

    from hw_targets.errors import MissingDependencyError

    if importlib.util.find_spec("aedat") is not None:
        pytest.skip("the 'aedat' package is installed")
    path = tmp_path / "cat" / "cifar10_cat_0.aedat4"
    path.parent.mkdir()
    path.write_bytes(b"#!AER-DAT4.0\r\n")
    check_file(path)  # only the decoder can check an AEDAT4 file
    with pytest.raises(MissingDependencyError, match=r"cifar10_cat_0.aedat4.*pip install aedat"):
        read_events(path)
