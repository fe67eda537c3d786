# The README contract: `make demo` runs the main job on bundled defaults, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.ferlab-installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=24"
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

demo: venv
	$(BIN)/ferlab demo --out demo-out

lint: venv
	$(BIN)/ruff check ferlab tests benchmarks

test: venv lint
	$(BIN)/python -m pytest -q

bench: venv
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf demo-out .pytest_cache .ruff_cache
