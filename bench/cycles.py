"""Benchmark a netting cycle and its settlement on PostgreSQL (prints figures,
never passes or fails on time).

Set-up (not timed): a fresh database ``settlement_bench_cycles``, the bench
network, and N trades (default 100,000) through the intake service. The bank
rail is made open at any hour (a manual rail without calendars) so the figure
does not depend on the time of day the bench runs.

Timed:
1. ``cycle_run``: take every open obligation, one batch per counterparty,
   net per asset, legs, audit, in one transaction.
2. Settlement: confirm every leg (inbound first, so receive-first releases the
   outbound legs), which settles every batch and lowers the positions.
3. The physical limit, on the same rows: the raw statements a cycle cannot do
   without, in a transaction rolled back afterwards: one UPDATE marking every
   open obligation taken, one INSERT ... SELECT of the batch items, and one
   GROUP BY netting aggregate.

Usage: .venv/bin/python bench/cycles.py [--trades 100000] [--keep-db]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import OUT, database_drop, database_recreate  # noqa: E402

URL = os.environ.get("BENCH_CYCLES_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/settlement_bench_cycles")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    database_recreate(URL)
    env = {
        **os.environ,
        "DATABASE_URL": URL,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "LOG_LEVEL": "WARNING",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)

    import django

    django.setup()
    import benchnet
    from django.db import connection, transaction

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
        items = benchnet.trades_generate(args.trades, seed=20261123, start=now - timedelta(hours=1))
        started = time.perf_counter()
        for i in range(0, len(items), args.batch):
            result = trades_ingest(items=items[i : i + args.batch], actor="bench", now=now)
            assert not result.rejected, result.rejected[:3]
        ingest_s = time.perf_counter() - started
        obligations = Obligation.objects.filter(status="open").count()
        print(f"set-up: {args.trades:,} trades, {obligations:,} open obligations ({ingest_s:.1f} s in-process intake)")

        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE settlement_obligation")

        # the physical limit, rolled back
        with transaction.atomic(), connection.cursor() as cursor:
            t0 = time.perf_counter()
            cursor.execute("UPDATE settlement_obligation SET status = 'in_batch' WHERE status = 'open'")
            cursor.execute(
                "CREATE TEMP TABLE raw_items ON COMMIT DROP AS SELECT 0 AS batch_id, id AS obligation_id FROM settlement_obligation WHERE status = 'in_batch'"
            )
            cursor.execute(
                "SELECT counterparty_id, asset_id, SUM(CASE WHEN direction = 'inbound' THEN amount ELSE -amount END) "
                "FROM settlement_obligation WHERE status = 'in_batch' GROUP BY counterparty_id, asset_id"
            )
            cursor.fetchall()
            raw_s = time.perf_counter() - t0
            transaction.set_rollback(True)

        from django.test.utils import CaptureQueriesContext

        t0 = time.perf_counter()
        with CaptureQueriesContext(connection) as captured:
            cycle = cycle_run(kind="intraday", as_of=now, actor="bench")
        cycle_s = time.perf_counter() - t0
        if os.environ.get("BENCH_SHOW_QUERIES"):
            for q in sorted(captured.captured_queries, key=lambda q: -float(q["time"]))[:8]:
                print(f"  {float(q['time']):7.3f} s  {q['sql'][:200]}")
        legs = Leg.objects.filter(batch__cycle=cycle).count()

        t0 = time.perf_counter()
        for direction in ("inbound", "outbound"):
            for leg_id in Leg.objects.filter(batch__cycle=cycle, direction=direction).values_list("id", flat=True):
                leg_confirm(leg_id=leg_id, evidence={"bench": True}, actor="bench", as_of=now)
        settle_s = time.perf_counter() - t0
        settled = Obligation.objects.filter(status="settled").count()
        verified = exposure_verify(as_of=now).ok

        figures = {
            "date": now.isoformat(timespec="seconds"),
            "trades": args.trades,
            "obligations": obligations,
            "batches": cycle.batches.count(),
            "legs": legs,
            "cycle_run_s": round(cycle_s, 3),
            "cycle_obligations_per_s": round(obligations / cycle_s),
            "raw_sql_s": round(raw_s, 3),
            "ratio_raw_to_cycle": round(raw_s / cycle_s, 2),
            "settle_all_legs_s": round(settle_s, 3),
            "obligations_settled": settled,
            "exposure_verifies": verified,
        }
        for key, value in figures.items():
            print(f"{key}={value}")
        print(
            f"\ncycle over {obligations:,} obligations: {cycle_s:.2f} s ({figures['cycle_obligations_per_s']:,} obligations/s); "
            f"the raw UPDATE + item copy + GROUP BY alone take {raw_s:.2f} s (ratio {figures['ratio_raw_to_cycle']}); "
            f"confirming its {legs} legs settles all {settled:,} obligations in {settle_s:.2f} s"
        )
        OUT.mkdir(exist_ok=True)
        (OUT / "cycles.json").write_text(json.dumps(figures, indent=2))
        if settled != obligations or not verified:
            print(
                "the bench's own figures are wrong: not every obligation settled or exposure disagrees", file=sys.stderr
            )
            return 1
        return 0
    finally:
        connection.close()
        if not args.keep_db:
            database_drop(URL)


if __name__ == "__main__":
    sys.exit(main())
