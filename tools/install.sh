#!/usr/bin/env bash
# The one install recipe: creates .venv in the repository root (idempotent) and
# installs the project with everything it needs, Lava included.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=".venv/bin/python -m pip --disable-pip-version-check -q"
# Some machines' pip configuration names local indexes that do not exist; pip says so
# once per package. Those lines carry no information: keep everything else.
quiet() { "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }; return "${PIPESTATUS[0]}"; }
# torch and torchvision come as a matching pair from one resolution (lava-dl's
# slayer imports torchvision; a mismatched pair breaks `import lava.lib.dl.netx`).
quiet $PIP install -e ".[lava,export,dev]"
# lava-nc 0.10.0 / lava-dl 0.6.0 declare Python <3.11 and pin torch <2.4 and an old
# pytest; their real runtime needs are the `lava` extra installed above.
quiet $PIP install --no-deps --ignore-requires-python "lava-nc==0.10.0" "lava-dl==0.6.0"
.venv/bin/python -c "import sims.lava_compat as l; l.import_netx()" \
  || { echo "install: Lava does not import; see the lines above" >&2; exit 1; }
echo "install: .venv ready"
