# Two commands do all the set-up on a fresh machine:
#   make run    virtualenv, install, migrate, load the demo network, start web + worker + beat
#   make test   the whole suite: on PostgreSQL (DATABASE_URL, or the local server if it answers) and on SQLite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-pg test-sqlite install lint bench clean-var

$(STAMP): requirements.txt requirements-dev.txt $(wildcard package-lock.json)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# anvil (a local EVM node) for the chain integration tests
	if [ -f package.json ] && command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the anvil integration tests will be skipped"; fi
	touch $(STAMP)

install: $(STAMP)

run: install
	scripts/run.sh

test: install
	scripts/test.sh all

test-pg: install
	scripts/test.sh pg

test-sqlite: install
	scripts/test.sh sqlite

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy config settlement custody reserves

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/cycles.py

clean-var:
	rm -rf var
