#!/usr/bin/env bash
# The whole suite, once, on PostgreSQL: DATABASE_URL when it is set, else the
# project's own server under var/pg (started here, and stopped again if this
# script started it). Usage: scripts/test.sh [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
started_db=""
if [ -z "${DATABASE_URL:-}" ]; then
  t0=$EPOCHREALTIME
  state=$($BIN/python scripts/pg.py start) || exit 1
  if [ "$state" = started ]; then started_db=1; fi
  echo "== suite on the project's PostgreSQL under var/pg ($state, ready in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s)"
else
  echo "== suite on DATABASE_URL (${DATABASE_URL%%@*}@...)"
fi
stop_db() { if [ -n "$started_db" ]; then $BIN/python scripts/pg.py stop >/dev/null; fi; }
trap stop_db EXIT
# two workers: this machine kind has two cores
$BIN/pytest -q -n "${PYTEST_WORKERS:-2}" "$@" || exit 1
if [ $# -eq 0 ]; then
  # a full run: every paragraph in scope has a passing test, and the
  # committed docs/traceability.md says so (make traceability rewrites it)
  $BIN/python scripts/traceability.py --check
fi
