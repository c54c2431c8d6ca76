# Two commands do all the set-up on a fresh machine:
#   make run    virtualenv, install, database, migrate, demo network, web + worker + beat
#   make test   the whole suite, on DATABASE_URL or the project's own PostgreSQL under var/pg
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install lint bench traceability clean-db clean-var

$(STAMP): requirements.txt requirements-dev.txt $(wildcard package-lock.json)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	# anvil (a local EVM node) for the chain integration tests
	if [ -f package.json ] && command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund; \
	else echo "npm not found: the anvil integration tests will be skipped"; fi
	# Chromium for the browser tests (tests/e2e/test_browser.py), from Debian's packages when apt is there
	if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	  || echo "chromium not installed: the browser tests will be skipped"; fi
	touch $(STAMP)

install: $(STAMP)

run: install
	scripts/run.sh

test: install
	scripts/test.sh

# docs/traceability.md from the last full run of the suite (make test)
traceability: install
	$(BIN)/python scripts/traceability.py


lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	# django-stubs imports the settings, which refuse to load without a SECRET_KEY when DEBUG is off
	SECRET_KEY=lint-only-not-a-secret $(BIN)/mypy config controls registry settlement custody reserves operations

# every benchmark on the project's PostgreSQL (or BENCH_DATABASE_URL), one
# summary table, figures into bench/README.md; each one alone: bench/*.py --help
bench: install
	$(BIN)/python bench/all.py

# The project's database and what belongs with it (the demo chain, demo keys).
# Needed after changing the pinned PostgreSQL major version.
clean-db:
	test ! -x $(BIN)/python || $(BIN)/python scripts/pg.py stop
	rm -rf var/pg var/anvil var/demo-engine-key var/demo-admin-password

clean-var: clean-db
	rm -rf var
