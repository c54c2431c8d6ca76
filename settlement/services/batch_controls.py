"""Operations' and the counterparty's say over batches (DESIGN section 7):
operations hold a batch (its deadlines stand still, nothing more is
instructed) and release it, and leave a counterparty out of coming cycles
(taking it back needs four eyes); the counterparty affirms or disputes what
it is asked to deliver, and a batch not affirmed within the window proceeds
as affirmed, recorded as such."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.services.alerts import alert_raise
from controls.services.approvals import actor_of, approval_describer, approval_kind, approval_request
from controls.services.audit import audit_record
from registry.models import Operator
from settlement import hooks
from settlement.models import Batch, CounterpartyExclusion, Leg

from .cycles import batch_release, batch_settle

INCLUDE_KIND = "exclusion_lift"
MAX_REASON = 2000


def _reason(value: object, *, required: bool = True) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise InvalidInput("missing_field", "reason is required: say why", field="reason")
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON or not value.replace("\n", " ").isprintable():
        raise InvalidInput("invalid_field", f"reason must be text of at most {MAX_REASON} characters", field="reason")
    return value.strip()


def _locked_batch(batch_id: int, *, counterparty: Operator | None = None) -> Batch:
    """The batch under its row lock; a counterparty sees only its own."""
    batch = Batch.objects.select_for_update().select_related("counterparty").filter(pk=batch_id).first()
    if batch is None or (counterparty is not None and batch.counterparty_id != counterparty.id):
        raise NotFound("not_found", f"no batch {batch_id}")
    return batch


def _open(batch: Batch) -> None:
    if batch.status != Batch.Status.OPEN:
        raise Conflict("batch_not_open", f"batch {batch.id} is {batch.status}; only an open batch can change")


# --- hold and release --------------------------------------------------------------------------


def batch_hold(*, batch_id: int, reason: object, actor: str, now: datetime) -> Batch:
    """Hold an open batch at once: its deadlines stop and nothing more is
    instructed (what was instructed already may still arrive and is
    recorded). Holding a held batch changes nothing."""
    note = _reason(reason)
    with transaction.atomic():
        batch = _locked_batch(batch_id)
        _open(batch)
        if batch.held_at is not None:
            return batch
        _hold(batch=batch, reason=note, actor=actor, now=now)
        return batch


def _hold(*, batch: Batch, reason: str, actor: str, now: datetime) -> None:
    batch.held_at, batch.held_by, batch.hold_reason = now, actor, reason
    batch.save(update_fields=["held_at", "held_by", "hold_reason"])
    audit_record(
        actor=actor,
        action="batch.held",
        object_type="Batch",
        object_id=batch.id,
        before={"held": False},
        after={"held": True, "reason": reason},
        at=now,
    )


def batch_hold_release(*, batch_id: int, reason: object, actor: str, now: datetime) -> Batch:
    """Release a held batch: its open legs' deadlines move on by the time it
    was held, what its DVP policy allows is instructed now, and a batch whose
    legs all arrived meanwhile settles. Releasing a batch not held changes
    nothing."""
    note = _reason(reason, required=False)
    with transaction.atomic():
        batch = _locked_batch(batch_id)
        _open(batch)
        if batch.held_at is None:
            return batch
        held_for = now - batch.held_at
        legs = list(batch.legs.select_for_update().filter(status__in=Leg.OPEN_STATUSES).order_by("id"))
        for leg in legs:
            leg.deadline = leg.deadline + held_for
        Leg.objects.bulk_update(legs, ["deadline"])
        before = {"held": True, "held_at": batch.held_at.isoformat(), "reason": batch.hold_reason}
        batch.held_at, batch.held_by, batch.hold_reason = None, "", ""
        batch.save(update_fields=["held_at", "held_by", "hold_reason"])
        audit_record(
            actor=actor,
            action="batch.released",
            object_type="Batch",
            object_id=batch.id,
            before=before,
            after={"held": False, "reason": note, "deadlines_moved_by_seconds": int(held_for.total_seconds())},
            at=now,
        )
        batch_release(batch=batch, as_of=now, actor=actor)
        if not batch.legs.exclude(status=Leg.Status.CONFIRMED).exists():
            batch_settle(batch=batch, as_of=now, actor=actor)
        return batch


# --- excluding a counterparty from coming cycles ------------------------------------------------


def exclusion_as_json(exclusion: CounterpartyExclusion) -> dict:
    return {
        "exclusion_id": exclusion.id,
        "operator": exclusion.operator.code,
        "status": exclusion.status,
        "reason": exclusion.reason,
        "created_at": exclusion.created_at.isoformat().replace("+00:00", "Z"),
        "created_by": exclusion.created_by,
        "lifted_at": exclusion.lifted_at.isoformat().replace("+00:00", "Z") if exclusion.lifted_at else None,
        "lifted_by": exclusion.lifted_by or None,
        "lift_approval_id": exclusion.lift_approval_id,
    }


def _overseas(code: object) -> Operator:
    operator = (
        Operator.objects.filter(code=code, role=Operator.Role.OVERSEAS).first() if isinstance(code, str) else None
    )
    if operator is None:
        raise NotFound("not_found", f"no overseas operator {code}")
    return operator


def counterparty_exclude(
    *, code: object, reason: object, actor: str, now: datetime
) -> tuple[CounterpartyExclusion, bool]:
    """Leave a counterparty out of every coming cycle, at once (its open
    batches go on; hold them to stop them). Returns (exclusion, created):
    excluding an excluded counterparty returns the exclusion in force."""
    note = _reason(reason)
    operator = _overseas(code)
    with transaction.atomic():
        Operator.objects.select_for_update().get(pk=operator.pk)
        active = CounterpartyExclusion.objects.filter(
            operator=operator, status=CounterpartyExclusion.Status.ACTIVE
        ).first()
        if active is not None:
            return active, False
        exclusion = CounterpartyExclusion.objects.create(
            operator=operator, reason=note, created_at=now, created_by=actor
        )
        audit_record(
            actor=actor,
            action="counterparty.excluded",
            object_type="CounterpartyExclusion",
            object_id=exclusion.id,
            after=exclusion_as_json(exclusion),
            at=now,
        )
        return exclusion, True


def counterparty_include_request(*, code: object, reason: object, user: User, now: datetime) -> ApprovalRequest:
    """Ask to take an excluded counterparty back into the cycles: a
    different ops_approver decides (four eyes)."""
    operator = _overseas(code)
    note = _reason(reason, required=False)
    return approval_request(kind=INCLUDE_KIND, payload={"operator": operator.code, "reason": note}, user=user, now=now)


def _include_check(*, payload: dict) -> None:
    operator = _overseas(payload.get("operator"))
    if not CounterpartyExclusion.objects.filter(operator=operator, status=CounterpartyExclusion.Status.ACTIVE).exists():
        raise Conflict("not_excluded", f"{operator.code} is not excluded from cycles")


@approval_describer(INCLUDE_KIND)
def _include_describe(*, payload: dict, **_) -> list[str]:
    code = payload.get("operator")
    exclusion = (
        CounterpartyExclusion.objects.filter(operator__code=code, status=CounterpartyExclusion.Status.ACTIVE)
        .order_by("-created_at")
        .first()
    )
    since = f" (excluded by {exclusion.created_by}: {exclusion.reason})" if exclusion is not None else ""
    return [
        f"take {code} back into the coming cycles{since}: its open obligations settle again",
        f"why: {payload.get('reason') or '(none given)'}",
    ]


@approval_kind(INCLUDE_KIND, check=_include_check)
def _include(*, payload: dict, request: ApprovalRequest, approver: User, now: datetime) -> dict:
    operator = _overseas(payload.get("operator"))
    Operator.objects.select_for_update().get(pk=operator.pk)
    exclusion = (
        CounterpartyExclusion.objects.select_for_update()
        .filter(operator=operator, status=CounterpartyExclusion.Status.ACTIVE)
        .first()
    )
    if exclusion is None:
        raise Conflict("not_excluded", f"{operator.code} is not excluded from cycles")
    exclusion.status, exclusion.lifted_at, exclusion.lifted_by, exclusion.lift_approval = (
        CounterpartyExclusion.Status.LIFTED,
        now,
        actor_of(approver),
        request,
    )
    exclusion.save(update_fields=["status", "lifted_at", "lifted_by", "lift_approval"])
    audit_record(
        actor=actor_of(approver),
        action="counterparty.included",
        object_type="CounterpartyExclusion",
        object_id=exclusion.id,
        before={"status": CounterpartyExclusion.Status.ACTIVE},
        after={
            "status": exclusion.status,
            "approval_id": request.id,
            "requested_by": request.requested_by.username,
            "reason": payload.get("reason", ""),
        },
        at=now,
    )
    return {"operator": operator.code, "exclusion_id": exclusion.id, "status": exclusion.status}


# --- affirmation by the counterparty ------------------------------------------------------------

ANSWERABLE = (Batch.Affirmation.PENDING, Batch.Affirmation.NOT_REQUIRED)


def _answer(*, batch_id: int, operator: Operator, answer: str, reason: str, actor: str, now: datetime):
    """The counterparty's answer on its own batch, under the batch's lock:
    the same answer again changes nothing; once answered (or deemed
    affirmed) a batch takes no other. Returns (batch, changed)."""
    batch = _locked_batch(batch_id, counterparty=operator)
    if batch.affirmation == answer:
        return batch, False
    _open(batch)
    if batch.affirmation not in ANSWERABLE:
        raise Conflict("batch_already_answered", f"batch {batch.id} is {batch.affirmation}; it takes no other answer")
    _affirmation_set(batch=batch, to=answer, reason=reason, actor=actor, at=now)
    return batch, True


def _affirmation_set(*, batch: Batch, to: str, reason: str, actor: str, at: datetime) -> None:
    before = batch.affirmation
    batch.affirmation, batch.affirmed_at, batch.affirmed_by, batch.dispute_reason = to, at, actor, reason
    batch.save(update_fields=["affirmation", "affirmed_at", "affirmed_by", "dispute_reason"])
    after = {"affirmation": to, "reason": reason} if reason else {"affirmation": to}
    audit_record(
        actor=actor,
        action=f"batch.{to}",
        object_type="Batch",
        object_id=batch.id,
        before={"affirmation": before},
        after=after,
        at=at,
    )


def batch_affirm(*, batch_id: int, operator: Operator, actor: str, now: datetime) -> Batch:
    """The counterparty agrees with the batch: home's outbound legs may go
    (as its DVP policy allows). Affirming again returns the batch unchanged."""
    with transaction.atomic():
        batch, changed = _answer(
            batch_id=batch_id, operator=operator, answer=Batch.Affirmation.AFFIRMED, reason="", actor=actor, now=now
        )
        if changed:
            batch_release(batch=batch, as_of=now, actor=actor)
        return batch


def batch_dispute(*, batch_id: int, operator: Operator, reason: object, actor: str, now: datetime) -> Batch:
    """The counterparty disputes the batch: it is held at once, a break is
    opened (custody, through hooks.batch_disputed) and operations are
    alerted. Disputing a disputed batch returns it unchanged."""
    note = _reason(reason)
    with transaction.atomic():
        batch, changed = _answer(
            batch_id=batch_id, operator=operator, answer=Batch.Affirmation.DISPUTED, reason=note, actor=actor, now=now
        )
        if not changed:
            return batch
        if batch.held_at is None:
            _hold(batch=batch, reason=f"disputed by {operator.code}: {note}"[:MAX_REASON], actor=actor, now=now)
        hooks.batch_disputed.fire(batch_id=batch.id, reason=note, as_of=now, actor=actor)
        alert_raise(
            kind="batch_disputed",
            operator_code=operator.code,
            message=f"{operator.code} disputed batch {batch.id}: {note}"[:500],
            details={"batch": batch.id, "reason": note},
            at=now,
        )
        return batch


def affirmations_deem(*, as_of: datetime, actor: str) -> list[int]:
    """Batches whose affirmation window passed without an answer proceed as
    affirmed, recorded as ``deemed_affirmed``. Runs in the caller's
    transaction (the deadline check). Returns the batch ids."""
    ids = list(
        Batch.objects.filter(
            status=Batch.Status.OPEN, affirmation=Batch.Affirmation.PENDING, affirmation_due__lte=as_of
        )
        .order_by("id")
        .values_list("id", flat=True)
    )
    deemed = []
    for batch_id in ids:
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.status != Batch.Status.OPEN or batch.affirmation != Batch.Affirmation.PENDING:
            continue  # answered meanwhile
        _affirmation_set(batch=batch, to=Batch.Affirmation.DEEMED_AFFIRMED, reason="", actor=actor, at=as_of)
        batch_release(batch=batch, as_of=as_of, actor=actor)
        deemed.append(batch.id)
    return deemed
