"""Shared test fixtures: where ../shared is, and whether Lava is importable."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
LAVA_NETX = SHARED / "data" / "lava_netx"

# netgen.py (random networks for property tests) is imported by tests in subfolders.
sys.path.insert(0, str(Path(__file__).resolve().parent))


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test with the reason."""
    path = SHARED.joinpath("data", *parts)
    if not path.exists():
        pytest.skip(f"{path} is absent (users' clones have no ../shared)")
    return path


@pytest.fixture(scope="session")
def lava_netx():  # type: ignore[no-untyped-def]
    """The lava-dl netx module, or skip when Lava is not installed."""
    from sims.lava_compat import lava_available, import_netx

    if not lava_available():
        pytest.skip("lava-nc / lava-dl are not installed")
    return import_netx()
