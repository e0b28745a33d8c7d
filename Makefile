# edgekit developer commands. Every target builds .venv from the pinned constraints first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench models docs wheel clean interop
INTEROP := tests/opcua/interop/node_modules/.package-lock.json

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,models,docs]"
	touch $(STAMP)

venv: $(STAMP)

# node-opcua for the OPC UA interoperability tests, pinned by package-lock.json. Without Node.js/npm
# (or without the npm registry) the interop tests skip with a message instead of failing.
$(INTEROP): tests/opcua/interop/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		(cd tests/opcua/interop && npm ci --no-audit --no-fund --loglevel=error) \
		|| echo "npm ci failed: the node-opcua interop tests will be skipped" >&2; \
	else echo "npm not found: the node-opcua interop tests will be skipped" >&2; fi

interop: $(INTEROP)

demo: $(STAMP)
	$(VENV)/bin/edgekit demo --duration $${DURATION:-60}

lint: $(STAMP)
	$(VENV)/bin/ruff check edgekit tests benchmarks models examples
	$(VENV)/bin/mypy

test: $(STAMP) interop
	$(VENV)/bin/ruff check edgekit tests benchmarks models examples
	$(VENV)/bin/mypy
	@$(VENV)/bin/pytest -q -p no:cacheprovider; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest: no tests were collected (exit 5)" >&2; fi; exit $$rc

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

models: $(STAMP)
	$(PY) models/build_all.py

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

wheel: $(STAMP)
	$(PY) -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) dist build site .pytest_cache .mypy_cache .ruff_cache
