"""Nothing delivered is stranded (DESIGN section 7): the legs that moved for
a batch that then failed become credits carried into the counterparty's
next batch, where they net with its obligations; they settle with that
batch and only with it (never outside DVP), and are open again if it fails
too. Runs inside the cycle's, the deadline check's or the settling batch's
transaction, which holds the batch's lock."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from controls.money import as_str
from controls.services.audit import audit_record_many
from settlement.aggregates import sums_by_direction
from settlement.models import Batch, CarriedCredit, Leg


def credits_carry(*, batch: Batch, as_of: datetime, actor: str) -> list[CarriedCredit]:
    """A batch failed: each of its confirmed legs becomes a credit of its
    counterparty (one per leg, a unique key: a batch fails once), and the
    credits it had taken in are open again for the next batch."""
    CarriedCredit.objects.filter(applied_batch=batch, status=CarriedCredit.Status.APPLIED).update(
        status=CarriedCredit.Status.OPEN, applied_batch=None
    )
    confirmed = list(batch.legs.filter(status=Leg.Status.CONFIRMED).order_by("id"))
    credits = CarriedCredit.objects.bulk_create(
        [
            CarriedCredit(
                counterparty_id=batch.counterparty_id,
                asset_id=leg.asset_id,
                direction=leg.direction,
                amount=leg.amount,
                source_leg=leg,
                created_at=as_of,
            )
            for leg in confirmed
        ]
    )
    codes = dict(Leg.objects.filter(pk__in=[leg.id for leg in confirmed]).values_list("id", "asset__code"))
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "credit.carried",
                "object_type": "CarriedCredit",
                "object_id": credit.id,
                "after": {
                    "batch": batch.id,
                    "leg": credit.source_leg_id,
                    "asset": codes[credit.source_leg_id],
                    "direction": credit.direction,
                    "amount": as_str(credit.amount),
                },
                "at": as_of,
            }
            for credit in credits
        ]
    )
    return credits


def credits_apply(*, batch: Batch, as_of: datetime, actor: str) -> dict[int, Decimal]:
    """Net the counterparty's open credits into its new batch: they are
    ``applied`` to it, and the answer is what they change per asset in the
    batch's net inbound (an inbound credit lowers what the counterparty
    still has to deliver; an outbound one raises it)."""
    open_credits = CarriedCredit.objects.select_for_update().filter(
        counterparty_id=batch.counterparty_id, status=CarriedCredit.Status.OPEN
    )
    ids = list(open_credits.order_by("id").values_list("id", flat=True))
    if not ids:
        return {}
    applied = CarriedCredit.objects.filter(pk__in=ids)
    sums = sums_by_direction(applied, ("asset_id",))
    applied.update(status=CarriedCredit.Status.APPLIED, applied_batch=batch)
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "credit.applied",
                "object_type": "CarriedCredit",
                "object_id": credit_id,
                "before": {"status": CarriedCredit.Status.OPEN},
                "after": {"status": CarriedCredit.Status.APPLIED, "batch": batch.id},
                "at": as_of,
            }
            for credit_id in ids
        ]
    )
    return {asset_id: outbound - inbound for (asset_id,), (inbound, outbound, _, _) in sums.items()}


def credits_settle(*, batch_ids: list[int], as_of: datetime) -> dict[int, int]:
    """The batches that took the credits in settled: so do they. Returns
    how many settled per batch (batches with none are left out)."""
    settled: dict[int, int] = {}
    applied = CarriedCredit.objects.filter(applied_batch_id__any=batch_ids, status=CarriedCredit.Status.APPLIED)
    for batch_id in applied.values_list("applied_batch_id", flat=True):
        settled[batch_id] = settled.get(batch_id, 0) + 1
    if settled:
        applied.update(status=CarriedCredit.Status.SETTLED, settled_at=as_of)
    return settled
