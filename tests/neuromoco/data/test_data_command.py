"""``nmoco data NAME``: the summary, the PNG grid, one-line errors; and DataConfig checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from hw_targets.errors import ConfigError
from neuromoco.cli import main
from neuromoco.data import DataConfig


def test_real_nmnist_summary_and_grid(real_events: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "grid.png"
    code = main(["data", "nmnist", "--data-root", str(real_events / "nmnist"), "--show", "3", "--out", str(out)])
    text = capsys.readouterr().out
    assert code == 0
    assert "samples      14  (train 10, test 4)" in text
    assert "classes      10: 0 - zero" in text
    assert "sensor       34x34" in text
    assert "events/sample mean 4143, min 1665, max 5520" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_digits_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "digits.png"
    assert main(["data", "digits", "--show", "4", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "samples      1797  (train 1438, test 359)" in text and "events/sample" not in text
    assert out.is_file()


def test_missing_root_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "dvs_gesture", "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(tmp_path) in err and "_labels.csv" in err and err.startswith("nmoco data: error:")


def test_show_needs_out(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "digits", "--show", "4"]) == 2
    assert "--show N and --out FILE.png go together" in capsys.readouterr().err


@pytest.mark.slow
def test_ndigits_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "ndigits", "--show", "2", "--out", str(tmp_path / "g.png")]) == 0
    text = capsys.readouterr().out
    assert "samples      1797  (train 1438, test 359)" in text and "events/sample mean" in text


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("n_time_bins", 0, "n_time_bins=0"), ("frame_mode", "spikes", "frame_mode='spikes'"),
     ("size", (34,), "size="), ("size", (0, 3), "size="), ("num_workers", -1, "num_workers=-1"),
     ("time_window_us", 0.0, "time_window_us=0.0"), ("ndigits_count", 5, "ndigits_count=5")],
)
def test_bad_data_config_names_the_field(field: str, value: object, match: str) -> None:
    with pytest.raises(ConfigError, match=rf"\[data\] {match}"):
        DataConfig(**{field: value})  # type: ignore[arg-type]


def test_data_config_defaults_and_toml_lists() -> None:
    cfg = DataConfig(size=[32, 32])  # type: ignore[arg-type]
    assert cfg.size == (32, 32) and hash(cfg)
    assert DataConfig().name == "ndigits" and DataConfig().resolved_num_workers >= 1
