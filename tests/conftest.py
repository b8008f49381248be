"""Shared test fixtures: whether Lava is importable; test helpers on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# netgen.py (random networks) and shared_data.py are imported by tests in subfolders.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def lava_netx():  # type: ignore[no-untyped-def]
    """The lava-dl netx module, or skip when Lava is not installed."""
    from sims.lava_compat import import_netx, lava_available

    if not lava_available():
        pytest.skip("lava-nc / lava-dl are not installed")
    return import_netx()
