# The two commands of the quick start: `make run` and `make test`.
# Everything is installed into .venv by this file; nothing global is needed
# beyond python3, git and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit bench clean

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

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP)
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/dispatcher.py
	$(BIN)/python benchmarks/webhooks.py
	$(BIN)/python benchmarks/audit.py

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache .import_linter_cache
