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
# The suite's files on 3 workers (pytest-xdist; a file's tests stay on one worker, in order):
# most tests wait on peers and timers, not the CPU. PARALLEL= runs them in one process.
PARALLEL ?= -n 3 --dist loadfile

.PHONY: demo test test-fast test-pg check-install lint venv bench bench-quick clean sysdeps pgdeps browserdeps

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

# PostgreSQL's server binaries (Debian's packages) for the multi-gateway tests, installed
# only when missing. The tests start private clusters on loopback; nothing else is used.
pgdeps:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then \
	  echo "installing postgresql"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	fi

# Debian's chromium for the web desk's browser tests (pytest -m browser; Playwright drives
# it by executable path, nothing is downloaded) and a CJK font for the Chinese
# screenshots, installed only when missing.
browserdeps:
	@if ! command -v chromium >/dev/null || ! fc-list | grep -qi "wenquanyi"; then \
	  echo "installing chromium and a CJK font"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	fi

# Everything: lint, then tests/unit, tests/sandbox, tests/e2e, tests/fuzz, tests/faults and
# tests/pbx (live Asterisk) on SQLite, then the integration suite again on PostgreSQL.
test: lint sysdeps pgdeps browserdeps
	$(PY) -m pytest $(PARALLEL)
	$(MAKE) --no-print-directory test-pg

# The integration tests (tests/e2e, tests/faults) with every database a PostgreSQL one: a
# private cluster for the run unless FRONTDESK_TEST_PG_URL names a server (.ci/run does).
# Left out: what is PostgreSQL-first already (it ran in the first pass) and what touches no
# database of its own (the pip install, the benchmark smoke, the demo, the kill drill's own
# SQLite file, the transcription engines).
PG_SKIP := tests/e2e/test_cluster.py tests/faults/test_instances.py tests/faults/test_postgresql.py \
	tests/e2e/test_kill_outbox.py tests/e2e/test_install.py tests/e2e/test_bench_smoke.py \
	tests/e2e/test_demo.py tests/e2e/test_transcription.py
test-pg: $(STAMP) pgdeps
	FRONTDESK_TEST_DB=postgres $(PY) -m pytest tests/e2e tests/faults $(PARALLEL) \
	  $(addprefix --ignore=,$(PG_SKIP))

# Lint and the unit tests (pure, in-process: no servers, subprocesses or Whisper).
test-fast: lint
	$(PY) -m pytest tests/unit

# `pip install .` into a fresh venv gives a working `frontdesk` (also part of `make test`).
check-install: $(STAMP)
	$(PY) -m pytest tests/e2e/test_install.py

# Every benchmark of the issue: one table, and bench/results.json (a few minutes; the
# PostgreSQL rows start a private cluster). `make bench-quick`: small sizes.
bench: $(STAMP) pgdeps
	$(PY) bench/run_all.py

bench-quick: $(STAMP) pgdeps
	$(PY) bench/run_all.py --quick --results bench/results-quick.json

clean:
	rm -rf $(VENV) demo-report.json

# The same day with its calls on a real private Asterisk (FRONTDESK_TEST_ASTERISK, above).
.PHONY: demo-pbx
demo-pbx: $(STAMP)
	$(PY) main.py demo --pbx --report demo-report.json
