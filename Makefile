# Two entry points: `make demo` and `make test`. Each builds .venv idempotently with pip only.
# The fast loop while coding: `make test-fast` (lint and tests/unit, well under a minute).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

# The live PBX tests (pytest -m pbx) run a real Asterisk: the launcher handed to us beside
# the checkout, unless FRONTDESK_TEST_ASTERISK names another. Prompts need espeak-ng and sox.
FRONTDESK_TEST_ASTERISK ?= $(abspath $(wildcard ../shared/asterisk/asterisk))
export FRONTDESK_TEST_ASTERISK
SYSTEM_TOOLS := espeak-ng sox

.PHONY: demo test test-fast check-install lint venv bench clean sysdeps

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) main.py demo --report demo-report.json

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# Debian packages the tests need, installed only when missing (root and apt-get required).
sysdeps:
	@missing=""; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_TOOLS) >/dev/null; \
	fi

# Everything: lint, then tests/unit, tests/sandbox, tests/e2e and tests/pbx (live Asterisk).
test: lint sysdeps
	$(PY) -m pytest

# Lint and the unit tests (pure, in-process: no servers, subprocesses or Whisper).
test-fast: lint
	$(PY) -m pytest tests/unit

# `pip install .` into a fresh venv gives a working `frontdesk` (also part of `make test`).
check-install: $(STAMP)
	$(PY) -m pytest tests/e2e/test_install.py

bench: $(STAMP)
	$(PY) bench/ami_ingest.py

clean:
	rm -rf $(VENV) demo-report.json

# The same day with its calls on a real private Asterisk (FRONTDESK_TEST_ASTERISK, above).
.PHONY: demo-pbx
demo-pbx: $(STAMP)
	$(PY) main.py demo --pbx --report demo-report.json
