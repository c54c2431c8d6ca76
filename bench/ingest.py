#!/usr/bin/env python
"""Trade intake benchmark on PostgreSQL. Prints figures; never passes or fails on time.

1. Drops and creates a dedicated database (default ``settlement_bench``),
   migrates it and builds a network (``benchnet.network_build``).
2. Starts the real server (gunicorn, 2 sync workers) on a free loopback port.
3. POSTs N trades (default 100,000) to ``/api/v1/trades`` in batches (default
   5,000), request bodies serialised before the clock starts, once per client
   count in ``--clients`` (default 1 and 2 concurrent connections), emptying
   the trade tables between runs. Every response is checked: all accepted, no
   duplicate, no rejection; then the database counts are checked.
4. After the first run (exposure positions in place): p50/p90/p99/max latency
   of ``POST /api/v1/exposure/check`` against ``GET /api/v1/whoami`` (same
   auth), interleaved on one client connection.
5. Stops the server, empties the tables and times a raw psycopg ``COPY`` of
   the same trades and their obligations (2 per cross trade) into the same
   tables, in one transaction (only the COPYs and the commit are timed), from
   typed Python rows (``write_row``); with ``--copy-text`` also from
   pre-rendered COPY text.

``--repeat N`` reports the median of N runs per figure; ``--profile`` adds one
unreported HTTP run under py-spy (bench/out/ingest-profile.*).

A wrong figure (a rejection, a missing row, models without a migration) is an
error: the script says so and exits 1. Figures go to stdout and to ``bench/out/ingest.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import platform
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
sys.path[:0] = [str(BENCH), str(ROOT)]

import benchnet  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/settlement_bench"
CHECK_BODY = orjson.dumps({"counterparty": "SG1", "asset": "BTC", "amount": "0.5"})
TABLES = (
    "settlement_obligation",
    "settlement_complianceexception",
    "settlement_tradeexception",
    "settlement_trade",
    "settlement_tradeingest",
    "settlement_exposureposition",
    "settlement_cyclerequest",
)
# Not emptied between runs: settlement_auditevent is append-only (one row per
# request, so 20 rows a run make no difference).


class BenchError(Exception):
    """The benchmark's own figures are wrong (not a slow result)."""


# --- database ---------------------------------------------------------------------


