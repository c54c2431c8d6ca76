#!/usr/bin/env python
"""Benchmark a netting cycle and its settlement on PostgreSQL (prints figures,
never passes or fails on time).

Set-up (not timed): its own database (``settlement_bench_cycles``), the bench
network, and N generated trades (default 560,000: about 1,000,000
obligations) with their obligations and running positions COPYed straight
into our tables, the rows the intake would store (``benchnet.copy_rows``;
the intake itself is measured by bench/ingest.py). ``--intake`` takes them in
through the intake service instead (slow at this size). The bank rail is made
open at any hour (a manual rail without calendars) so the figure does not
depend on the time of day the bench runs.

Timed:

1. The physical limit (``limits.netting_minimal``): the same obligation rows
   copied into a plain table, then one GROUP BY netting aggregate and one
   UPDATE marking every row taken, committed.
2. The same statements on our own table (one UPDATE marking every open
   obligation taken, with its batch, and one GROUP BY), rolled back: what our
   row width, indexes and fill add to them.
3. ``cycle_run``: take every open obligation, one batch per counterparty,
   net per asset, legs, audit, in one transaction. Prints the share of the
   row updates PostgreSQL made HOT (new version on the same page, no index
   touched).
4. Settlement: confirm every leg (inbound first, so receive-first releases
   the outbound legs), which settles every batch and lowers the positions;
   its share of HOT row updates too.

``--profile`` runs the cycle, and then the settlement, once more first under
pyinstrument and auto_explain in a transaction rolled back afterwards
(bench/out/cycles-profile.txt, cycles-explain.txt, settle-*.txt).

Usage: .venv/bin/python bench/cycles.py [--trades 560000] [--keep-db] [--profile]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH), str(BENCH.parent)]

import benchkit  # noqa: E402
import benchnet  # noqa: E402
import limits  # noqa: E402
import profiling  # noqa: E402
from benchkit import BenchError  # noqa: E402

INGEST_ID = 1


def copy_in(url: str, items: list[dict], now: datetime) -> None:
    """The trades, their obligations and the running positions, as the
    intake would store them, by COPY."""
    import psycopg

    with psycopg.connect(url) as conn:
        ids = benchnet.ids_load(conn)
        trades, obligations = benchnet.copy_rows(items, ids, ingest_id=INGEST_ID, now=now)
        conn.execute(
            "INSERT INTO settlement_tradeingest (id, received_at, actor, items, accepted, duplicates, rejected) "
            "VALUES (%s, %s, 'bench-copy', %s, %s, 0, 0)",
            (INGEST_ID, now, len(trades), len(trades)),
        )
        with conn.cursor() as cursor:
            trade_sql = f"COPY settlement_trade ({', '.join(benchnet.TRADE_COPY_COLUMNS)}) FROM STDIN"
            with cursor.copy(trade_sql) as copy:
                for r in trades:
                    copy.write_row(r)
            obligation_sql = f"COPY settlement_obligation ({', '.join(benchnet.OBLIGATION_COPY_COLUMNS)}) FROM STDIN"
            with cursor.copy(obligation_sql) as copy:
                for r in obligations:
                    copy.write_row(r)
        conn.execute(
            "INSERT INTO settlement_exposureposition "
            "(counterparty_id, asset_id, receivable, payable, receivable_count, payable_count) "
            "SELECT counterparty_id, asset_id, "
            "coalesce(sum(amount) FILTER (WHERE direction = 'inbound'), 0), "
            "coalesce(sum(amount) FILTER (WHERE direction = 'outbound'), 0), "
            "count(*) FILTER (WHERE direction = 'inbound'), count(*) FILTER (WHERE direction = 'outbound') "
            "FROM settlement_obligation GROUP BY counterparty_id, asset_id"
        )
        for table, last in (("settlement_trade", len(trades)), ("settlement_tradeingest", INGEST_ID)):
            conn.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", (table, last))
        conn.commit()


def vacuum(*tables: str) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM ANALYZE {table}")


def row_updates() -> tuple[int, int]:
    """settlement_obligation's row updates so far, and how many of them were
    HOT (the new version on the same page, no index touched)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'settlement_obligation'"
        )
        return cursor.fetchone()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=560_000)
    parser.add_argument("--batch", type=int, default=5_000, help="trades per intake call with --intake")
    parser.add_argument("--intake", action="store_true", help="set up through the intake service, not COPY")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile the cycle and the settlement first")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    url = benchkit.database_url("cycles")
    step = benchkit.Steps()
    load_before = benchkit.load_average()
    step(f"database {url.rsplit('/', 1)[1]}: drop, create, migrate")
    env = benchkit.database_prepare(url)
    benchkit.django_setup(env)
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from registry.models import Rail
    from settlement.models import Leg, Obligation
    from settlement.services.cycles import cycle_run
    from settlement.services.exposure import exposure_verify
    from settlement.services.legs import leg_confirm
    from settlement.services.trades import trades_ingest

    try:
        benchnet.network_build()
        Rail.objects.filter(kind=Rail.Kind.BANK).update(kind=Rail.Kind.MANUAL, calendars=[], cutoff=None)
        now = datetime.now(UTC)
        step(f"{args.trades:,} trades: generate")
        items = benchnet.trades_generate(args.trades, seed=args.seed, start=now - timedelta(hours=1))
        started = time.perf_counter()
        if args.intake:
            step("intake service, in-process")
            for i in range(0, len(items), args.batch):
                result = trades_ingest(items=items[i : i + args.batch], actor="bench", now=now)
                if result.rejected:
                    raise BenchError(f"intake rejected {result.rejected[:3]}")
        else:
            step("COPY of the trades, their obligations and the positions")
            connection.close()
            copy_in(url, items, now)
        del items
        setup_s = time.perf_counter() - started
        obligations = Obligation.objects.filter(status="open").count()
        step(f"  {obligations:,} open obligations ({setup_s:.1f} s)")
        vacuum("settlement_obligation", "settlement_trade", "settlement_exposureposition")

        step(f"the physical limit: GROUP BY + UPDATE over the same {obligations:,} rows in a plain table")
        connection.close()
        limit = limits.netting_minimal(url, source="settlement_obligation")
        step(f"  {limit['seconds']:.2f} s (GROUP BY {limit['group_by_s']:.2f} s, UPDATE {limit['update_s']:.2f} s)")

        step("the same statements on our table, rolled back")
        with transaction.atomic(), connection.cursor() as cursor:
            t0 = time.perf_counter()
            cursor.execute(
                "UPDATE settlement_obligation SET status = 'in_batch', batch_id = counterparty_id "
                "WHERE batch_id IS NULL AND status = 'open'"
            )
            cursor.execute(
                "SELECT counterparty_id, asset_id, SUM(CASE WHEN direction = 'inbound' THEN amount ELSE -amount END) "
                "FROM settlement_obligation WHERE status = 'in_batch' GROUP BY counterparty_id, asset_id"
            )
            cursor.fetchall()
            ours_raw_s = time.perf_counter() - t0
            transaction.set_rollback(True)
        step(f"  {ours_raw_s:.2f} s")
        vacuum("settlement_obligation")

        if args.profile:
            step("profile: the cycle under pyinstrument and auto_explain, rolled back")
            with profiling.Profile("cycles", explain_ms=200) as prof, transaction.atomic():
                cycle_run(kind="intraday", as_of=now, actor="bench")
                transaction.set_rollback(True)
            prof.write()
            vacuum("settlement_obligation", "settlement_batchitem")

        step("cycle_run")
        updates_before = row_updates()
        t0 = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            cycle = cycle_run(kind="intraday", as_of=now, actor="bench")
        cycle_s = time.perf_counter() - t0
        updates_taken = row_updates()
        take_hot = (updates_taken[1] - updates_before[1]) / max(1, updates_taken[0] - updates_before[0])
        step(f"  {cycle_s:.2f} s, {len(captured.captured_queries)} statements; {take_hot:.0%} of the row updates HOT")
        slowest = sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:8]
        if os.environ.get("BENCH_SHOW_QUERIES"):
            for q in slowest:
                print(f"  {float(q['time']):7.3f} s  {q['sql'][:200]}")
        legs = Leg.objects.filter(batch__cycle=cycle).count()

        def settle() -> None:
            for direction in ("inbound", "outbound"):
                for leg_id in Leg.objects.filter(batch__cycle=cycle, direction=direction).values_list("id", flat=True):
                    leg_confirm(leg_id=leg_id, evidence={"bench": True}, actor="bench", as_of=now)

        if args.profile:
            step("profile: the settlement under pyinstrument and auto_explain, rolled back")
            with profiling.Profile("settle", explain_ms=200) as prof, transaction.atomic():
                settle()
                transaction.set_rollback(True)
            prof.write()
            vacuum("settlement_obligation", "settlement_leg", "settlement_batch")

        step(f"settle: confirm the {legs} legs")
        t0 = time.perf_counter()
        settle()
        settle_s = time.perf_counter() - t0
        updates_settled = row_updates()
        settle_hot = (updates_settled[1] - updates_taken[1]) / max(1, updates_settled[0] - updates_taken[0])
        step(f"  {settle_s:.2f} s; {settle_hot:.0%} of the row updates HOT")
        settled = Obligation.objects.filter(status="settled").count()
        verified = exposure_verify(as_of=now).ok
        if settled != obligations or not verified:
            raise BenchError("not every obligation settled, or exposure disagrees with a recompute")

        result = {
            "date": benchkit.now_iso(),
            "machine": benchkit.machine(),
            "postgres": benchkit.server_settings(url),
            "load_average_before": load_before,
            "load_average_after": benchkit.load_average(),
            "params": vars(args),
            "trades": args.trades,
            "obligations": obligations,
            "setup_s": setup_s,
            "batches": cycle.batches.count(),
            "legs": legs,
            "limit": limit,
            "limit_s": limit["seconds"],
            "same_statements_on_our_table_s": ours_raw_s,
            "cycle_run_s": cycle_s,
            "cycle_statements": len(captured.captured_queries),
            "cycle_slowest_statements": [{"s": float(q["time"]), "sql": q["sql"][:300]} for q in slowest],
            "cycle_obligations_per_s": obligations / cycle_s,
            "settle_all_legs_s": settle_s,
            "take_hot_share": take_hot,
            "settle_hot_share": settle_hot,
            "obligations_settled": settled,
            "exposure_verifies": verified,
        }
        result["summary"] = [
            benchkit.row(
                f"cycle over {obligations:,} obligations (limit: GROUP BY + UPDATE, plain table)",
                ours=cycle_s,
                limit=limit["seconds"],
                unit="s",
                target="<= 2",
            ),
            benchkit.row(
                f"settling every leg, {legs} legs (limit: the same)",
                ours=settle_s,
                limit=limit["seconds"],
                unit="s",
                target="<= 2",
            ),
            benchkit.row(
                "the limit's UPDATE + GROUP BY on our table (limit: plain table)",
                ours=ours_raw_s,
                limit=limit["seconds"],
                unit="s",
            ),
        ]
        print()
        for key in (
            "trades",
            "obligations",
            "limit_s",
            "same_statements_on_our_table_s",
            "cycle_run_s",
            "settle_all_legs_s",
        ):
            print(f"{key}={result[key]}")
        print()
        print("\n".join(benchkit.summary_lines(result["summary"])))
        path = benchkit.result_write("cycles", result)
        print(f"figures written to {path} ({step.elapsed:.0f} s in all)")
        return 0
    finally:
        connection.close()
        if not args.keep_db:
            benchkit.database_drop(url)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as error:
        print(f"ERROR: {error}", file=sys.stderr)
        sys.exit(1)
