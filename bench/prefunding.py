#!/usr/bin/env python
"""Prefunding holds benchmark on PostgreSQL. Prints figures; never passes or fails on time.

1. Drops and creates a dedicated database (default ``settlement_bench_prefunding``),
   migrates it, builds the bench network (``benchnet.network_build``) and puts
   it under prefunding: a designated custodian wallet and bank account per
   operator, attested far above the run, and ``--accounts`` funded client
   accounts per operator in USDC and HKD (balances and their deposit events
   written in bulk: set-up, not timed).
2. Starts the real server (gunicorn, ``--workers`` gthread workers with
   ``--threads`` threads each, HTTP keep-alive on) on a free loopback port,
   through ``ingest.Server`` (the worker class comes in GUNICORN_CMD_ARGS).
3. Latency: ``--latency-requests`` single ``POST /api/v1/prefunding/holds``
   and as many ``GET /api/v1/whoami`` (same auth: the trivial endpoint),
   interleaved on one kept-alive connection after ``--warmup`` of each; p50,
   p90, p99 and max of each and their ratios (target: p99 ratio <= 1.5).
4. Throughput: ``--holds`` holds through ``POST /api/v1/prefunding/holds/batch``
   in batches of ``--batch`` (at most 1,000), bodies serialised before the
   clock starts, over each client count in ``--clients``; every item must be
   ``created`` (target: >= 20,000 holds/s).
5. The physical limit, in the same run: the server stops, the holds are
   emptied and the balances reset, then the same rows are written with a raw
   ``INSERT ... ON CONFLICT DO NOTHING`` of the holds plus an ``UPDATE`` of
   their balances' held, one transaction per batch, from one psycopg
   connection. Printed beside the HTTP figure as a ratio.

A wrong figure (a refused hold, a missing row, a held that does not add up)
is an error: the script says so and exits 1. Figures go to stdout and to
``bench/out/prefunding.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import queue
import random
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import psycopg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
sys.path[:0] = [str(BENCH), str(ROOT)]

import benchnet  # noqa: E402
import ingest  # noqa: E402

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/settlement_bench_prefunding"
OPERATORS = (benchnet.HOME, *benchnet.COUNTERPARTIES)
ASSETS = ("USDC", "HKD")
FUNDED = Decimal("1000000000000")  # 10^12 per account and asset: no hold in the run is short
ATTESTED = Decimal("1000000000000000000")
BenchError = ingest.BenchError


# --- set-up (not timed) --------------------------------------------------------------------------


def prefunding_build(*, accounts: int) -> None:
    """Designated holders attested for every operator and asset; funded accounts."""
    from django.db import connection
    from django.utils import timezone

    from registry.models import Asset, BankAccount, Operator, Rail, Wallet
    from settlement.services.prefunding import AttestationLine, attestations_record

    now = timezone.now()
    eth, bank = Rail.objects.get(code="eth"), Rail.objects.get(code="hkd-chats")
    assets = {a.code: a for a in Asset.objects.filter(code__in=ASSETS)}
    lines = []
    for n, operator in enumerate(Operator.objects.filter(code__in=OPERATORS).order_by("code")):
        wallet = Wallet.objects.create(operator=operator, rail=eth, address=f"0x{n + 1:040x}", designated=True)
        account = BankAccount.objects.create(
            operator=operator, rail=bank, number=f"BENCH-{n + 1}", bank="Bench Bank", designated=True
        )
        lines.append(AttestationLine(operator.id, assets["USDC"].id, ATTESTED, wallet_id=wallet.id))
        lines.append(AttestationLine(operator.id, assets["HKD"].id, ATTESTED, bank_account_id=account.id))
    attestations_record(lines=lines, source="balance_report", reference="bench", as_of=now, actor="bench", now=now)
    operators = dict(Operator.objects.filter(code__in=OPERATORS).values_list("code", "id"))
    with connection.cursor() as cursor:
        for operator_id in operators.values():
            for asset in ASSETS:
                cursor.execute(
                    "INSERT INTO settlement_prefundingbalance (operator_id, account, asset_id, funded, held, committed, "
                    "updated_at) SELECT %s, 'c' || g, %s, %s, 0, 0, %s FROM generate_series(1, %s) g",
                    [operator_id, assets[asset].id, FUNDED, now, accounts],
                )
        cursor.execute(
            "INSERT INTO settlement_fundingevent (operator_id, event_id, account, asset_id, balance_id, kind, amount, "
            "occurred_at, reference, content_hash, received_at, actor, result) "
            "SELECT operator_id, 'bench-' || id, account, asset_id, id, 'deposit', funded, %s, '', '', %s, 'bench', '{}' "
            "FROM settlement_prefundingbalance",
            [now, now],
        )


def holds_generate(count: int, *, seed: int, accounts: int, prefix: str) -> list[dict]:
    rng = random.Random(seed)
    holds = []
    for i in range(count):
        asset = rng.choice(ASSETS)
        scale = 6 if asset == "USDC" else 2
        amount = Decimal(rng.randint(100, 10_000_000)).scaleb(-scale)
        holds.append(
            {
                "order_id": f"{prefix}{i:08d}",
                "operator": rng.choice(OPERATORS),
                "account": f"c{rng.randint(1, accounts)}",
                "asset": asset,
                "amount": format(amount, "f"),
            }
        )
    return holds


def holds_empty(url: str) -> None:
    """Empty the holds and their events, and put held back to zero."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE settlement_holdevent, settlement_prefundinghold RESTART IDENTITY")
        conn.execute("UPDATE settlement_prefundingbalance SET held = 0")
        conn.execute("VACUUM ANALYZE settlement_prefundingbalance")
        conn.execute("CHECKPOINT")


