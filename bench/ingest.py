#!/usr/bin/env python
"""Trade intake benchmark on PostgreSQL. Prints figures; never passes or fails on time.

1. Drops, creates and migrates its own database (``settlement_bench_ingest``
   on the project's PostgreSQL, see ``benchkit``) and builds a network
   (``benchnet.network_build``).
2. For each web worker count in ``--workers`` (default 1, 2 and 4), starts the
   real server (gunicorn with ``scripts/gunicorn.conf.py``, as ``make run``
   does) and POSTs N trades (default 100,000) to ``/api/v1/trades`` in batches
   (default 5,000) over as many concurrent client connections as workers,
   request bodies serialised before the clock starts, emptying the trade
   tables between runs. Every response is checked: all accepted, no
   duplicate, no rejection; then the database counts are checked.
3. After the first run (exposure positions in place): p50/p90/p99/max latency
   of ``POST /api/v1/exposure/check`` against ``GET /api/v1/whoami`` (a
   trivial endpoint with the same auth), interleaved on one kept-alive client
   connection; then the same on gunicorn sync workers (a new TCP connection
   per request), for comparison.
4. The peak memory (VmHWM) of a single web worker while it takes one
   10,000-trade request.
5. Stops the server, empties the tables and times, from the same typed rows:
   a COPY of the trades and their obligations into our own tables (indexes,
   constraints, triggers), and the minimal COPY into plain tables
   (``limits.copy_minimal``), the physical limit every intake figure is
   divided by.

``--repeat N`` reports the median of N runs per figure; ``--profile`` adds one
unreported HTTP run under py-spy (bench/out/ingest-profile.*).

A wrong figure (a rejection, a missing row, models without a migration) is an
error: the script says so and exits 1. Figures go to stdout and to ``bench/out/ingest.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
sys.path[:0] = [str(BENCH), str(ROOT)]

import benchkit  # noqa: E402
import benchnet  # noqa: E402
import limits  # noqa: E402
from benchkit import (  # noqa: E402  (re-exported: other benchmarks import them from here)
    BenchError,
    Server,
    admin_url,
    database_drop,
    database_recreate,
    django_env,
    free_port,
    load_average,
    machine,
    percentile,
    server_settings,
)

# what earlier benchmarks imported from this module, now in benchkit
__all__ = [
    "OUT",
    "BenchError",
    "Server",
    "admin_url",
    "database_drop",
    "database_recreate",
    "django_env",
    "free_port",
    "ingest_http",
    "latency_compare",
    "load_average",
    "machine",
    "percentile",
    "server_settings",
]

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


# --- database ---------------------------------------------------------------------


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


def indexes(url: str) -> dict[str, list[str]]:
    """The indexes a COPY into our trade and obligation tables maintains
    (what the minimal COPY does without), by table."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT tablename, indexdef FROM pg_indexes WHERE tablename IN ('settlement_trade', 'settlement_obligation') "
            "ORDER BY tablename, indexname"
        ).fetchall()
    found: dict[str, list[str]] = {}
    for table, definition in rows:
        found.setdefault(table, []).append(definition.split(" USING ", 1)[-1])
    return found


# --- HTTP -------------------------------------------------------------------------


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


# --- memory --------------------------------------------------------------------------


def worker_peak_memory(*, url: str, key: str, body: bytes, size: int, log: Path) -> dict:
    """One fresh single-worker server; the worker's resident memory before
    and its peak (VmHWM) after one request of ``size`` trades."""
    tables_empty(url)
    server = Server(url=url, workers=1, log=log)
    server.start()
    try:
        (pid,) = server.worker_pids()
        before = benchkit.memory_kib(pid)
        run = ingest_http(port=server.port, key=key, bodies=[body], sizes=[size], clients=1)
        after = benchkit.memory_kib(pid)
    finally:
        server.stop()
    return {
        "trades": size,
        "rss_before_mib": before["VmRSS"] / 1024,
        "peak_mib": after["VmHWM"] / 1024,
        "rss_after_mib": after["VmRSS"] / 1024,
        "request_s": run["seconds"],
    }


