"""The balances against a full recompute from the append-only records, and
the comparison of open holds with the engine's open orders."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from django.db import connection

from settlement.models import OpenOrdersSnapshot

_RECOMPUTE_SQL = """
WITH funding AS (
    SELECT balance_id,
           sum(CASE WHEN kind IN ('deposit', 'adjustment') THEN amount
                    WHEN kind = 'withdrawal_commit' THEN -amount ELSE 0 END) AS funded,
           sum(CASE WHEN kind = 'withdrawal_reserve' AND NOT EXISTS (
                        SELECT 1 FROM settlement_fundingevent f WHERE f.reserve_id = e.id) THEN amount
                    ELSE 0 END) AS reserved
    FROM settlement_fundingevent e GROUP BY balance_id
),
holds AS (
    SELECT h.balance_id,
           sum(CASE WHEN e.kind = 'created' THEN e.amount ELSE -e.amount END) AS held,
           sum(CASE WHEN e.kind = 'consumed' THEN e.amount ELSE 0 END) AS consumed
    FROM settlement_holdevent e JOIN settlement_prefundinghold h ON h.id = e.hold_id GROUP BY h.balance_id
),
settled AS (
    SELECT balance_id,
           sum(CASE WHEN kind = 'credit' THEN amount ELSE -amount END) AS funded,
           sum(committed) AS debited
    FROM settlement_prefundingsettlement GROUP BY balance_id
)
SELECT b.id, b.funded, b.held, b.committed,
       coalesce(f.funded, 0) + coalesce(s.funded, 0),
       coalesce(f.reserved, 0) + coalesce(h.held, 0),
       coalesce(h.consumed, 0) - coalesce(s.debited, 0)
FROM settlement_prefundingbalance b
LEFT JOIN funding f ON f.balance_id = b.id
LEFT JOIN holds h ON h.balance_id = b.id
LEFT JOIN settled s ON s.balance_id = b.id
"""

_HOLDS_RECOMPUTE_SQL = """
SELECT h.id, h.amount, h.consumed, h.remaining,
       sum(CASE WHEN e.kind = 'created' THEN e.amount WHEN e.kind = 'amended' THEN -e.amount ELSE 0 END),
       sum(CASE WHEN e.kind = 'consumed' THEN e.amount ELSE 0 END),
       sum(CASE WHEN e.kind = 'created' THEN e.amount ELSE -e.amount END)
FROM settlement_prefundinghold h JOIN settlement_holdevent e ON e.hold_id = h.id
GROUP BY h.id
"""


@dataclass(frozen=True, slots=True)
class Difference:
    what: str  # "balance" or "hold"
    id: int
    field: str
    stored: Decimal
    recomputed: Decimal

    def as_json(self) -> dict:
        return {
            "what": self.what,
            "id": self.id,
            "field": self.field,
            "stored": format(self.stored, "f"),
            "recomputed": format(self.recomputed, "f"),
        }


def prefunding_recompute() -> list[Difference]:
    """Every balance and hold against a recompute from the append-only
    records (funding events, hold events, settlement entries). Empty when
    the cached figures are right."""
    differences = []
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTE_SQL)
        for balance_id, *pairs in cursor.fetchall():
            stored, recomputed = pairs[:3], pairs[3:]
            for name, a, b in zip(("funded", "held", "committed"), stored, recomputed, strict=True):
                if a != b:
                    differences.append(Difference("balance", balance_id, name, a, b))
        cursor.execute(_HOLDS_RECOMPUTE_SQL)
        for hold_id, *pairs in cursor.fetchall():
            stored, recomputed = pairs[:3], pairs[3:]
            for name, a, b in zip(("amount", "consumed", "remaining"), stored, recomputed, strict=True):
                if a != b:
                    differences.append(Difference("hold", hold_id, name, a, b))
    return differences


@dataclass(frozen=True, slots=True)
class OpenOrdersDifferences:
    # (hold id, operator id, operator code, order id, asset id, remaining)
    holds_without_order: list[tuple[int, int, str, str, int, Decimal]]
    # (operator code or "", order id)
    orders_without_hold: list[tuple[str, str]]


_OPEN_AT = """
    h.created_at <= %(as_of)s AND h.expires_at > %(as_of)s
    AND (h.closed_at IS NULL OR h.closed_at > %(as_of)s)
"""


def open_orders_compare(snapshot: OpenOrdersSnapshot) -> OpenOrdersDifferences:
    """Holds open at the snapshot's ``as_of`` (placed by then, not yet
    consumed, released or expired) against the orders the engine listed as
    open then, set-based. An order named without an operator matches any
    operator's hold with that order id."""
    listed_json = orjson.dumps([{"operator": pair[0], "order_id": pair[1]} for pair in snapshot.orders]).decode()
    params: dict[str, Any] = {"as_of": snapshot.as_of, "listed": listed_json}
    listed = "SELECT * FROM json_to_recordset(%(listed)s::json) AS l(operator text, order_id text)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT h.id, h.operator_id, op.code, h.order_id, h.asset_id,
                   h.remaining + coalesce((SELECT sum(e.amount) FROM settlement_holdevent e
                       WHERE e.hold_id = h.id AND e.at > %(as_of)s AND e.kind <> 'created'), 0)
            FROM settlement_prefundinghold h JOIN registry_operator op ON op.id = h.operator_id
            WHERE {_OPEN_AT}
              AND NOT EXISTS (SELECT 1 FROM ({listed}) l
                              WHERE l.order_id = h.order_id AND (l.operator = '' OR l.operator = op.code))
            ORDER BY h.id
            """,
            params,
        )
        holds_without_order: list[Any] = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            f"""
            SELECT DISTINCT l.operator, l.order_id FROM ({listed}) l
            WHERE NOT EXISTS (
                SELECT 1 FROM settlement_prefundinghold h JOIN registry_operator op ON op.id = h.operator_id
                WHERE h.order_id = l.order_id AND (l.operator = '' OR l.operator = op.code) AND {_OPEN_AT})
            ORDER BY l.operator, l.order_id
            """,
            params,
        )
        orders_without_hold: list[Any] = [tuple(row) for row in cursor.fetchall()]
    return OpenOrdersDifferences(holds_without_order, orders_without_hold)
