# The obvious targets. Everything runs from a local virtual environment (.venv).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install serve serve-ray test lint format typecheck check bench corpus clean \
	container-deps container-test gpu-check

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)  ## start the service on the shipped checkpoint at http://127.0.0.1:8000
	$(BIN)/python -m app --host 127.0.0.1 --port 8000

serve-ray: $(STAMP)  ## the service on Ray Serve, 2 replicas at http://127.0.0.1:8000 (docs/ray.md)
	$(BIN)/pip install --quiet -e ".[ray]"
	RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 $(BIN)/serve run deploy/ray/serve_config.yaml

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

# Docker where an engine answers, else Debian's podman with runc and debootstrap for the
# local base image (docs/container.md).
CONTAINER_TOOLS := podman runc debootstrap curl
container-deps:
	@docker info >/dev/null 2>&1 || for tool in $(CONTAINER_TOOLS); do \
		command -v $$tool >/dev/null || { apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		$(CONTAINER_TOOLS) >/dev/null || exit 1; break; }; \
	done

container-test: container-deps  ## build the image, run it, check the API, HEALTHCHECK, SIGTERM
	scripts/container_test.sh

gpu-check:  ## CUDA training, sampling, service and score agreement (docs/gpu.md)
	scripts/gpu_check.sh

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
