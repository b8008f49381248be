"""Cold start: ``nmoco --help`` and ``nmoco CMD --help`` load no heavy library (torch, spikingjelly, tonic, Lava)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "spikingjelly", "tonic", "lava")

# `nmoco data --help` is left out: its parser lives in neuromoco.data.command, and the package's
# __init__ imports the loaders (torch) eagerly.
COMMANDS = ["", "simulate", "export", "validate", "demo", "train"]


def _modules_after_help(command: str) -> list[str]:
    """Top-level packages in sys.modules after ``nmoco [COMMAND] --help``, in a fresh interpreter."""
    argv = [command, "--help"] if command else ["--help"]
    code = (
        "import sys\n"
        "from neuromoco.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                         check=True)
    assert "usage: nmoco" in out.stdout
    return out.stderr.split()


@pytest.mark.parametrize("command", COMMANDS, ids=[c or "nmoco" for c in COMMANDS])
def test_help_imports_nothing_heavy(command: str) -> None:
    loaded = set(_modules_after_help(command))
    assert not loaded & set(HEAVY), f"nmoco {command} --help imported {sorted(loaded & set(HEAVY))}"