def held_check(url: str, *, holds: int, total: Decimal) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        stored = conn.execute("SELECT count(*) FROM settlement_prefundinghold").fetchone()[0]
        held = conn.execute("SELECT coalesce(sum(held), 0) FROM settlement_prefundingbalance").fetchone()[0]
    if stored != holds or held != total:
        raise BenchError(f"holds stored {stored} (expected {holds}), held {held} (expected {total})")


# --- HTTP ----------------------------------------------------------------------------------------


def batches_http(*, port: int, key: str, bodies: list[bytes], sizes: list[int], clients: int) -> dict:
    work: queue.SimpleQueue = queue.SimpleQueue()
    for i, body in enumerate(bodies):
        work.put((i, body))
    answers: list = [None] * len(bodies)
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
                conn.request("POST", "/api/v1/prefunding/holds/batch", body=body, headers=headers)
                response = conn.getresponse()
                answers[i] = (response.status, response.read(), time.perf_counter() - started)
        except BaseException as error:
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
    latencies = []
    for i, answer in enumerate(answers):
        if answer is None:
            raise BenchError(f"batch {i} got no answer")
        status, data, seconds = answer
        if status != 200:
            raise BenchError(f"batch {i}: HTTP {status}: {data[:300]!r}")
        results = orjson.loads(data)["results"]
        refused = [r for r in results if r.get("result") != "created"]
        if len(results) != sizes[i] or refused:
            raise BenchError(f"batch {i}: {len(refused)} of {len(results)} not created, e.g. {refused[:2]}")
        latencies.append(seconds)
    latencies.sort()
    holds = sum(sizes)
    return {
        "clients": clients,
        "holds": holds,
        "requests": len(bodies),
        "seconds": wall,
        "holds_per_s": holds / wall,
        "request_ms_p50": ingest.percentile(latencies, 0.5) * 1000,
        "request_ms_max": latencies[-1] * 1000,
    }


