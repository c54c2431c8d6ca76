"""Reads for the custody API, admin and dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Q

from controls.money import at_scale
from custody.models import Break
from registry.models import Asset

AGE_BUCKETS = (
    ("under 1 h", timedelta(0), timedelta(hours=1)),
    ("1 to 4 h", timedelta(hours=1), timedelta(hours=4)),
    ("4 to 24 h", timedelta(hours=4), timedelta(hours=24)),
    ("1 to 3 days", timedelta(hours=24), timedelta(days=3)),
    ("over 3 days", timedelta(days=3), None),
)


def amount_str(amount: Decimal | None, asset: Asset | None) -> str | None:
    """An amount at its asset's scale (as the API shows legs), or in full
    when it is finer than that scale (a token with more decimals)."""
    if amount is None:
        return None
    if asset is None:
        return format(amount.normalize(), "f")
    scaled = at_scale(amount, asset.scale)
    return format(scaled if scaled == amount else amount.normalize(), "f")


def break_as_json(brk: Break, *, now: datetime, history: bool = False) -> dict:
    body = {
        "id": brk.id,
        "kind": brk.kind,
        "status": brk.status,
        "asset": brk.asset.code if brk.asset else None,
        "amount": amount_str(brk.amount, brk.asset),
        "counterparty": brk.counterparty.code if brk.counterparty else None,
        "leg": brk.leg_id,
        "movements": [m.id for m in brk.movements.all()],
        "description": brk.description,
        "owner": brk.owner or None,
        "opened_at": brk.opened_at.isoformat(),
        "age_seconds": int(((brk.resolved_at or now) - brk.opened_at).total_seconds()),
        "resolved_at": brk.resolved_at.isoformat() if brk.resolved_at else None,
        "resolved_by": brk.resolved_by or None,
        "resolution": brk.resolution or None,
    }
    if history:
        body["history"] = [
            {
                "at": e.at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "status": e.status,
                "amount": amount_str(e.amount, brk.asset),
                "note": e.note,
            }
            for e in brk.events.all()
        ]
    return body


def breaks_by_age(*, now: datetime) -> list[dict]:
    """Unresolved breaks per age bucket and kind, for the dashboard."""
    rows = []
    unresolved = Break.objects.filter(status__in=Break.UNRESOLVED)
    for label, low, high in AGE_BUCKETS:
        window = Q(opened_at__lte=now - low)
        if high is not None:
            window &= Q(opened_at__gt=now - high)
        counts = dict(unresolved.filter(window).values_list("kind").annotate(n=Count("id")).order_by())
        rows.append({"label": label, "total": sum(counts.values()), "by_kind": counts})
    return rows
