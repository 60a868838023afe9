# Quick start: `make demo` runs a crisis end to end on the embedded Temporal server;
# `make test` installs everything and runs the whole suite (integration tests included).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium

.PHONY: install demo test lint docs postgresql iproute2 bench server-start server-stop clean

$(INSTALLED): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or newer is needed: run make with PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,tracing,docs]'
	@touch $@

install: $(INSTALLED)

demo: $(INSTALLED)
	$(BIN)/python scripts/demo.py

# The console's browser tests drive Debian's Chromium (never a browser Playwright downloads).
$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "The browser tests need Chromium at $(CHROMIUM): install it"; exit 1; }
	DEBIAN_FRONTEND=noninteractive apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The record store tests start PostgreSQL themselves, from Debian's package (installed if missing).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }

# The multi-host test builds its hosts from network namespaces with `ip` (installed if missing).
iproute2:
	@command -v ip >/dev/null || { \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2; }

# Most tests wait on servers and subprocesses, so two test processes nearly halve the wall time;
# each file's tests stay in one process, with that file's fixtures.
TEST_PROCESSES ?= 2

test: lint $(CHROMIUM) postgresql iproute2
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadfile

lint: $(INSTALLED)
	$(BIN)/ruff check src cognition scripts examples tests
	$(BIN)/ruff format --check src cognition scripts examples tests
	$(BIN)/pyright
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The documentation site, into build/site; its reference pages are generated from the code as it builds.
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

bench: $(INSTALLED)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test,tracing,bench]'
	@# Bytecode as a wheel install has it: the baseline's sandboxed worker re-imports its workflow
	@# module per run (Liara's worker runs outside the sandbox).
	$(BIN)/python -m compileall -q src cognition
	$(BIN)/liara bench

server-start: $(INSTALLED)
	$(BIN)/python scripts/setup_temporal.py start

server-stop: $(INSTALLED)
	$(BIN)/python scripts/setup_temporal.py stop

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