# --- the run ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument(
        "--workers", default="1,2,4", help="web worker counts, one run each with as many client connections"
    )
    parser.add_argument("--threads", type=int, default=None, help="threads per gthread worker (default: the conf's)")
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per worker count and per COPY; the median is reported"
    )
    parser.add_argument("--latency-requests", type=int, default=2_000, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured requests per endpoint first")
    parser.add_argument(
        "--rss-trades", type=int, default=10_000, help="trades in the request whose peak memory is taken"
    )
    parser.add_argument("--no-sync", action="store_true", help="skip the latency on sync workers (the comparison)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--database-url", default=None, help="default: benchkit.database_url('ingest')")
    parser.add_argument("--keep-db", action="store_true", help="leave the bench database in place at the end")
    parser.add_argument(
        "--profile", action="store_true", help="one more (unreported) HTTP run under py-spy: bench/out/ingest-profile.*"
    )
    parser.add_argument(
        "--copy-text", action="store_true", help="also time COPY from pre-rendered text (no Python formatting)"
    )
    parser.add_argument("--out", type=Path, default=OUT / "ingest.json")
    args = parser.parse_args(argv)
    workers = [int(c) for c in args.workers.split(",") if c.strip()]
    if not workers or min(*workers, args.repeat, args.trades, args.batch, args.latency_requests) < 1:
        parser.error("--workers, --repeat, --trades, --batch and --latency-requests must be positive")
    url = args.database_url or benchkit.database_url("ingest")
    OUT.mkdir(parents=True, exist_ok=True)
    step = benchkit.Steps()

    load_before = load_average()
    if load_before > 0.5:
        step(f"note: load average {load_before:.2f} before the start: other work on this machine lowers the figures")
    step(f"database {urlsplit(url).path.lstrip('/')}: drop, create, migrate")
    env = benchkit.database_prepare(url)

    step("network: 4 operators, 4 assets, cap, reserve, home accounts, engine key")
    benchkit.django_setup(env)
    from django.db import connections

    key = benchnet.network_build()
    connections.close_all()

    step(f"{args.trades:,} trades, batches of {args.batch:,}: generate and serialise")
    start = (datetime.now(UTC) - timedelta(hours=1)).replace(microsecond=0)
    items = benchnet.trades_generate(args.trades, seed=args.seed, start=start)
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
    bodies = [orjson.dumps({"trades": b}) for b in batches]
    sizes = [len(b) for b in batches]
    rss_items = items[: args.rss_trades]
    rss_body = orjson.dumps({"trades": rss_items})
    cross = sum(1 for t in items if t["buy"]["operator"] != t["sell"]["operator"])
    result: dict = {
        "date": benchkit.now_iso(),
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
            "workers": workers,
            "threads": args.threads,
            "repeat": args.repeat,
            "seed": args.seed,
        },
        "ingest_http": {},
    }

    fresh = True  # the tables are empty only before the first run
    for count in workers:
        server = Server(url=url, workers=count, threads=args.threads, log=OUT / "gunicorn.log")
        try:
            step(f"gunicorn, {count} gthread worker(s), 127.0.0.1:{server.port}")
            server.start()
            runs = []
            for _ in range(args.repeat):
                if fresh:
                    benchkit.checkpoint(url)
                else:
                    tables_empty(url)
                step(f"POST /api/v1/trades x {len(bodies)}, {count} client connection(s)")
                run = ingest_http(port=server.port, key=key, bodies=bodies, sizes=sizes, clients=count)
                run["workers"] = count
                counts_check(url, trades=args.trades, obligations=2 * cross, ingests=len(bodies))
                step(f"  {run['trades_per_s']:,.0f} trades/s ({run['seconds']:.2f} s)")
                runs.append(run)
                if fresh:
                    fresh = False
                    step(f"latency: {args.latency_requests:,} x exposure/check and whoami, interleaved, keep-alive")
                    result["latency"] = latency_compare(
                        port=server.port, key=key, requests=args.latency_requests, warmup=args.warmup
                    )
            result["ingest_http"][str(count)] = median_run(runs)
            if args.profile and count == workers[0]:
                tables_empty(url)
                raw = OUT / "ingest-profile.raw"
                step("profile: one more run under py-spy (not reported)")
                profiled = profile_run(server=server, key=key, bodies=bodies, sizes=sizes, raw=raw)
                summary = profile_summary(raw)
                (OUT / "ingest-profile.txt").write_text(summary)
                result["profile"] = {"trades_per_s_under_py_spy": profiled["trades_per_s"], "raw": str(raw)}
                step(
                    f"  {profiled['trades_per_s']:,.0f} trades/s under py-spy; summary in {OUT / 'ingest-profile.txt'}"
                )
        finally:
            server.stop()

    if not args.no_sync:
        server = Server(url=url, workers=2, worker_class="sync", log=OUT / "gunicorn.log")
        try:
            step("latency on gunicorn sync workers (a new connection per request), for comparison")
            server.start()
            result["latency_sync"] = latency_compare(
                port=server.port, key=key, requests=args.latency_requests, warmup=args.warmup
            )
        finally:
            server.stop()

    step(f"peak memory of one worker taking {len(rss_items):,} trades in one request")
    result["memory"] = worker_peak_memory(
        url=url, key=key, body=rss_body, size=len(rss_items), log=OUT / "gunicorn.log"
    )
    step(f"  {result['memory']['rss_before_mib']:.0f} MiB before, peak {result['memory']['peak_mib']:.0f} MiB")

    step("COPY: build the same rows the intake stores (not timed)")
    rows = copy_prepare(url, items)
    for text, name in ((False, "copy"), (True, "copy_text"))[: 2 if args.copy_text else 1]:
        runs = []
        for _ in range(args.repeat):
            step(
                f"COPY of the same trades and obligations into our tables ({'pre-rendered text' if text else 'typed rows'})"
            )
            runs.append(copy_raw(url, rows, text=text))
            step(f"  {runs[-1]['trades_per_s']:,.0f} trades/s ({runs[-1]['seconds']:.2f} s)")
        result[name] = median_run(runs)
    runs = []
    for _ in range(args.repeat):
        step("minimal COPY of the same rows into plain tables (the physical limit)")
        runs.append(limits.copy_minimal(url, rows["trades"], rows["obligations"]))
        step(f"  {runs[-1]['trades_per_s']:,.0f} trades/s ({runs[-1]['seconds']:.2f} s)")
    result["copy_minimal"] = median_run(runs)
    result["indexes"] = indexes(url)
    if not args.keep_db:
        database_drop(url)
    result["load_average_after"] = load_average()
    result["elapsed_s"] = step.elapsed

    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"figures written to {args.out} ({result['elapsed_s']:.0f} s in all)")
    return 0


