# order-dispatch: `make demo` runs the product end to end, `make test` runs the tests.
# Both create .venv and install what they need on first use (Python 3.11+ is all they require).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test unit integration lint lint-deploy typecheck check sandbox worker bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/order-dispatch demo

test: $(STAMP)
	$(BIN)/python -m pytest

unit: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/sandbox

integration: $(STAMP)
	$(BIN)/python -m pytest tests/integration

lint: $(STAMP)
	$(BIN)/ruff check .

# hadolint on the Dockerfile, dclint (npm, installed under .venv/node) on docker-compose.yml.
# Once installed, `make test` runs dclint too.
DCLINT := $(VENV)/node/node_modules/.bin/dclint
lint-deploy: $(STAMP)
	$(BIN)/hadolint Dockerfile
	@command -v npm >/dev/null || { echo "lint-deploy: dclint needs npm (Node.js)"; exit 1; }
	test -x $(DCLINT) || npm install --silent --no-audit --no-fund --prefix $(VENV)/node dclint@3.1.0
	$(DCLINT) docker-compose.yml

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

sandbox: $(STAMP)
	$(BIN)/order-dispatch sandbox

worker: $(STAMP)
	$(BIN)/order-dispatch worker

# The product against Celery's defaults and a no-queue ceiling (results in bench-results/);
# BENCH_ARGS=--sweep adds the latency / processes / events / threads sweep.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/sandbox_throughput.py
	$(BIN)/order-dispatch bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
