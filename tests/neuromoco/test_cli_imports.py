"""Cold start: ``nmoco --help`` and ``nmoco CMD --help`` load no heavy library (torch, spikingjelly, tonic, Lava)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "spikingjelly", "tonic", "lava")

COMMANDS = ["", "simulate", "export", "validate", "demo", "train", "data"]


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


def test_native_simulate_imports_no_torch(tmp_path: Path) -> None:
    """The whole native ``nmoco simulate`` path (netx reader, simulator, energy) runs without torch,
    spikingjelly, tonic or Lava: a cold simulation costs numpy and numba, not torch's import."""
    import numpy as np

    from export.examples import random_spikes, small_conv_network
    from export.netx import write_netx

    model = write_netx(small_conv_network(0), tmp_path / "m.net")
    np.save(tmp_path / "x.npy", random_spikes(0, (4, 2, 34, 34), 0.2))
    argv = ["simulate", str(model), "--input", str(tmp_path / "x.npy"), "--backend", "native",
            "--out", str(tmp_path / "r.npz"), "--energy", "loihi"]
    code = (
        "import sys\n"
        "from neuromoco.cli import main\n"
        f"code = main({argv!r})\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})), file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "r.npz").is_file()
    loaded = set(out.stderr.split())
    assert not loaded & set(HEAVY), f"native nmoco simulate imported {sorted(loaded & set(HEAVY))}"


def test_hand_listed_model_names_are_the_registry() -> None:
    """``nmoco train --help`` lists the backbones without importing them; ``nmoco demo --model`` offers every
    deployable one (the loihinet family, its SEW graphs and the sigma-delta chain)."""
    from neuromoco.cli import build_parser
    from neuromoco.models import list_models
    from neuromoco.models.loihinet import LOIHINET_SPECS
    from neuromoco.models.loihinet_sdnn import SDNN_SPECS
    from neuromoco.models.loihinet_sew import SEW_SPECS
    from neuromoco.train.command import MODEL_NAMES

    assert sorted(MODEL_NAMES) == list_models()
    demo = next(a for a in build_parser("demo")._subparsers._group_actions[0].choices["demo"]._actions
                if a.dest == "model")
    assert sorted(demo.choices) == sorted([*LOIHINET_SPECS, *SEW_SPECS, *SDNN_SPECS])