def latency_compare(*, port: int, key: str, holds: list[dict], requests: int, warmup: int) -> dict:
    """Interleave single POST /prefunding/holds and GET /whoami on one kept-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    auth = {"Authorization": f"Api-Key {key}"}
    samples: dict[str, list[float]] = {"hold": [], "whoami": []}
    closes = 0
    bodies = iter(orjson.dumps(h) for h in holds)

    def call(name: str) -> float:
        nonlocal closes
        if name == "hold":
            method, path, body, headers = (
                "POST",
                "/api/v1/prefunding/holds",
                next(bodies),
                {**auth, "Content-Type": "application/json"},
            )
            expected = 201
        else:
            method, path, body, headers, expected = "GET", "/api/v1/whoami", None, auth, 200
        started = time.perf_counter()
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        seconds = time.perf_counter() - started
        if response.status != expected:
            raise BenchError(f"{method} {path}: HTTP {response.status}: {data[:300]!r}")
        if response.getheader("Connection", "").lower() == "close":
            closes += 1
        return seconds

    try:
        for i in range(warmup + requests):
            for name in ("hold", "whoami") if i % 2 == 0 else ("whoami", "hold"):
                seconds = call(name)
                if i >= warmup:
                    samples[name].append(seconds)
    finally:
        conn.close()
    result: dict = {"requests": requests, "warmup": warmup, "keep_alive": closes == 0}
    for name, values in samples.items():
        values.sort()
        result[name] = {
            f"{stat}_ms": ingest.percentile(values, q) * 1000 for stat, q in (("p50", 0.5), ("p90", 0.9), ("p99", 0.99))
        }
        result[name]["max_ms"] = values[-1] * 1000
    result["p50_ratio"] = result["hold"]["p50_ms"] / result["whoami"]["p50_ms"]
    result["p99_ratio"] = result["hold"]["p99_ms"] / result["whoami"]["p99_ms"]
    return result


# --- the physical limit ----------------------------------------------------------------------------

RAW_INSERT = """
INSERT INTO settlement_prefundinghold (operator_id, order_id, account, asset_id, balance_id, amount, consumed,
                                       remaining, status, expires_at, created_at, updated_at, content_hash, created_by)
SELECT t.operator_id, t.order_id, t.account, t.asset_id, t.balance_id, t.amount, 0, t.amount, 'held', %s, %s, %s, '', 'raw'
FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::bigint[], %s::bigint[], %s::numeric[])
     AS t(operator_id, order_id, account, asset_id, balance_id, amount)
