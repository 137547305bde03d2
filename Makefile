# cvlab — two commands: `make lab` (open the curriculum) and `make test` (run the whole suite).
# Both create the virtual environment in .venv on first use (about 3 minutes: torch installs from local files).
# `make test-fast` is the quick loop: every test that needs no trained model and no browser (marks in pyproject),
# spread over the cores with pytest-xdist.

SHELL  := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cvlab-installed
ARCH   := $(shell uname -m)
ifeq ($(ARCH),aarch64)
TORCH_PINS := torch==2.9.1 torchvision==0.24.1
else
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
endif

.PHONY: lab test test-fast env browser-deps benchmarks clean-venv

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PINS)
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/cvlab lab

# Chromium drives the widget tests in a real browser; installed with apt-get when we are root and it is missing.
browser-deps:
	@bash scripts/ensure-chromium.sh

test: $(STAMP) browser-deps
	@TIMEFORMAT='make test: %1R s wall, %1U s user + %1S s system CPU'; \
	time $(BIN)/python -m pytest

# Wall time and CPU time both: on a shared machine the wall time alone says little.
test-fast: $(STAMP)
	@TIMEFORMAT='make test-fast: %1R s wall, %1U s user + %1S s system CPU'; \
	time $(BIN)/python -m pytest -m "not slow and not browser" -q -n auto

benchmarks: $(STAMP)
	for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean-venv:
	rm -rf $(VENV)
