# The obvious targets. Everything runs from a local virtual environment (.venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve test lint format typecheck check bench corpus clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)  ## start the service on the shipped checkpoint at http://127.0.0.1:8000
	$(BIN)/python -m app --host 127.0.0.1 --port 8000

test: $(STAMP)  ## the whole test suite
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/hadolint Dockerfile

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck test

bench: $(STAMP)
	$(BIN)/python benchmarks/quality.py --quick

corpus: $(STAMP)
	$(BIN)/pip install --quiet -e ".[corpus]"
	$(BIN)/python scripts/build_corpus.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
