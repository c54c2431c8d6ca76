"""Breaks that are not about one leg's amount: final movements no open leg
can take (unmatched receipts and payments), and inbound legs past their
deadline (missing deliveries)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Exists, OuterRef

from controls.money import as_str
from custody.models import Break, Movement
from registry.models import Rail
from settlement.models import Leg

from ..breaks import NewBreak, break_raise, breaks_open
from .matching import OPEN_LEG, tolerance
from .scope import settlement_movements


def unmatched_movements(*, as_of: datetime, actor: str, result) -> None:
    """Final movements in or out of home that no open leg can take."""
    for direction, kind in (
        (Movement.Direction.INBOUND, Break.Kind.UNMATCHED_RECEIPT),
        (Movement.Direction.OUTBOUND, Break.Kind.UNMATCHED_PAYMENT),
    ):
        open_leg = Leg.objects.filter(
            direction=direction,
            status__in=OPEN_LEG,
            asset_id=OuterRef("asset_id"),
            batch__counterparty_id=OuterRef("counterparty_id"),
            instructed_at__lte=OuterRef("occurred_at") + tolerance(),
        )
        movements = (
            Movement.objects.filter(
                settlement_movements(), status=Movement.Status.FINAL, leg__isnull=True, direction=direction
            )
            .exclude(Exists(open_leg))
            .exclude(breaks__kind=kind)
            .select_related("asset", "counterparty", "account")
            .order_by("id")
        )
        verb = "received from" if direction == Movement.Direction.INBOUND else "paid to"
        items = []
        for movement in movements:
            who = movement.counterparty.code if movement.counterparty else "an unregistered sender or receiver"
            where = movement.tx_hash or f"{movement.account.number if movement.account else ''} {movement.entry_ref}"
            items.append(
                NewBreak(
                    key=f"{kind}:movement:{movement.id}",
                    kind=kind,
                    asset_id=movement.asset_id,
                    amount=movement.amount,
                    description=f"{as_str(movement.amount)} {movement.asset.code} {verb} {who} ({where.strip()}) "
                    "matches no open leg",
                    counterparty_id=movement.counterparty_id,
                    movement_id=movement.id,
                )
            )
        with transaction.atomic():
            result.breaks.extend(b.id for b in breaks_open(items=items, actor=actor, at=as_of))


def missing_deliveries(*, as_of: datetime, actor: str, result) -> None:
    """Inbound legs past their deadline without a confirmation, on a rail
    that is up (a degraded or halted rail pauses deadlines), in a batch not
    held (a hold stops its deadlines; its release moves them on)."""
    legs = (
        Leg.objects.filter(
            direction=Leg.Direction.INBOUND,
            status__in=[*OPEN_LEG, Leg.Status.FAILED],
            deadline__lt=as_of,
            asset__rail__status=Rail.Status.UP,
            batch__held_at__isnull=True,
        )
        .exclude(breaks__kind=Break.Kind.MISSING_DELIVERY)
        .select_related("asset", "batch__counterparty")
        .order_by("id")
    )
    for leg in legs:
        delivered = sum((m.amount for m in Movement.objects.filter(leg=leg, status=Movement.Status.FINAL)), Decimal(0))
        with transaction.atomic():
            brk, changed = break_raise(
                key=f"{Break.Kind.MISSING_DELIVERY}:leg:{leg.id}",
                kind=Break.Kind.MISSING_DELIVERY,
                asset_id=leg.asset_id,
                amount=leg.amount - delivered,
                description=(
                    f"leg {leg.id}: {as_str(leg.amount)} {leg.asset.code} from {leg.batch.counterparty.code} "
                    f"not delivered by its deadline {leg.deadline.isoformat()}"
                ),
                actor=actor,
                at=as_of,
                counterparty_id=leg.batch.counterparty_id,
                leg_id=leg.id,
            )
        if changed:
            result.breaks.append(brk.id)
