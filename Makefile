# Two commands do all the set-up on a fresh machine:
#   make run    virtualenv, install, migrate, load the demo network, start web + worker + beat
#   make test   the whole suite: on PostgreSQL (DATABASE_URL, or the local server if it answers) and on SQLite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-pg test-sqlite install lint bench clean-var

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
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

bench: install
	$(BIN)/python bench/ingest.py

clean-var:
	rm -rf var