def admin_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def database_recreate(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    if "bench" not in name:
        raise BenchError(f"refusing to drop database {name!r}: its name must contain 'bench'")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(url: str) -> None:
    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(admin_url(url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables_empty(url: str) -> None:
    """Empty the intake's tables (and, by CASCADE, anything that points at them)."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE")
        conn.execute("CHECKPOINT")


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def counts_check(url: str, *, trades: int, obligations: int, ingests: int | None) -> None:
    found = counts(url)
    want = {"settlement_trade": trades, "settlement_obligation": obligations}
    want |= {"settlement_tradeexception": 0, "settlement_complianceexception": 0, "settlement_cyclerequest": 0}
    if ingests is not None:
        want["settlement_tradeingest"] = ingests
    wrong = {t: (found[t], n) for t, n in want.items() if found[t] != n}
    if wrong:
        raise BenchError("database counts (found, expected): " + ", ".join(f"{t} {v}" for t, v in wrong.items()))


def server_settings(url: str) -> dict[str, str]:
    with psycopg.connect(url, autocommit=True) as conn:
        names = ("server_version", "shared_buffers", "synchronous_commit", "fsync", "wal_level", "max_wal_size")
        return {n: conn.execute(f"SHOW {n}").fetchone()[0] for n in names}


# --- the server -------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def django_env(url: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        # production settings, but a bench on loopback: plain HTTP, its own key, no request limits
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="0",
        THROTTLE_PER_KEY="100000000/min",
        THROTTLE_PER_ADDRESS="100000000/min",
        LOG_LEVEL="WARNING",
        CONN_MAX_AGE="600",
        VAR_DIR=str(OUT / "var"),
        PYTHONPATH=str(ROOT),
    )
    return env


class Server:
    """gunicorn config.wsgi:application with 2 sync workers, stopped by its own pid."""

    def __init__(self, *, url: str, workers: int, log: Path):
        self.port = free_port()
        self.workers = workers
        self.log = log
        self.env = django_env(url)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--workers",
            str(self.workers),
            "--bind",
            f"127.0.0.1:{self.port}",
            "--timeout",
            "300",
            "--error-logfile",
            str(self.log),
        ]
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"gunicorn exited with {self.proc.returncode}; see {self.log}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise BenchError(f"gunicorn did not answer /health within 30 s; see {self.log}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)  # graceful: the master stops its workers
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- HTTP -------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[rank - 1]


def ingest_http(*, port: int, key: str, bodies: list[bytes], sizes: list[int], clients: int) -> dict:
    """POST every body once over ``clients`` concurrent connections; check every answer."""
    work: queue.SimpleQueue = queue.SimpleQueue()
    for i, body in enumerate(bodies):
        work.put((i, body))
    answers: list[tuple[int, bytes, float] | None] = [None] * len(bodies)
    failures: list[BaseException] = []
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        try:
            while True:
                try:
                    i, body = work.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                conn.request("POST", "/api/v1/trades", body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                answers[i] = (response.status, data, time.perf_counter() - started)
        except BaseException as error:  # reported after the join
            failures.append(error)
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise BenchError(f"HTTP client failed: {failures[0]!r}")

    accepted = duplicates = rejected = 0
    latencies = []
    state = None
    for i, answer in enumerate(answers):
        if answer is None:
            raise BenchError(f"batch {i} got no answer")
        status, data, seconds = answer
        if status != 200:
            raise BenchError(f"batch {i}: HTTP {status}: {data[:500]!r}")
        body = orjson.loads(data)
        if body["accepted"] != sizes[i] or body["duplicates"] or body["rejected"]:
            first = body["rejected"][:3]
            raise BenchError(
                f"batch {i}: accepted {body['accepted']} of {sizes[i]}, duplicates {body['duplicates']}, "
                f"{len(body['rejected'])} rejected, e.g. {first}"
            )
        accepted += body["accepted"]
        duplicates += body["duplicates"]
        rejected += len(body["rejected"])
        latencies.append(seconds)
        state = body["exposure"]["state"]
    if accepted != sum(sizes):
        raise BenchError(f"accepted {accepted} trades in all, expected {sum(sizes)}")
    latencies.sort()
    return {
        "clients": clients,
        "trades": accepted,
        "requests": len(bodies),
        "seconds": wall,
        "trades_per_s": accepted / wall,
        "request_ms_p50": percentile(latencies, 0.50) * 1000,
        "request_ms_max": latencies[-1] * 1000,
        "exposure_state": state,
    }


def latency_compare(*, port: int, key: str, requests: int, warmup: int) -> dict:
    """Interleave POST /exposure/check and GET /whoami on one client connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    auth = {"Authorization": f"Api-Key {key}"}
    calls = {
        "exposure_check": ("POST", "/api/v1/exposure/check", CHECK_BODY, {**auth, "Content-Type": "application/json"}),
        "whoami": ("GET", "/api/v1/whoami", None, auth),
    }
    samples: dict[str, list[float]] = {name: [] for name in calls}
    reused = {"connection_closes": 0}
    last_check: dict = {}

    def call(name: str) -> float:
        method, path, body, headers = calls[name]
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        if response.status != 200:
            raise BenchError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            reused["connection_closes"] += 1
        if name == "exposure_check":
            last_check.clear()
            last_check.update(orjson.loads(data))
        return seconds

    try:
        for i in range(warmup + requests):
            order = ("exposure_check", "whoami") if i % 2 == 0 else ("whoami", "exposure_check")
            for name in order:
                seconds = call(name)
                if i >= warmup:
                    samples[name].append(seconds)
    finally:
        conn.close()
    if not last_check.get("allowed"):
        raise BenchError(f"exposure check was not allowed (the bench network should allow it): {last_check}")
    result: dict = {"requests": requests, "warmup": warmup, "keep_alive": reused["connection_closes"] == 0}
    for name, values in samples.items():
        values.sort()
        result[name] = {
            "p50_ms": percentile(values, 0.50) * 1000,
            "p90_ms": percentile(values, 0.90) * 1000,
            "p99_ms": percentile(values, 0.99) * 1000,
            "max_ms": values[-1] * 1000,
            "mean_ms": sum(values) / len(values) * 1000,
        }
    result["p50_ratio"] = result["exposure_check"]["p50_ms"] / result["whoami"]["p50_ms"]
    result["p99_ratio"] = result["exposure_check"]["p99_ms"] / result["whoami"]["p99_ms"]
    return result


# --- raw COPY -----------------------------------------------------------------------


COPY_INGEST_ID = 1  # the only TradeIngest row during a COPY run (the tables restart their ids)


def copy_prepare(url: str, items: list[dict]) -> dict:
    """The rows the intake would store for ``items``, built once before any clock starts."""
    with psycopg.connect(url) as conn:
        ids = benchnet.ids_load(conn)
    now = datetime.now(UTC)
    trades, obligations = benchnet.copy_rows(items, ids, ingest_id=COPY_INGEST_ID, now=now)
    return {"now": now, "trades": trades, "obligations": obligations}


def copy_raw(url: str, rows: dict, *, text: bool) -> dict:
    """Empty the tables, then time COPY trades + COPY obligations + one commit."""
    trade_rows, obligation_rows = rows["trades"], rows["obligations"]
    payload = (benchnet.copy_text(trade_rows), benchnet.copy_text(obligation_rows)) if text else None
    trade_sql = f"COPY settlement_trade ({', '.join(benchnet.TRADE_COPY_COLUMNS)}) FROM STDIN"
    obligation_sql = f"COPY settlement_obligation ({', '.join(benchnet.OBLIGATION_COPY_COLUMNS)}) FROM STDIN"
    tables_empty(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "INSERT INTO settlement_tradeingest (id, received_at, actor, items, accepted, duplicates, rejected) "
            "VALUES (%s, %s, 'bench-copy', %s, %s, 0, 0)",
            (COPY_INGEST_ID, rows["now"], len(trade_rows), len(trade_rows)),
        )
        conn.commit()

        started = time.perf_counter()
        with conn.cursor() as cursor:
            if payload:
                with cursor.copy(trade_sql) as copy:
                    copy.write(payload[0])
                with cursor.copy(obligation_sql) as copy:
                    copy.write(payload[1])
            else:
                with cursor.copy(trade_sql) as copy:
                    for row in trade_rows:
                        copy.write_row(row)
                with cursor.copy(obligation_sql) as copy:
                    for row in obligation_rows:
                        copy.write_row(row)
        conn.commit()
        seconds = time.perf_counter() - started

        for table, last in (("settlement_trade", len(trade_rows)), ("settlement_tradeingest", COPY_INGEST_ID)):
            conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, last))
        conn.commit()
    counts_check(url, trades=len(trade_rows), obligations=len(obligation_rows), ingests=1)
    return {
        "source": "pre-rendered COPY text" if text else "typed rows (psycopg write_row)",
        "trades": len(trade_rows),
        "obligations": len(obligation_rows),
        "seconds": seconds,
        "trades_per_s": len(trade_rows) / seconds,
    }


# --- the run ------------------------------------------------------------------------


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def load_average() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return float("nan")


def median_run(runs: list[dict]) -> dict:
    """The run with the median trades/s (the lower middle one for an even count), with every run's rate."""
    ordered = sorted(runs, key=lambda r: r["trades_per_s"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["all_trades_per_s"] = [round(r["trades_per_s"], 1) for r in runs]
    return chosen


# --- profile (optional, needs py-spy) ---------------------------------------------------


def py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def profile_run(*, server: Server, key: str, bodies: list[bytes], sizes: list[int], raw: Path) -> dict:
    """One more 1-client HTTP run with py-spy sampling the workers (wall clock, idle included)."""
    spy = py_spy()
    if spy is None:
        raise BenchError("--profile needs py-spy (pip install py-spy into the venv; it is not a requirement)")
    command = [spy, "record", "--pid", str(server.proc.pid), "--subprocesses", "--idle", "--rate", "200"]
    command += ["--format", "raw", "--output", str(raw), "--nonblocking"]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(1.5)  # let it attach to the master and the workers
    try:
        run = ingest_http(port=server.port, key=key, bodies=bodies, sizes=sizes, clients=1)
    finally:
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(timeout=60)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait()
    if not raw.exists():
        raise BenchError(f"py-spy wrote no profile: {recorder.stderr.read().decode(errors='replace')[-500:]}")
    return run


def profile_summary(raw: Path, *, top: int = 40) -> str:
    """Where the request time goes, from py-spy's collapsed stacks: inclusive
    share per function (project code and the database calls), then the leaves."""
    inclusive: Counter = Counter()
    leaves: Counter = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("handle_request" in f for f in frames):
            continue  # the master, or a worker waiting for a connection
        n = int(count)
        total += n
        names = [re.sub(r":\d+\)$", ")", f) for f in frames]
        for name in set(names):
            inclusive[name] += n
        leaves[names[-1]] += n
    if not total:
        return "no request samples\n"
    interesting = re.compile(
        r"\((settlement|config|reserves|custody)/|copy|Connection\.(wait|commit)|load_json|renderers"
    )
    out = [f"{total} samples while handling requests (wall clock, 200 Hz, both workers)", "", "inclusive:"]
    shown = 0
    for name, n in inclusive.most_common():
        if interesting.search(name) or "handle_request" in name:
            out.append(f"  {100 * n / total:5.1f}%  {name}")
            shown += 1
            if shown >= top:
                break
    out += ["", "leaf frames (self):"]
    out += [f"  {100 * n / total:5.1f}%  {name}" for name, n in leaves.most_common(top // 2)]
    return "\n".join(out) + "\n"


# --- the run ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--clients", default="1,2", help="concurrent client connections per run, e.g. 1,2 (default)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per HTTP client count and per COPY; the median is reported"
    )
    parser.add_argument("--latency-requests", type=int, default=2_000, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per endpoint first")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database in place at the end")
    parser.add_argument(
        "--profile", action="store_true", help="one more (unreported) HTTP run under py-spy: bench/out/ingest-profile.*"
    )
    parser.add_argument(
        "--copy-text", action="store_true", help="also time COPY from pre-rendered text (no Python formatting)"
    )
    parser.add_argument("--out", type=Path, default=OUT / "ingest.json")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if not clients or min(*clients, args.repeat, args.trades, args.batch, args.latency_requests) < 1:
        parser.error("--clients, --repeat, --trades, --batch and --latency-requests must be positive")
    url = args.database_url
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "var").mkdir(exist_ok=True)
    began = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    load_before = load_average()
    if load_before > 0.5:
        step(f"note: load average {load_before:.2f} before the start: other work on this machine lowers the figures")
    step(f"database {urlsplit(url).path.lstrip('/')}: drop, create, migrate")
    database_recreate(url)
    env = django_env(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    pending = subprocess.run(
        [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if pending.returncode != 0:
        raise BenchError(
            "the models have changes without a migration, so the bench database cannot match them:\n"
            + pending.stdout[-2000:]
            + pending.stderr[-2000:]
        )

    step("network: 4 operators, 4 assets, cap, reserve, home accounts, engine key")
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "LOG_LEVEL", "VAR_DIR")})
    import django

    django.setup()
    from django.db import connections

    key = benchnet.network_build()
    connections.close_all()

    step(f"{args.trades:,} trades, batches of {args.batch:,}: generate and serialise")
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    items = benchnet.trades_generate(args.trades, seed=args.seed, start=start)
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
    bodies = [orjson.dumps({"trades": b}) for b in batches]
    sizes = [len(b) for b in batches]
    cross = sum(1 for t in items if t["buy"]["operator"] != t["sell"]["operator"])
    result: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "postgres": server_settings(url),
        "load_average_before": load_before,
        "params": {
            "trades": args.trades,
            "batch": args.batch,
            "requests": len(bodies),
            "cross_trades": cross,
            "obligations": 2 * cross,
            "body_bytes_mean": sum(map(len, bodies)) // len(bodies),
            "clients": clients,
            "repeat": args.repeat,
            "workers": args.workers,
            "seed": args.seed,
        },
        "ingest_http": {},
    }

    server = Server(url=url, workers=args.workers, log=OUT / "gunicorn.log")
    fresh = True  # the tables are empty only before the first run
    try:
        step(f"gunicorn, {args.workers} sync workers, 127.0.0.1:{server.port}")
        server.start()
        for count in clients:
            runs = []
            for _ in range(args.repeat):
                if fresh:
                    with psycopg.connect(url, autocommit=True) as conn:
                        conn.execute("CHECKPOINT")
                else:
                    tables_empty(url)
                step(f"POST /api/v1/trades x {len(bodies)}, {count} client connection(s)")
                run = ingest_http(port=server.port, key=key, bodies=bodies, sizes=sizes, clients=count)
                counts_check(url, trades=args.trades, obligations=2 * cross, ingests=len(bodies))
                step(f"  {run['trades_per_s']:,.0f} trades/s ({run['seconds']:.2f} s)")
                runs.append(run)
                if fresh:
                    fresh = False
                    step(f"latency: {args.latency_requests:,} x exposure/check and whoami, interleaved")
                    result["latency"] = latency_compare(
                        port=server.port, key=key, requests=args.latency_requests, warmup=args.warmup
                    )
            result["ingest_http"][str(count)] = median_run(runs)
        if args.profile:
            tables_empty(url)
            raw = OUT / "ingest-profile.raw"
            step("profile: one more 1-client run under py-spy (not reported)")
            profiled = profile_run(server=server, key=key, bodies=bodies, sizes=sizes, raw=raw)
            summary = profile_summary(raw)
            (OUT / "ingest-profile.txt").write_text(summary)
            result["profile"] = {"trades_per_s_under_py_spy": profiled["trades_per_s"], "raw": str(raw)}
            step(f"  {profiled['trades_per_s']:,.0f} trades/s under py-spy; summary in {OUT / 'ingest-profile.txt'}")
    finally:
        server.stop()

    step("raw COPY: build the same rows the intake stores (not timed)")
    rows = copy_prepare(url, items)
    for text, name in ((False, "copy"), (True, "copy_text"))[: 2 if args.copy_text else 1]:
        runs = []
        for _ in range(args.repeat):
            step(f"raw COPY of the same trades and obligations ({'pre-rendered text' if text else 'typed rows'})")
            runs.append(copy_raw(url, rows, text=text))
            step(f"  {runs[-1]['trades_per_s']:,.0f} trades/s ({runs[-1]['seconds']:.2f} s)")
        result[name] = median_run(runs)
    if not args.keep_db:
        database_drop(url)
    result["load_average_after"] = load_average()
    result["elapsed_s"] = round(time.monotonic() - began, 1)

    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"figures written to {args.out} ({result['elapsed_s']:.0f} s in all)")
    return 0


def report(result: dict) -> None:
    runs = result["ingest_http"]
    first = runs[str(result["params"]["clients"][0])]
    copy, copy_text, lat = result["copy"], result.get("copy_text"), result["latency"]
    result["ingest_http_trades_per_s"] = first["trades_per_s"]
    result["copy_trades_per_s"] = copy["trades_per_s"]
    result["ratio"] = first["trades_per_s"] / copy["trades_per_s"]
    if copy_text:
        result["ratio_to_copy_text"] = first["trades_per_s"] / copy_text["trades_per_s"]
    for run in runs.values():
        run["ratio"] = run["trades_per_s"] / copy["trades_per_s"]

    lines = [
        f"ingest_http_trades_per_s={first['trades_per_s']:.0f}",
        *(f"ingest_http_trades_per_s_{c}_clients={r['trades_per_s']:.0f}" for c, r in runs.items()),
        f"copy_trades_per_s={copy['trades_per_s']:.0f}",
        f"ratio={result['ratio']:.3f}",
        *(f"ratio_{c}_clients={r['ratio']:.3f}" for c, r in runs.items()),
    ]
    if copy_text:
        lines.insert(len(runs) + 2, f"copy_text_trades_per_s={copy_text['trades_per_s']:.0f}")
        lines.append(f"ratio_to_copy_text={result['ratio_to_copy_text']:.3f}")
    for name in ("exposure_check", "whoami"):
        for stat in ("p50", "p90", "p99", "max"):
            lines.append(f"{name}_{stat}_ms={lat[name][f'{stat}_ms']:.2f}")
    lines += [f"latency_p50_ratio={lat['p50_ratio']:.2f}", f"latency_p99_ratio={lat['p99_ratio']:.2f}"]
    print()
    print("\n".join(lines))

    p, m = result["params"], result["machine"]
    repeat = f", median of {p['repeat']} runs each" if p["repeat"] > 1 else ""
    print()
    print(
        f"Trade intake on PostgreSQL {result['postgres']['server_version'].split()[0]}, {m['cores']} cores ({m['cpu']})"
    )
    print(
        f"{p['trades']:,} trades ({p['cross_trades']:,} cross, {p['obligations']:,} obligations) "
        f"in {p['requests']} requests of {p['batch']:,} (~{p['body_bytes_mean'] / 1e6:.1f} MB each){repeat}; "
        f"load average {result['load_average_before']:.2f} before, {result['load_average_after']:.2f} after"
    )
    print()
    print(f"  {'path':<46} {'seconds':>8} {'trades/s':>10} {'ratio':>7}")
    for count, run in runs.items():
        label = f"HTTP, {count} client connection{'s' if count != '1' else ''}, {p['workers']} workers"
        print(f"  {label:<46} {run['seconds']:>8.2f} {run['trades_per_s']:>10,.0f} {run['ratio']:>7.3f}")
    for c in (copy, copy_text) if copy_text else (copy,):
        label = f"raw COPY, {c['source']}"
        ratio = first["trades_per_s"] / c["trades_per_s"]
        print(f"  {label:<46} {c['seconds']:>8.2f} {c['trades_per_s']:>10,.0f} {ratio:>7.3f}")
    print("  ratio: an HTTP row is that run's trades/s over typed-row COPY trades/s;")
    print(f"         a COPY row is the {first['clients']}-client HTTP trades/s over that COPY's")
    print()
    keep = "keep-alive" if lat["keep_alive"] else "a new TCP connection per request (gunicorn sync workers close it)"
    print(f"  latency: {lat['requests']:,} requests each after {lat['warmup']} warm-up, interleaved, {keep}")
    print(f"  {'endpoint':<30} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, label in (("exposure_check", "POST /api/v1/exposure/check"), ("whoami", "GET /api/v1/whoami")):
        s = lat[name]
        print(f"  {label:<30} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
    print(f"  {'ratio exposure_check / whoami':<30} {lat['p50_ratio']:>8.2f} {'':>8} {lat['p99_ratio']:>8.2f}")
    print()
    print("  the issue's targets, for reading the figures: >= 10,000 trades/s, ratio >= 0.3, p99 ratio <= 2")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
