# The two commands of the quick start: `make run` and `make test`.
# Everything is installed into .venv by this file; nothing global is needed
# beyond python3, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench bench-audit clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/vault demo --dir demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-logo

typecheck: $(STAMP)
	$(BIN)/mypy

# The suite runs on every core (pytest-xdist; its tests use tmp paths and free
# ports only). Bytecode is cached under .venv even where PYTHONDONTWRITEBYTECODE
# is set: the suite starts hundreds of Python processes (the fake Forgejo's git
# hooks, dispatcher replicas, CLI runs), each compiling opsvault afresh otherwise.
PYTEST_WORKERS ?= auto
unit: $(STAMP)
	env -u PYTHONDONTWRITEBYTECODE PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache \
		$(BIN)/pytest -n $(PYTEST_WORKERS)

test: lint typecheck unit

# The four figures of issue 11 (ratios measured side by side in one run) and the
# webhook latency; under 5 minutes. benchmarks/fuzz.py runs on its own.
bench: $(STAMP)
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/dispatcher.py
	$(BIN)/python benchmarks/replicas.py
	$(BIN)/python benchmarks/webhooks.py --samples 3 --interval 10

# `vault audit verify` at 1,000 and 10,000 records (issue 14); apart from
# `bench` because building the 10,000-record history takes minutes.
bench-audit: $(STAMP)
	$(BIN)/python benchmarks/audit.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .import_linter_cache
