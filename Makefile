# The two commands: `make run` and `make test`. Everything else is a helper.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: run test install lint typecheck bench clean system-deps

$(STAMP): pyproject.toml constraints.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# pip and npm installs run side by side: a first `make run` is bound by the slower one.
install:
	@$(MAKE) --no-print-directory -j2 $(STAMP) $(NPM_STAMP)

# Debian packages the test suite drives (browser tests, Redis fan-out). CI runs as root.
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v redis-server >/dev/null 2>&1; then \
		if [ "$$(id -u)" = "0" ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium redis-server >/dev/null; \
		else \
			echo "note: chromium/redis-server missing; browser and Redis tests will be skipped"; \
		fi; \
	fi

run: install
	$(VENV)/bin/synergyhub dev

test: install system-deps
	$(PY) -m pytest -q

lint:
	$(VENV)/bin/ruff check core plugins tests
	$(VENV)/bin/mypy core

bench: install
	$(PY) bench/run.py

clean:
	rm -rf .data .pytest_cache .mypy_cache .ruff_cache
