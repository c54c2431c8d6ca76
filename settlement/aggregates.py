"""Exact per-group sums of obligation amounts.

PostgreSQL adds NUMERIC exactly, so the sum is one SQL aggregate. SQLite
adds its 15-digit decimals in floating point, so there the rows are summed
as Decimal in Python (SQLite is the embedded demo database, not production).
"""

from collections.abc import Sequence
from decimal import Decimal

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum

from .models import Obligation

INBOUND = Obligation.Direction.INBOUND


def sums_by_direction(queryset: QuerySet, keys: Sequence[str]) -> dict[tuple, tuple[Decimal, Decimal, int, int]]:
    """{key values: (inbound sum, outbound sum, inbound count, outbound count)}."""
    if connection.vendor != "sqlite":
        rows = (
            queryset.values(*keys)
            .annotate(
                inbound=Sum("amount", filter=Q(direction=INBOUND)),
                outbound=Sum("amount", filter=~Q(direction=INBOUND)),
                inbound_count=Count("id", filter=Q(direction=INBOUND)),
                outbound_count=Count("id", filter=~Q(direction=INBOUND)),
            )
            .order_by()
        )
        return {
            tuple(r[k] for k in keys): (
                r["inbound"] or Decimal(0),
                r["outbound"] or Decimal(0),
                r["inbound_count"],
                r["outbound_count"],
            )
            for r in rows
        }
    totals: dict[tuple, list] = {}
    for *key, direction, amount in (
        queryset.values_list(*keys, "direction", "amount").order_by().iterator(chunk_size=5000)
    ):
        row = totals.setdefault(tuple(key), [Decimal(0), Decimal(0), 0, 0])
        if direction == INBOUND:
            row[0] += amount
            row[2] += 1
        else:
            row[1] += amount
            row[3] += 1
    return {key: tuple(values) for key, values in totals.items()}