def summary_rows(result: dict) -> list[dict]:
    limit = result["copy_minimal"]["trades_per_s"]
    rows = [
        benchkit.row(
            "COPY into our tables vs the minimal COPY",
            ours=result["copy"]["trades_per_s"],
            limit=limit,
            unit="trades/s",
            target=">= 0.5",
        )
    ]
    targets = {"1": ">= 0.25", "2": ">= 0.4"}
    for count, run in result["ingest_http"].items():
        plural = "s" if count != "1" else ""
        rows.append(
            benchkit.row(
                f"intake over HTTP, {count} worker{plural}, {run['clients']} client{plural}",
                ours=run["trades_per_s"],
                limit=limit,
                unit="trades/s",
                target=targets.get(count, ""),
            )
        )
    lat = result["latency"]
    for stat, target in (("p50", ""), ("p99", "<= 1.5")):
        rows.append(
            benchkit.row(
                f"exposure/check {stat}, keep-alive (limit: whoami {stat})",
                ours=lat["exposure_check"][f"{stat}_ms"],
                limit=lat["whoami"][f"{stat}_ms"],
                unit="ms",
                target=target,
            )
        )
    mem = result["memory"]
    rows.append(
        benchkit.row(
            f"web worker peak RSS, one {mem['trades']:,}-trade request (limit: idle worker)",
            ours=mem["peak_mib"],
            limit=mem["rss_before_mib"],
            unit="MiB",
        )
    )
    return rows


