#!/usr/bin/env bash
# make run: the database, migrate, load the demo network, then web + Celery
# worker + beat on the local defaults: the project's own PostgreSQL under
# var/pg (unless DATABASE_URL is set) and a filesystem broker under var/.
# Ctrl-C stops them all, and the database if this script started it.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PORT="${PORT:-8000}"
mkdir -p var/broker/queue var/broker/processed var/broker/control var/log var/anvil
export DEBUG="${DEBUG:-1}"
export DEMO=1  # enables demo_activity: its confirmations are simulated and labelled

pids=()
started_db=""
cleanup() {
  trap - INT TERM EXIT
  kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ -n "$started_db" ]; then $BIN/python scripts/pg.py stop >/dev/null; fi
}
trap cleanup INT TERM EXIT

if [ -z "${DATABASE_URL:-}" ]; then
  t0=$EPOCHREALTIME
  state=$($BIN/python scripts/pg.py start)
  if [ "$state" = started ]; then started_db=1; fi
  db="PostgreSQL under var/pg (ready in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }") s)"
else
  db="DATABASE_URL (${DATABASE_URL%%@*}@...)"
fi

$BIN/python manage.py migrate --no-input -v0
# On a running network the file's changes are proposed, not applied (four
# eyes): an unchanged demo database loads as "unchanged"; one changed since
# (an approved edit) is left as it is and the run goes on.
$BIN/python manage.py load_network demo/network.toml ||
  echo "demo network not reloaded: the database differs from demo/network.toml (changes need a proposal: load_network --user)" >&2
$BIN/python manage.py collectstatic --no-input -v0

# Demo credentials, kept in var/ (never in the repository) and made again
# when the database no longer knows them (a reset database).
key_known() {
  [ -s var/demo-engine-key ] && DEMO_KEY="$(cat var/demo-engine-key)" $BIN/python manage.py shell -c \
    "import os, sys; from settlement.models import OperatorAPIKey; sys.exit(0 if OperatorAPIKey.objects.is_valid(os.environ['DEMO_KEY']) else 1)" 2>/dev/null
}
if ! key_known; then
  $BIN/python manage.py create_api_key --operator HK1 --name demo-engine --scope engine | tail -n 1 > var/demo-engine-key
fi
if [ ! -s var/demo-admin-password ]; then
  $BIN/python -c "import secrets; print(secrets.token_urlsafe(12))" > var/demo-admin-password
fi
DJANGO_SUPERUSER_PASSWORD="$(cat var/demo-admin-password)" \
  $BIN/python manage.py createsuperuser --no-input --username admin --email admin@example.invalid >/dev/null 2>&1 || true

# The demo network's eth rail is a local chain (id 31337) at 127.0.0.1:8545.
# make installs anvil from npm when npm is there; without it the watcher
# reports the node unreachable and, after a few polls, marks the rail degraded.
# The chain's blocks are kept in var/anvil beside the database, so a second
# run resumes the same chain the watcher's cursor points into; a chain that
# starts afresh (no saved state) resets the demo rail's cursor with it.
ANVIL=node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
chain="none (the eth rail will show degraded)"
if [ -x "$ANVIL" ] && ! (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null; then
  if [ ! -s var/anvil/state.json ]; then $BIN/python manage.py demo_chain_reset --rail eth; fi
  "$ANVIL" --host 127.0.0.1 --port 8545 --chain-id 31337 --block-time 2 \
    --state var/anvil/state.json --state-interval 10 >var/log/chain.log 2>&1 &
  pids+=($!)
  chain="anvil at http://127.0.0.1:8545 (a block every 2 s; state in var/anvil)"
elif (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null; then
  chain="the node already at http://127.0.0.1:8545"
fi

# Prefunding (circular para 10) reads the operators' designated custodian
# wallets on the chain: the demo chain gets its tokens and the custodians'
# holdings (both left alone when already there), and one watcher poll
# attests them before the demo places its first hold.
if [ "$chain" != "none (the eth rail will show degraded)" ]; then
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/8545) 2>/dev/null && break; sleep 0.2; done
  $BIN/python manage.py demo_chain_tokens --rail eth &&
    $BIN/python manage.py watch_chain --rail eth --once >/dev/null ||
    echo "demo chain not prepared: prefunding holds in chain assets will be refused (attestation_stale)" >&2
fi

# gthread workers that keep connections alive (scripts/gunicorn.conf.py says why)
$BIN/gunicorn -c scripts/gunicorn.conf.py --bind "127.0.0.1:$PORT" --access-logfile - >var/log/web.log 2>&1 &
pids+=($!)
$BIN/celery -A config worker --loglevel INFO --concurrency 2 >var/log/worker.log 2>&1 &
pids+=($!)
$BIN/celery -A config beat --loglevel INFO --schedule var/celerybeat-schedule >var/log/beat.log 2>&1 &
pids+=($!)

for _ in $(seq 1 50); do
  curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.2
done

$BIN/python manage.py demo_activity || echo "demo activity skipped (see message above)" >&2

cat <<MSG

  Settlement backend is running at http://127.0.0.1:$PORT/   (the operations dashboard)
    Database      $db
    API docs      http://127.0.0.1:$PORT/api/v1/docs/
    Dashboard     http://127.0.0.1:$PORT/ops/     (log in as admin)
    Admin         http://127.0.0.1:$PORT/admin/   (user admin, password in var/demo-admin-password)
    Engine key    $(cat var/demo-engine-key)   (also in var/demo-engine-key)
    Demo chain    $chain
    Logs          var/log/web.log, var/log/worker.log, var/log/beat.log, var/log/chain.log

  Try:
    curl -s -H "Authorization: Api-Key \$(cat var/demo-engine-key)" http://127.0.0.1:$PORT/api/v1/exposure

  Demo data: "make run" posted demo trades and ran a cycle; legs it confirmed
  carry evidence "DEMO CONFIRMATION: simulated". Run it again with
    .venv/bin/python manage.py demo_activity

  Ctrl-C stops web, worker, beat and the chain (and the database if this run started it).
MSG
wait -n "${pids[@]}"
echo "a process exited; see var/log/ — stopping the others" >&2
