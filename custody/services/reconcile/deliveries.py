"""Short and over deliveries: final movements from the counterparty that do
not add up to an inbound leg."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from controls.money import as_str
from custody.models import Break, Movement
from settlement.models import Leg

from ..breaks import break_close_if_open, break_raise


def delivery_breaks(*, leg: Leg, candidates: list[Movement], as_of: datetime, actor: str, result) -> None:
    """Final movements from the counterparty that do not add up to the leg:
    short or over delivery. Waits while any candidate is still only seen."""
    if not candidates or any(m.status != Movement.Status.FINAL for m in candidates):
        return
    delivered = sum((m.amount for m in candidates), Decimal(0))
    code = leg.asset.code
    if delivered < leg.amount:
        kind, other, diff = Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY, leg.amount - delivered
        text = f"leg {leg.id}: {leg.batch.counterparty.code} delivered {as_str(delivered)} {code} of {as_str(leg.amount)} (short {as_str(diff)})"
    else:
        kind, other, diff = Break.Kind.OVER_DELIVERY, Break.Kind.SHORT_DELIVERY, delivered - leg.amount
        text = f"leg {leg.id}: {leg.batch.counterparty.code} delivered {as_str(delivered)} {code} for {as_str(leg.amount)} (over by {as_str(diff)}); no run of movements matches exactly"
    with transaction.atomic():
        brk, changed = break_raise(
            key=f"{kind}:leg:{leg.id}",
            kind=kind,
            asset_id=leg.asset_id,
            amount=diff,
            description=text,
            actor=actor,
            at=as_of,
            counterparty_id=leg.batch.counterparty_id,
            leg_id=leg.id,
            movements=candidates,
        )
        break_close_if_open(
            key=f"{other}:leg:{leg.id}", note=f"superseded: now {kind.replace('_', ' ')}", actor=actor, at=as_of
        )
    if changed:
        result.breaks.append(brk.id)


def legs_fail_reasons(*, leg_ids: list[int], reasons: dict[int, str]) -> None:
    """Settlement asks why inbound legs are failing (hooks.legs_failing):
    a leg with an unresolved short or over delivery break failed for that,
    not for nothing delivered. Fills ``reasons``."""
    kinds = (Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY)
    rows = Break.objects.filter(leg_id__in=leg_ids, kind__in=kinds, status__in=Break.UNRESOLVED).order_by("id")
    for leg_id, kind in rows.values_list("leg_id", "kind"):
        reasons[leg_id] = kind
