# Quick start: `make demo` runs the main job, `make test` the test suite.
# Both create .venv on first use (tools/install.sh) and re-use it after.
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test test-all typecheck bench venv clean

$(STAMP): pyproject.toml tools/install.sh
	bash tools/install.sh
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nmoco demo

# mypy --strict over hw_targets/, export/, sims/, neuromoco/{ssl,quant,train,pipeline}/, neuromoco/cli*.py (configured in pyproject.toml).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# The default suite skips tests marked `slow`; `make test-all` runs everything.
test: $(STAMP) typecheck
	$(VENV)/bin/python -m pytest -n 2 -m "not slow" $(PYTEST_ARGS)

test-all: $(STAMP)
	$(VENV)/bin/python -m pytest -n 2 $(PYTEST_ARGS)

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/sim_speed.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis *.egg-info
