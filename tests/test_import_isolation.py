"""The IR, the netx reader/writer and the target tables load neither torch nor neuromoco."""

from __future__ import annotations

import subprocess
import sys


def test_ir_and_netx_do_not_import_torch_or_training_code() -> None:
    code = (
        "import sys\n"
        "import export.ir, export.netx, hw_targets\n"
        "import hw_targets.loihi\n"
        "try:\n    import sims.energy\nexcept ModuleNotFoundError:\n    pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'neuromoco', 'lava'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"imported: {out.stdout.strip()}"


def test_hw_targets_imports_nothing_of_the_project() -> None:
    code = (
        "import sys\nimport hw_targets, hw_targets.loihi, hw_targets.errors, hw_targets.constants\n"
        "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('export', 'sims', 'neuromoco'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
