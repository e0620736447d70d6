# Stepline developer entry points. Needs only Python 3.11 (python3.11, else python3) and make;
# the first target run creates .venv and installs requirements-dev.txt into it.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell for p in python3.11 python3; do if $$p -c 'import sys' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python
# Touched after a successful install: the venv is reinstalled only when a requirements file changes.
STAMP := $(VENV)/.stepline-installed
PYTEST_WORKERS ?= 2

.PHONY: help venv run lint test browser bench chaos package clean

help:
	@echo "make run      start Stepline locally (API, worker, ticker, embedded moto) on http://127.0.0.1:8000"
	@echo "make lint     ruff (lint + format check) and mypy (strict on chalicelib/domain and chalicelib/agents)"
	@echo "make test     make lint, then the test suite (pytest -n $(PYTEST_WORKERS)), browser tests included"
	@echo "make browser  install Debian's Chromium for the browser tests (apt-get, only when missing)"
	@echo "make bench    run the benchmarks (python -m bench)"
	@echo "make chaos    1,000 executions under injected faults; prints and writes bench/results/chaos.json"
	@echo "make package  build the CloudFormation package into build/"
	@echo "make clean    remove the venv, caches and build output"

venv: $(STAMP)

$(VENV_PYTHON):
	@test -n "$(PYTHON)" || { echo "No python3.11 or python3 found on PATH" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml | $(VENV_PYTHON)
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	$(VENV_PYTHON) -m pip install --disable-pip-version-check -q -e .  # the `stepline` CLI
	@touch $@

run: $(STAMP)
	$(VENV_PYTHON) -m chalicelib.local.server

# Configuration in pyproject.toml ([tool.ruff], [tool.mypy]); `ruff format .` fixes the format.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: $(STAMP) lint browser
	$(VENV_PYTHON) -m pytest -n $(PYTEST_WORKERS) -q --ignore=tests/functional/test_chaos.py
	@# The chaos run installs process-wide botocore hooks and moto serialisation: its own process.
	$(VENV_PYTHON) -m pytest -q tests/functional/test_chaos.py

# The browser tests (tests/browser) drive Debian's Chromium with Playwright; Playwright's own
# browser downloads are never used. apt runs only when the binary is missing (CI runs as root).
CHROMIUM := /usr/bin/chromium
browser:
	@if [ ! -x $(CHROMIUM) ]; then \
	  echo "Installing Chromium for the browser tests (apt-get install chromium)"; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium; \
	fi

bench: $(STAMP)
	@if [ -d bench ]; then $(VENV_PYTHON) -m bench; else echo "No benchmarks yet (bench/ does not exist)."; fi

# Fault injection through the real handlers (bench/chaos.py): exits non-zero if a promise broke.
chaos: $(STAMP)
	STEPLINE_LOG_LEVEL=$${STEPLINE_LOG_LEVEL:-ERROR} $(VENV_PYTHON) -m bench.chaos $(CHAOS_ARGS)

# One deployable template, built and cfn-linted offline: `make package [STAGE=prod]`.
# With DEPLOY_BUCKET=<s3 bucket> it also uploads the code (aws cloudformation package), so that
# `aws cloudformation deploy --template-file build/packaged.json ...` is the only step left.
package: $(STAMP)
	rm -rf build
	$(VENV_PYTHON) infra/package.py --stage $(or $(STAGE),dev) --out build
	@if [ -n "$(DEPLOY_BUCKET)" ]; then aws cloudformation package --template-file build/sam.json --s3-bucket "$(DEPLOY_BUCKET)" --use-json --output-template-file build/packaged.json; fi

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
