"""Escrow DVP (DESIGN section 7): both sides deliver their legs to the
batch's escrow custodian, where each leg is ``locked`` on evidence (a chain
transfer into the escrow holding wallet, a statement entry, or the
custodian's report confirmed by hand with four eyes). When every leg of the
batch is locked, all releases are instructed together, in one transaction:
inbound assets to home, outbound assets to the counterparty. The batch
settles with those release instructions: from then on the assets are bound
for their new owners at a custodian holding both sides, and nothing is left
for either side to do. A batch that misses its deadline with a leg unlocked
returns each locked leg to the side that locked it (``deadlines``).

Custody writes the release and return instructions (its outbox) through
``hooks.escrow_released`` and ``hooks.escrow_returned``."""

from __future__ import annotations

from datetime import datetime

from controls.services.audit import audit_record, audit_record_many
from registry.models import Operator
from settlement import hooks
from settlement.models import Batch, Leg


def escrow_batch(batch: Batch) -> bool:
    return batch.dvp_policy == Operator.DvpPolicy.ESCROW


def escrow_release(*, batch: Batch, as_of: datetime, actor: str) -> list[int]:
    """Release every leg of an escrow batch at once when all are locked (the
    caller holds the batch's row lock): the legs become ``confirmed`` and
    custody writes one release instruction per leg in this transaction. The
    caller settles the batch. Returns the legs released (none while any leg
    is not locked yet)."""
    if not escrow_batch(batch) or batch.status != Batch.Status.OPEN or batch.held_at is not None:
        return []
    legs = list(batch.legs.select_for_update(of=("self",)).order_by("id").values_list("id", "status"))
    if not legs or any(status != Leg.Status.LOCKED for _, status in legs):
        return []
    ids = [leg_id for leg_id, _ in legs]
    Leg.objects.filter(pk__in=ids).update(status=Leg.Status.CONFIRMED, confirmed_at=as_of, confirmed_by=actor)
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "leg.released",
                "object_type": "Leg",
                "object_id": leg_id,
                "before": {"status": Leg.Status.LOCKED},
                "after": {"status": Leg.Status.CONFIRMED, "escrow_custodian": batch.escrow_custodian_id},
                "at": as_of,
            }
            for leg_id in ids
        ]
    )
    audit_record(
        actor=actor,
        action="batch.escrow_released",
        object_type="Batch",
        object_id=batch.id,
        after={"legs": ids, "escrow_custodian": batch.escrow_custodian_id},
        at=as_of,
    )
    # the release instructions go to the escrow custodian in this transaction
    hooks.escrow_released.fire(leg_ids=ids, as_of=as_of, actor=actor)
    hooks.legs_finished.fire(leg_ids=ids, as_of=as_of, actor=actor)
    return ids