ON CONFLICT (operator_id, order_id) DO NOTHING
"""
RAW_UPDATE = """
UPDATE settlement_prefundingbalance b SET held = b.held + d.amount
FROM (SELECT * FROM unnest(%s::bigint[], %s::numeric[]) AS t(id, amount)) d WHERE b.id = d.id
"""


def raw_rows(url: str, batches: list[list[dict]]) -> list[list[tuple]]:
    """The rows each batch stores, with ids resolved (before any clock starts)."""
    with psycopg.connect(url) as conn:
        operators = dict(conn.execute("SELECT code, id FROM registry_operator").fetchall())
        assets = dict(conn.execute("SELECT code, id FROM registry_asset").fetchall())
        balances = {
            (o, a, s): i
            for i, o, a, s in conn.execute(
                "SELECT id, operator_id, account, asset_id FROM settlement_prefundingbalance"
            )
        }
    out = []
    for batch in batches:
        rows = []
        for h in batch:
            operator, asset = operators[h["operator"]], assets[h["asset"]]
            rows.append(
                (
                    operator,
                    h["order_id"],
                    h["account"],
                    asset,
                    balances[(operator, h["account"], asset)],
                    Decimal(h["amount"]),
                )
            )
        out.append(rows)
    return out


def raw_run(url: str, batches: list[list[tuple]]) -> dict:
    holds_empty(url)
    now = datetime.now(UTC)
    with psycopg.connect(url) as conn:
        started = time.perf_counter()
        for rows in batches:
            columns = [list(c) for c in zip(*rows, strict=True)]
            sums: dict[int, Decimal] = {}
            for row in rows:
                sums[row[4]] = sums.get(row[4], Decimal(0)) + row[5]
            ids = sorted(sums)
            with conn.cursor() as cursor:
                cursor.execute(RAW_INSERT, [now, now, now, *columns])
                cursor.execute(RAW_UPDATE, [ids, [sums[i] for i in ids]])
            conn.commit()
        seconds = time.perf_counter() - started
    holds = sum(len(rows) for rows in batches)
    return {"holds": holds, "seconds": seconds, "holds_per_s": holds / seconds}


# --- the run ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holds", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--clients", default="1,2", help="concurrent client connections per throughput run")
    parser.add_argument("--accounts", type=int, default=2_000, help="funded client accounts per operator")
    parser.add_argument("--latency-requests", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn gthread workers")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL))
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--out", type=Path, default=OUT / "prefunding.json")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",") if c.strip()]
    if not clients or min(*clients, args.holds, args.batch, args.latency_requests) < 1 or args.batch > 1000:
        parser.error("--clients, --holds, --latency-requests must be positive; --batch 1 to 1000")
    url = args.database_url
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "var").mkdir(exist_ok=True)
    began = time.monotonic()

    def step(message: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {message}", flush=True)

    load_before = ingest.load_average()
    if load_before > 0.5:
        step(f"note: load average {load_before:.2f} before the start: other work on this machine lowers the figures")
    step(f"database {urlsplit(url).path.lstrip('/')}: drop, create, migrate")
    ingest.database_recreate(url)
    env = ingest.django_env(url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    step(
        f"network under prefunding: {len(OPERATORS)} operators, {args.accounts:,} funded accounts each in USDC and HKD"
    )
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "DEBUG", "LOG_LEVEL", "VAR_DIR")})
    import django

    django.setup()
    from django.db import connections

    key = benchnet.network_build()
    prefunding_build(accounts=args.accounts)
    connections.close_all()

    items = holds_generate(args.holds, seed=args.seed, accounts=args.accounts, prefix="B")
    batches = [items[i : i + args.batch] for i in range(0, len(items), args.batch)]
    bodies = [orjson.dumps({"holds": b}) for b in batches]
    sizes = [len(b) for b in batches]
    total = sum(Decimal(h["amount"]) for h in items)
    singles = holds_generate(
        args.latency_requests + args.warmup, seed=args.seed + 1, accounts=args.accounts, prefix="L"
    )
    result: dict = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": ingest.machine(),
        "postgres": ingest.server_settings(url),
        "load_average_before": load_before,
        "params": {
            "holds": args.holds,
            "batch": args.batch,
            "requests": len(bodies),
            "clients": clients,
            "accounts_per_operator": args.accounts,
            "workers": args.workers,
            "threads": args.threads,
            "body_bytes_mean": sum(map(len, bodies)) // len(bodies),
        },
        "batch_http": {},
    }

    server = ingest.Server(url=url, workers=args.workers, log=OUT / "gunicorn-prefunding.log")
    server.env["GUNICORN_CMD_ARGS"] = f"--worker-class gthread --threads {args.threads} --keep-alive 75"
    try:
        step(f"gunicorn, {args.workers} gthread workers x {args.threads} threads, keep-alive, 127.0.0.1:{server.port}")
        server.start()
        step(f"latency: {args.latency_requests:,} x single hold and whoami, interleaved on one connection")
        result["latency"] = latency_compare(
            port=server.port, key=key, holds=singles, requests=args.latency_requests, warmup=args.warmup
        )
        for count in clients:
            holds_empty(url)
            step(f"POST /api/v1/prefunding/holds/batch x {len(bodies)}, {count} client connection(s)")
            run = batches_http(port=server.port, key=key, bodies=bodies, sizes=sizes, clients=count)
            held_check(url, holds=args.holds, total=total)
            step(f"  {run['holds_per_s']:,.0f} holds/s ({run['seconds']:.2f} s)")
            result["batch_http"][str(count)] = run
    finally:
        server.stop()
    step("raw INSERT ... ON CONFLICT + UPDATE of the same rows, one transaction per batch")
    rows = raw_rows(url, batches)
    result["raw"] = raw_run(url, rows)
    held_check(url, holds=args.holds, total=total)
    step(f"  {result['raw']['holds_per_s']:,.0f} holds/s ({result['raw']['seconds']:.2f} s)")
    if not args.keep_db:
        ingest.database_drop(url)
    result["load_average_after"] = ingest.load_average()
    result["elapsed_s"] = round(time.monotonic() - began, 1)
    report(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"figures written to {args.out} ({result['elapsed_s']:.0f} s in all)")
    return 0


def report(result: dict) -> None:
    raw, lat, runs = result["raw"], result["latency"], result["batch_http"]
    first = runs[str(result["params"]["clients"][0])]
    for run in runs.values():
        run["ratio_to_raw"] = run["holds_per_s"] / raw["holds_per_s"]
    lines = [
        *(f"batch_http_holds_per_s_{c}_clients={r['holds_per_s']:.0f}" for c, r in runs.items()),
        f"raw_holds_per_s={raw['holds_per_s']:.0f}",
        *(f"ratio_to_raw_{c}_clients={r['ratio_to_raw']:.3f}" for c, r in runs.items()),
        *(f"{n}_{s}_ms={lat[n][f'{s}_ms']:.2f}" for n in ("hold", "whoami") for s in ("p50", "p90", "p99", "max")),
        f"latency_p50_ratio={lat['p50_ratio']:.2f}",
        f"latency_p99_ratio={lat['p99_ratio']:.2f}",
    ]
    print()
    print("\n".join(lines))
    p, m = result["params"], result["machine"]
    print()
    print(
        f"Prefunding holds on PostgreSQL {result['postgres']['server_version'].split()[0]}, {m['cores']} cores ({m['cpu']})"
    )
    print(
        f"{p['holds']:,} holds in {p['requests']} batches of {p['batch']:,} (~{p['body_bytes_mean'] / 1e3:.0f} kB each); "
        f"load average {result['load_average_before']:.2f} before, {result['load_average_after']:.2f} after"
    )
    print()
    print(f"  {'path':<58} {'seconds':>8} {'holds/s':>10} {'ratio':>7}")
    for count, run in runs.items():
        label = (
            f"HTTP batch, {count} client connection{'s' if count != '1' else ''}, {p['workers']}x{p['threads']} gthread"
        )
        print(f"  {label:<58} {run['seconds']:>8.2f} {run['holds_per_s']:>10,.0f} {run['ratio_to_raw']:>7.3f}")
    label = "raw INSERT ... ON CONFLICT + UPDATE, 1 connection"
    print(f"  {label:<58} {raw['seconds']:>8.2f} {raw['holds_per_s']:>10,.0f} {1:>7.3f}")
    print()
    keep = "keep-alive" if lat["keep_alive"] else "connections closed by the server"
    print(f"  latency: {lat['requests']:,} requests each after {lat['warmup']} warm-up, interleaved, {keep}")
    print(f"  {'endpoint':<34} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, label in (("hold", "POST /api/v1/prefunding/holds"), ("whoami", "GET /api/v1/whoami")):
        s = lat[name]
        print(f"  {label:<34} {s['p50_ms']:>8.2f} {s['p90_ms']:>8.2f} {s['p99_ms']:>8.2f} {s['max_ms']:>8.2f}")
    print(f"  {'ratio hold / whoami':<34} {lat['p50_ratio']:>8.2f} {'':>8} {lat['p99_ratio']:>8.2f}")
    print()
    print(
        f"  the issue's targets, for reading the figures: >= 20,000 holds/s ({first['holds_per_s']:,.0f}), p99 ratio <= 1.5"
    )


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
