"""Carried credits as the API, the admin and the layers above read them:
what home holds of a counterparty's assets (or it of home's) because a
batch failed after they moved, until a later batch settles them."""

from __future__ import annotations

from decimal import Decimal

from django.db.models import Case, DecimalField, F, Sum, When

from controls.money import at_scale
from settlement.models import CarriedCredit, Leg


def counterparty_credits(*, counterparty_id: int) -> dict[str, Decimal]:
    """The counterparty's unsettled credits per asset code, signed: positive
    when home holds the counterparty's asset, negative when the counterparty
    holds home's. One aggregate; for the default waterfall (the defaulter's
    own assets that home holds) and for statements."""
    signed = Case(
        When(direction=Leg.Direction.INBOUND, then=F("amount")),
        default=-F("amount"),
        output_field=DecimalField(max_digits=38, decimal_places=18),
    )
    rows = (
        CarriedCredit.objects.filter(counterparty_id=counterparty_id, status__in=CarriedCredit.UNSETTLED)
        .values("asset__code")
        .annotate(held=Sum(signed))
        .order_by("asset__code")
    )
    return {row["asset__code"]: row["held"] for row in rows if row["held"] != 0}


def credit_as_json(credit: CarriedCredit) -> dict:
    def iso(value):
        return value.isoformat().replace("+00:00", "Z") if value else None

    return {
        "id": credit.id,
        "counterparty": credit.counterparty.code,
        "asset": credit.asset.code,
        "direction": credit.direction,
        "amount": format(at_scale(credit.amount, credit.asset.scale), "f"),
        "status": credit.status,
        "source_batch": credit.source_leg.batch_id,
        "source_leg": credit.source_leg_id,
        "applied_batch": credit.applied_batch_id,
        "created_at": iso(credit.created_at),
        "settled_at": iso(credit.settled_at),
    }
