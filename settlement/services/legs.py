"""Legs move as evidence arrives: seen (confirming), final (confirmed, which
may release the batch's outbound legs and settle the batch), or unseen
again after a reorg. A manual confirmation needs four eyes."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
from django.db import connection, transaction

from controls.exceptions import Conflict, NotFound
from controls.models import ApprovalRequest
from controls.money import display
from controls.services.approvals import actor_of as approval_actor
from controls.services.approvals import approval_describer, approval_kind
from controls.services.audit import audit_record, audit_record_many
from registry.models import Operator
from settlement import hooks
from settlement.models import Batch, Leg

from .cycles import batch_release, batch_settle, batches_settle
from .escrow import escrow_batch, escrow_release

HK = ZoneInfo("Asia/Hong_Kong")


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
        if leg.status == Leg.Status.CONFIRMED and not escrow_batch(batch):
            return leg
        if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
            raise Conflict(
                "leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed"
            )
        if escrow_batch(batch):
            # an escrow leg's evidence locks it at the custodian; releases follow
            legs_lock(evidence={leg.id: evidence}, actor=actor, as_of=as_of)
            return Leg.objects.get(pk=leg.id)
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
        if batch.status == Batch.Status.OPEN and batch.held_at is None:
            batch_release(batch=batch, as_of=as_of, actor=actor)
            if not batch.legs.exclude(status=Leg.Status.CONFIRMED).exists():
                batch_settle(batch=batch, as_of=as_of, actor=actor)
        return leg


def legs_lock(*, evidence: dict[int, dict], actor: str, as_of: datetime) -> list[int]:
    """Escrow legs delivered to their batch's escrow custodian (the matcher
    saw the transfer into the escrow holding wallet, or a four-eyes manual
    confirmation from the custodian's report): ``locked``, with the
    evidence, in one UPDATE and one audit INSERT. Then each batch touched
    whose legs are now all locked is released and settled. Locks the
    batches, then the legs, in id order; a leg no longer instructed or
    confirming (or of a batch no longer open) is left alone. Returns the ids
    locked."""
    if not evidence:
        return []
    with transaction.atomic():
        ids = sorted(evidence)
        batch_ids = sorted(set(Leg.objects.filter(pk__any=ids).values_list("batch_id", flat=True)))
        batches = list(
            Batch.objects.select_for_update()
            .filter(pk__any=batch_ids, status=Batch.Status.OPEN, dvp_policy=Operator.DvpPolicy.ESCROW)
            .order_by("id")
        )
        before = dict(
            Leg.objects.select_for_update()
            .filter(
                pk__any=ids,
                batch_id__any=[b.id for b in batches],
                status__in=(Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING),
            )
            .order_by("id")
            .values_list("id", "status")
        )
        if not before:
            return []
        _evidence_set(
            ids=list(before),
            evidence=evidence,
            assignments="status = %s, locked_at = %s",
            params=[Leg.Status.LOCKED, as_of],
        )
        _legs_audit(before=before, status=Leg.Status.LOCKED, evidence=evidence, actor=actor, as_of=as_of)
        # home's delivery to the escrow holder is done (custody closes its instruction)
        hooks.legs_finished.fire(leg_ids=list(before), as_of=as_of, actor=actor)
        for batch in batches:
            if batch.held_at is None and escrow_release(batch=batch, as_of=as_of, actor=actor):
                batch_settle(batch=batch, as_of=as_of, actor=actor)
        return list(before)


def legs_confirm(*, evidence: dict[int, dict], actor: str, as_of: datetime, advance: bool = True) -> list[int]:
    """``leg_confirm`` for many legs at once (the matcher's bulk path): one
    UPDATE and the audit events in one INSERT; then (``advance``) each batch
    touched is released and settled once (``batches_advance``). A caller that
    passes ``advance=False`` must call ``batches_advance`` itself in the same
    transaction. Locks the batches, then the legs, in id order (the order
    ``leg_confirm`` uses). Legs no longer instructed or confirming are left
    alone; returns the ids confirmed."""
    if not evidence:
        return []
    with transaction.atomic():
        ids = sorted(evidence)
        batch_ids = sorted(set(Leg.objects.filter(pk__any=ids).values_list("batch_id", flat=True)))
        list(Batch.objects.select_for_update().filter(pk__any=batch_ids).order_by("id").values_list("id", flat=True))
        before = dict(
            Leg.objects.select_for_update()
            .filter(pk__any=ids, status__in=(Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING))
            .order_by("id")
            .values_list("id", "status")
        )
        if not before:
            return []
        _evidence_set(
            ids=list(before),
            evidence=evidence,
            assignments="status = %s, confirmed_at = %s, confirmed_by = %s",
            params=[Leg.Status.CONFIRMED, as_of, actor],
        )
        _legs_audit(before=before, status=Leg.Status.CONFIRMED, evidence=evidence, actor=actor, as_of=as_of)
        hooks.legs_finished.fire(leg_ids=list(before), as_of=as_of, actor=actor)
        if advance:
            batches_advance(batch_ids=batch_ids, as_of=as_of, actor=actor)
        return list(before)


def batches_advance(*, batch_ids: list[int], as_of: datetime, actor: str) -> list[int]:
    """What confirming legs sets off, for many open batches at once: release
    the pending legs the DVP policy now allows (only batches that have
    any), and settle each batch whose legs are all confirmed (a held batch
    waits for its release). Runs inside the
    caller's transaction, which holds the batches' locks. Returns the ids of
    the batches settled."""
    batches = list(
        Batch.objects.select_for_update()
        .filter(pk__any=batch_ids, status=Batch.Status.OPEN, held_at__isnull=True)
        .order_by("id")
    )
    ids = [batch.id for batch in batches]
    pending = set(Leg.objects.filter(batch_id__any=ids, status=Leg.Status.PENDING).values_list("batch_id", flat=True))
    for batch in batches:
        if batch.id in pending:
            batch_release(batch=batch, as_of=as_of, actor=actor)
    unsettled = set(
        Leg.objects.filter(batch_id__any=ids).exclude(status=Leg.Status.CONFIRMED).values_list("batch_id", flat=True)
    )
    complete = [batch for batch in batches if batch.id not in unsettled]
    batches_settle(batches=complete, as_of=as_of, actor=actor)
    return [batch.id for batch in complete]


def _legs_audit(*, before: dict[int, str], status: str, evidence: dict[int, dict], actor: str, as_of: datetime) -> None:
    """One audit event per leg moved to ``status`` with its evidence, in one INSERT."""
    audit_record_many(
        [
            {
                "actor": actor,
                "action": f"leg.{status}",
                "object_type": "Leg",
                "object_id": leg_id,
                "before": {"status": previous},
                "after": {"status": status, "evidence": evidence[leg_id]},
                "at": as_of,
            }
            for leg_id, previous in before.items()
        ]
    )


def _evidence_set(*, ids: list[int], evidence: dict[int, dict], assignments: str, params: list) -> None:
    """One UPDATE of many legs, each with its own evidence, the evidence
    travelling as one JSON parameter (a CASE per row, as bulk_update writes
    it, grows with the square of the rows)."""
    if not ids:
        return
    table = Leg._meta.db_table
    rows = orjson.dumps([{"id": i, "evidence": evidence[i]} for i in ids]).decode()
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} l SET {assignments}, evidence = v.evidence "
            "FROM json_to_recordset(%s::json) AS v(id bigint, evidence jsonb) WHERE l.id = v.id",
            [*params, rows],
        )


# --- manual confirmation with four eyes -----------------------------------------------------


def _leg_confirm_check(*, payload: dict) -> None:
    leg_id = payload.get("leg_id")
    leg = Leg.objects.filter(pk=leg_id).first() if isinstance(leg_id, int) else None
    if leg is None:
        raise NotFound("not_found", f"no leg {payload.get('leg_id')}")
    if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
        raise Conflict("leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed")


@approval_describer(ApprovalRequest.Kind.LEG_CONFIRM)
def _leg_confirm_describe(*, payload: dict, **_) -> list[str]:
    leg = Leg.objects.select_related("asset", "batch__counterparty", "batch__cycle").get(pk=payload["leg_id"])
    batch = leg.batch
    towards = "from" if leg.direction == Leg.Direction.INBOUND else "to"
    return [
        f"confirm by hand the {leg.direction} leg of {display(leg.amount, leg.asset.scale)} {leg.asset.code} "
        f"{towards} {batch.counterparty.code} (batch {batch.id}, {batch.cycle.kind} cycle of "
        f"{batch.cycle.as_of.astimezone(HK):%Y-%m-%d %H:%M} HKT; the leg is {leg.status} now)",
        f"evidence: {payload.get('evidence') or '(none given)'}",
    ]


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


def legs_mark_confirming(*, evidence: dict[int, dict], actor: str, as_of: datetime) -> list[int]:
    """``leg_mark_confirming`` for many instructed legs at once: one UPDATE
    and the audit events in one INSERT. Returns the ids moved."""
    if not evidence:
        return []
    with transaction.atomic():
        ids = list(
            Leg.objects.select_for_update()
            .filter(pk__any=sorted(evidence), status=Leg.Status.INSTRUCTED)
            .order_by("id")
            .values_list("id", flat=True)
        )
        _evidence_set(ids=ids, evidence=evidence, assignments="status = %s", params=[Leg.Status.CONFIRMING])
        audit_record_many(
            [
                {
                    "actor": actor,
                    "action": "leg.confirming",
                    "object_type": "Leg",
                    "object_id": leg_id,
                    "before": {"status": Leg.Status.INSTRUCTED},
                    "after": {"status": Leg.Status.CONFIRMING, "evidence": evidence[leg_id]},
                    "at": as_of,
                }
                for leg_id in ids
            ]
        )
        return ids


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
