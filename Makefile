# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
export CERVIXSCOPE_DB ?= $(CURDIR)/cervixscope.db
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml | sha1sum | cut -c1-12)
STAMP := $(VENV)/.installed-$(REQ_HASH)
PIP := $(PY) -m pip install -qq --disable-pip-version-check

.PHONY: help venv browser lint test test-fast screenshots demo dashboard bench bench-reading clean

help:
	@echo "make demo   build the demo cohort, run the model comparison, start the dashboard on :$(PORT)"
	@echo "make test   lint and run the whole test suite (installs what the tests need)"

$(STAMP): requirements.txt requirements-dev.txt requirements-ray.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python packages into $(VENV) (first run: a few minutes)..."
	@$(PIP) --upgrade pip
	@$(PIP) -r requirements-dev.txt
	@# the editable build prints setuptools chatter; on failure show it by running again loud
	@$(PIP) --no-deps --no-build-isolation -e . 2>/dev/null || $(PY) -m pip install --no-deps --no-build-isolation -e .
	@rm -f $(VENV)/.installed-*
	@touch $@

venv: $(STAMP)

# Debian's Chromium for the browser tests; Playwright cannot download its own browser here.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

lint: venv
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test: venv browser lint
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not e2e and not slow" -x -q

demo: venv
	@$(PY) -m core.cli demo --out data/demo --port $(PORT)
	@echo "The command line: $(VENV)/bin/cervixscope --help (or: source $(VENV)/bin/activate, then cervixscope --help)"
	@$(PY) -m core.cli dashboard --port $(PORT)

# Re-take the README screenshots from a passing browser test.
screenshots: venv browser
	CERVIXSCOPE_PUBLISH_SCREENSHOTS=1 $(PY) -m pytest tests/e2e -m e2e -q

bench: venv
	$(PY) -m core.cli bench

# The reading workstation: 50 keyboard reads in Chromium, then 20 readers over the websocket.
bench-reading: venv browser
	$(PY) -m tests.load.bench_reading
	$(PY) -m tests.load.bench_server

clean:
	rm -rf data runs cache cervixscope.db cervixscope.db-wal cervixscope.db-shm cervixscope.log
