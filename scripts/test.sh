#!/usr/bin/env bash
# Run the suite on PostgreSQL (DATABASE_URL, or the local server when it
# answers) and on SQLite. Usage: scripts/test.sh [all|pg|sqlite] [pytest args]
set -uo pipefail
cd "$(dirname "$0")/.."
which="${1:-all}"; shift || true
BIN=.venv/bin
status=0

pg_url() {
  if [ -n "${DATABASE_URL:-}" ]; then echo "$DATABASE_URL"; return 0; fi
  local url="postgres://postgres@127.0.0.1:5432/postgres"
  if $BIN/python - "$url" <<'PY' 2>/dev/null; then echo "postgres://postgres@127.0.0.1:5432/settlement"; return 0; fi
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
  return 1
}

if [ "$which" = all ] || [ "$which" = pg ]; then
  if url=$(pg_url); then
    echo "== suite on PostgreSQL (${url%%@*}@...)"
    DATABASE_URL="$url" $BIN/pytest -q "$@" || status=1
  elif [ "$which" = pg ]; then
    echo "PostgreSQL is not reachable: set DATABASE_URL or start the local server" >&2; exit 1
  else
    echo "== PostgreSQL not reachable: skipping the PostgreSQL run (set DATABASE_URL to force it)"
  fi
fi
if [ "$which" = all ] || [ "$which" = sqlite ]; then
  echo "== suite on SQLite"
  env -u DATABASE_URL $BIN/pytest -q "$@" || status=1
fi
exit $status
