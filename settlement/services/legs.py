"""Legs move as evidence arrives: seen (confirming), final (confirmed, which
may release the batch's outbound legs and settle the batch), or unseen
again after a reorg. A manual confirmation needs four eyes."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from controls.exceptions import Conflict, NotFound
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of as approval_actor
from controls.services.approvals import approval_kind
from controls.services.audit import audit_record
from settlement import hooks
from settlement.models import Batch, Leg

from .cycles import batch_release, batch_settle


def leg_confirm(*, leg_id: int, evidence: dict, actor: str, as_of: datetime) -> Leg:
    """Record that a leg is final, with its evidence (a chain transfer, a
    statement entry, or an approved manual confirmation). The chain watcher
    and statement importer call this; so does a four-eyes approval.
    Confirming an already confirmed leg returns it unchanged."""
    with transaction.atomic():
        leg = Leg.objects.select_related("batch").filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        batch = Batch.objects.select_for_update().get(pk=leg.batch_id)  # batch first, then its legs
        leg = Leg.objects.select_for_update().get(pk=leg_id)
        if leg.status == Leg.Status.CONFIRMED:
            return leg
        if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
            raise Conflict(
                "leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed"
            )
        before = leg.status
        leg.status = Leg.Status.CONFIRMED
        leg.confirmed_at = as_of
        leg.confirmed_by = actor
        leg.evidence = evidence
        leg.save(update_fields=["status", "confirmed_at", "confirmed_by", "evidence"])
        audit_record(
            actor=actor,
            action="leg.confirmed",
            object_type="Leg",
            object_id=leg.id,
            before={"status": before},
            after={"status": Leg.Status.CONFIRMED, "evidence": evidence},
            at=as_of,
        )
        # an outbound leg's instruction is done now (custody, in this transaction)
        hooks.legs_finished.fire(leg_ids=[leg.id], as_of=as_of, actor=actor)
        if batch.status == Batch.Status.OPEN:
            batch_release(batch=batch, as_of=as_of, actor=actor)
            if not batch.legs.exclude(status=Leg.Status.CONFIRMED).exists():
                batch_settle(batch=batch, as_of=as_of, actor=actor)
        return leg


# --- manual confirmation with four eyes -----------------------------------------------------


def _leg_confirm_check(*, payload: dict) -> None:
    leg_id = payload.get("leg_id")
    leg = Leg.objects.filter(pk=leg_id).first() if isinstance(leg_id, int) else None
    if leg is None:
        raise NotFound("not_found", f"no leg {payload.get('leg_id')}")
    if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
        raise Conflict("leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed")


@approval_kind(ApprovalRequest.Kind.LEG_CONFIRM, check=_leg_confirm_check)
def _leg_confirm_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    leg = leg_confirm(
        leg_id=payload["leg_id"],
        evidence={
            "manual": payload["evidence"],
            "approval_id": request.id,
            "requested_by": request.requested_by.username,
            "approved_by": approver.username,
        },
        actor=approval_actor(approver),
        as_of=now,
    )
    leg.batch.refresh_from_db()
    return {"leg_id": leg.id, "leg_status": leg.status, "batch_id": leg.batch_id, "batch_status": leg.batch.status}


# --- what the watchers report before finality ---------------------------------------------


def leg_mark_confirming(*, leg_id: int, evidence: dict, actor: str, as_of: datetime) -> Leg:
    """A matching movement is seen but not final yet (e.g. too few block
    confirmations). Idempotent; never moves a confirmed leg backwards."""
    with transaction.atomic():
        leg = Leg.objects.select_for_update().filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        if leg.status == Leg.Status.CONFIRMING or leg.status == Leg.Status.CONFIRMED:
            return leg
        if leg.status != Leg.Status.INSTRUCTED:
            raise Conflict("leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be seen")
        leg.status = Leg.Status.CONFIRMING
        leg.evidence = evidence
        leg.save(update_fields=["status", "evidence"])
        audit_record(
            actor=actor,
            action="leg.confirming",
            object_type="Leg",
            object_id=leg.id,
            before={"status": Leg.Status.INSTRUCTED},
            after={"status": Leg.Status.CONFIRMING, "evidence": evidence},
            at=as_of,
        )
        return leg


def leg_unsee(*, leg_id: int, reason: str, actor: str, as_of: datetime) -> Leg:
    """The movement that made a leg ``confirming`` went away (a reorg): back
    to ``instructed`` so matching can find another. A confirmed leg is final
    and is not touched (a break records the problem instead)."""
    with transaction.atomic():
        leg = Leg.objects.select_for_update().filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        if leg.status != Leg.Status.CONFIRMING:
            return leg
        leg.status = Leg.Status.INSTRUCTED
        leg.evidence = None
        leg.save(update_fields=["status", "evidence"])
        audit_record(
            actor=actor,
            action="leg.unseen",
            object_type="Leg",
            object_id=leg.id,
            before={"status": Leg.Status.CONFIRMING},
            after={"status": Leg.Status.INSTRUCTED, "reason": reason},
            at=as_of,
        )
        return leg
