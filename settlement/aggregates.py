"""Exact per-group sums of obligation amounts: one SQL aggregate (PostgreSQL
adds NUMERIC exactly)."""

from collections.abc import Sequence
from decimal import Decimal

from django.db.models import Count, Q, QuerySet, Sum

from .models import Obligation

INBOUND = Obligation.Direction.INBOUND


def sums_by_direction(queryset: QuerySet, keys: Sequence[str]) -> dict[tuple, tuple[Decimal, Decimal, int, int]]:
    """{key values: (inbound sum, outbound sum, inbound count, outbound count)}."""
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
