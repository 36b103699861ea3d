# synth_pipelines: `make demo` and `make test` are all a new machine needs (Python 3.11 + pip).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
# One local home for the factory DB, objects and the Dagster instance: demo runs show in `make ui`.
export SYNTH_HOME ?= $(CURDIR)/.synth
export DAGSTER_HOME ?= $(SYNTH_HOME)/dagster
export HF_HUB_OFFLINE ?= 1
PYTEST_ARGS ?= -n 2

.PHONY: install browsers demo test ui workers lint format bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build first: anything that pulls a plain `torch` would fetch a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[ml,dev]'
	touch $@

install: $(VENV)/.installed

# The local instance's home, with a dagster.yaml (telemetry off) unless one is there.
$(DAGSTER_HOME)/dagster.yaml: | install
	$(BIN)/python -m synth_pipelines.local_instance $(DAGSTER_HOME)

demo: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/synth demo

# The browser tests (docs pages, portal) drive Debian's chromium through chromium-driver: installed
# here when missing and apt-get can run (as root, or through sudo); otherwise those tests skip
# and say why.
browsers:
	@if command -v chromium >/dev/null 2>&1 && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	as_root=""; if [ "$$(id -u)" != 0 ]; then as_root=sudo; fi; \
	if command -v apt-get >/dev/null 2>&1 && { [ -z "$$as_root" ] || sudo -n true 2>/dev/null; }; then \
	  $$as_root apt-get update -qq && \
	  $$as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver \
	  || echo "chromium could not be installed: the browser tests will be skipped"; \
	else echo "no apt-get as root here: the browser tests will be skipped (apt-get install chromium chromium-driver)"; fi

test: install browsers
	$(BIN)/pytest $(PYTEST_ARGS)

ui: install $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev

# Celery workers for SYNTH_EXECUTOR=celery (README, "Celery workers"): WORKERS processes on the
# default queue and GPU_WORKERS on the gpu queue, one step at a time each, on the broker and
# backend of SYNTH_CELERY_BROKER_URL / SYNTH_CELERY_BACKEND_URL. Ctrl-C stops them all.
WORKERS ?= 2
GPU_WORKERS ?= 1
workers: install
	$(BIN)/python -m synth_pipelines.execution workers --default $(WORKERS) --gpu $(GPU_WORKERS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install
	# SDV is only a yardstick for the tabular benchmark: installed here, not with the product.
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/faces.py
	$(BIN)/python benchmarks/dataset_requests.py
	$(BIN)/python benchmarks/tabular.py
	$(BIN)/python benchmarks/checks.py

clean:
	rm -rf $(VENV) .synth .pytest_cache .ruff_cache *.egg-info