def report(result: dict) -> None:
    runs = result["ingest_http"]
    first = runs[str(result["params"]["workers"][0])]
    copy, copy_text, lat = result["copy"], result.get("copy_text"), result["latency"]
    minimal = result["copy_minimal"]
    result["ingest_http_trades_per_s"] = first["trades_per_s"]
    result["copy_trades_per_s"] = copy["trades_per_s"]
    result["copy_minimal_trades_per_s"] = minimal["trades_per_s"]
    result["ratio"] = first["trades_per_s"] / copy["trades_per_s"]
    result["copy_ratio_to_minimal"] = copy["trades_per_s"] / minimal["trades_per_s"]
    if copy_text:
        result["ratio_to_copy_text"] = first["trades_per_s"] / copy_text["trades_per_s"]
    for run in runs.values():
        run["ratio"] = run["trades_per_s"] / copy["trades_per_s"]
        run["ratio_to_minimal"] = run["trades_per_s"] / minimal["trades_per_s"]
    result["summary"] = summary_rows(result)

    lines = [
        *(f"ingest_http_trades_per_s_{c}_workers={r['trades_per_s']:.0f}" for c, r in runs.items()),
        f"copy_trades_per_s={copy['trades_per_s']:.0f}",
        f"copy_minimal_trades_per_s={minimal['trades_per_s']:.0f}",
        f"copy_ratio_to_minimal={result['copy_ratio_to_minimal']:.3f}",
        *(f"ratio_{c}_workers_to_minimal={r['ratio_to_minimal']:.3f}" for c, r in runs.items()),
        *(f"ratio_{c}_workers_to_copy={r['ratio']:.3f}" for c, r in runs.items()),
    ]
    if copy_text:
        lines.append(f"copy_text_trades_per_s={copy_text['trades_per_s']:.0f}")
    for label, latency in (("", lat), ("sync_", result.get("latency_sync"))):
        if latency is None:
            continue
        for name in ("exposure_check", "whoami"):
            for stat in ("p50", "p90", "p99", "max"):
                lines.append(f"{label}{name}_{stat}_ms={latency[name][f'{stat}_ms']:.2f}")
        lines += [
            f"{label}latency_p50_ratio={latency['p50_ratio']:.2f}",
            f"{label}latency_p99_ratio={latency['p99_ratio']:.2f}",
        ]
    mem = result["memory"]
    lines += [f"worker_rss_before_mib={mem['rss_before_mib']:.0f}", f"worker_peak_rss_mib={mem['peak_mib']:.0f}"]
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
    print(f"  {'path':<50} {'seconds':>8} {'trades/s':>10} {'/minimal':>9} {'/our COPY':>10}")
    for count, run in runs.items():
        plural = "s" if count != "1" else ""
        label = f"HTTP, {count} gthread worker{plural}, {run['clients']} client{plural}"
        print(
            f"  {label:<50} {run['seconds']:>8.2f} {run['trades_per_s']:>10,.0f} "
            f"{run['ratio_to_minimal']:>9.3f} {run['ratio']:>10.3f}"
        )
    for c in (copy, copy_text) if copy_text else (copy,):
        label = f"COPY into our tables, {c['source']}"
        print(
            f"  {label:<50} {c['seconds']:>8.2f} {c['trades_per_s']:>10,.0f} "
            f"{c['trades_per_s'] / minimal['trades_per_s']:>9.3f} {'':>10}"
        )
    label = "minimal COPY into plain tables (the limit)"
    print(f"  {label:<50} {minimal['seconds']:>8.2f} {minimal['trades_per_s']:>10,.0f} {1:>9.3f} {'':>10}")
    for table, defs in result.get("indexes", {}).items():
        print(f"  {table}: {len(defs)} indexes: {'; '.join(defs)}")
    print()
    for title, latency in (
        ("gthread workers, one kept-alive connection", lat),
        ("sync workers, a new TCP connection per request", result.get("latency_sync")),
    ):
        if latency is None:
            continue
        print(
            f"  latency on {title}: {latency['requests']:,} requests each after {latency['warmup']} warm-up, interleaved"
        )
        print(f"  {'endpoint':<30} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for name, text in (("exposure_check", "POST /api/v1/exposure/check"), ("whoami", "GET /api/v1/whoami")):
            s = latency[name]
            print(f"  {text:<30} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
        print(
            f"  {'ratio exposure_check / whoami':<30} {latency['p50_ratio']:>8.2f} {'':>8} {latency['p99_ratio']:>8.2f}"
        )
        print()
    print(
        f"  one web worker: {mem['rss_before_mib']:.0f} MiB resident before a {mem['trades']:,}-trade request, "
        f"peak {mem['peak_mib']:.0f} MiB during it ({mem['request_s']:.2f} s)"
    )
    print()
    print("\n".join(benchkit.summary_lines(result["summary"])))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
