"""Locating ../shared/data from tests (absent in users' clones: tests skip with the reason)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LAVA_NETX = SHARED / "data" / "lava_netx"


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (users' clones have no ../shared)")
    return path
