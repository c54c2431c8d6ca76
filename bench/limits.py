"""The physical limits every figure of ours is divided by, measured in the
same run on the same PostgreSQL server as the figure.

- ``copy_minimal``: a COPY of the trades and their obligations into plain
  tables (a primary key, no other index, no constraint, no trigger), then one
  commit: what the server needs at the least to take the rows in.
- ``netting_minimal``: over N plain obligation rows, one ``GROUP BY`` netting
  aggregate (per counterparty and asset, inbound minus outbound) and one
  ``UPDATE`` marking every row taken, then one commit: the least work a
  netting cycle over N obligations can do.

Both build their tables before the clock starts and drop them afterwards.
"""

from __future__ import annotations

import time

import psycopg

TRADE_DDL = """
CREATE TABLE limit_trade (
    id bigint PRIMARY KEY, trade_id varchar(64), base_asset_id bigint, quote_asset_id bigint,
    price numeric(38, 18), quantity numeric(38, 18), quote_amount numeric(38, 18),
    buy_operator_id bigint, buy_account varchar(64), sell_operator_id bigint, sell_account varchar(64),
    executed_at timestamptz, received_at timestamptz, is_cross boolean, content_hash varchar(32), ingest_id bigint
)"""
OBLIGATION_DDL = """
CREATE TABLE limit_obligation (
    id bigint PRIMARY KEY, trade_id bigint, debtor_id bigint, creditor_id bigint, counterparty_id bigint,
    direction varchar(8), asset_id bigint, amount numeric(38, 18), status varchar(10), fail_count integer,
    created_at timestamptz, executed_at timestamptz
)"""
NETTING_DDL = """
CREATE TABLE limit_netting (
    id bigint PRIMARY KEY, counterparty_id bigint, asset_id bigint, direction varchar(8),
    amount numeric(38, 18), status varchar(10), batch_id bigint
)"""


def copy_minimal(url: str, trades: list[tuple], obligations: list[tuple]) -> dict:
    """Time COPY of ``trades`` (the settlement_trade columns, explicit ids)
    and ``obligations`` (the settlement_obligation columns without the id;
    ids 1..M are added before the clock starts) into plain tables, and the
    commit. The rows are typed Python values, written with ``write_row``, as
    the COPY into our own tables is."""
    numbered = [(i, *r) for i, r in enumerate(obligations, start=1)]
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS limit_trade, limit_obligation")
        conn.execute(TRADE_DDL)
        conn.execute(OBLIGATION_DDL)
        conn.commit()
        conn.execute("CHECKPOINT")
        started = time.perf_counter()
        with conn.cursor() as cursor:
            with cursor.copy("COPY limit_trade FROM STDIN") as copy:
                for r in trades:
                    copy.write_row(r)
            with cursor.copy("COPY limit_obligation FROM STDIN") as copy:
                for r in numbered:
                    copy.write_row(r)
        conn.commit()
        seconds = time.perf_counter() - started
        found = conn.execute("SELECT (SELECT count(*) FROM limit_trade), (SELECT count(*) FROM limit_obligation)")
        counts = found.fetchone()
        conn.execute("DROP TABLE limit_trade, limit_obligation")
        conn.commit()
    if counts != (len(trades), len(obligations)):
        raise RuntimeError(f"minimal COPY stored {counts}, expected {(len(trades), len(obligations))}")
    return {
        "trades": len(trades),
        "obligations": len(obligations),
        "seconds": seconds,
        "trades_per_s": len(trades) / seconds,
    }


def netting_minimal(url: str, *, rows: int | None = None, source: str | None = None) -> dict:
    """Time one GROUP BY netting aggregate and one UPDATE marking every row
    taken, and the commit, over a plain table of obligations: ``rows``
    generated ones (3 counterparties, 4 assets, both directions), or a copy
    of ``source``'s rows (``settlement_obligation``: the same rows a cycle
    takes)."""
    with psycopg.connect(url) as conn:
        conn.execute("DROP TABLE IF EXISTS limit_netting")
        conn.execute(NETTING_DDL)
        if source is not None:
            conn.execute(
                "INSERT INTO limit_netting SELECT id, counterparty_id, asset_id, direction, amount, 'open', NULL "
                f"FROM {source} WHERE status = 'open'"
            )
        else:
            conn.execute(
                "INSERT INTO limit_netting SELECT g, 1 + g % 3, 1 + (g / 3) % 4, "
                "CASE WHEN g % 2 = 0 THEN 'inbound' ELSE 'outbound' END, "
                "round((random() * 1000)::numeric, 8) + 0.00000001, 'open', NULL FROM generate_series(1, %s) g",
                [rows],
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE limit_netting")
        conn.execute("CHECKPOINT")
        conn.autocommit = False
        count = conn.execute("SELECT count(*) FROM limit_netting").fetchone()[0]
        started = time.perf_counter()
        nets = conn.execute(
            "SELECT counterparty_id, asset_id, sum(CASE WHEN direction = 'inbound' THEN amount ELSE -amount END) "
            "FROM limit_netting WHERE status = 'open' GROUP BY counterparty_id, asset_id"
        ).fetchall()
        aggregated = time.perf_counter()
        marked = conn.execute(
            "UPDATE limit_netting SET status = 'in_batch', batch_id = counterparty_id WHERE status = 'open'"
        ).rowcount
        conn.commit()
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE limit_netting")
        conn.commit()
    if marked != count:
        raise RuntimeError(f"minimal netting marked {marked} of {count} rows")
    return {
        "rows": count,
        "nets": len(nets),
        "group_by_s": aggregated - started,
        "update_s": seconds - (aggregated - started),
        "seconds": seconds,
        "rows_per_s": count / seconds,
    }
