"""Deadlines, fails and recycling: an open batch with a leg past its
deadline fails (unless its rail is degraded or halted: then it waits and
says why), and its obligations return to ``open`` for the next cycle.
Counterparties whose obligations keep failing are flagged for review."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q

from controls.models import Alert
from controls.money import as_str, display
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from registry.models import Operator, Rail
from settlement import hooks
from settlement.models import HOME, Batch, FailReason, Leg, Obligation

from .batch_controls import affirmations_deem
from .credits import credits_carry
from .cycles import IN_BATCH, OPEN, cycles_lock
from .history import batch_leaving

OVERDUE_STATUSES = (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING)


@dataclass(slots=True)
class DeadlineResult:
    failed: list[int]
    waiting: list[int]
    flagged: list[str]


def deadlines_check(*, as_of: datetime, actor: str) -> DeadlineResult:
    """Fail every open batch with an instructed leg past its deadline, unless
    that leg's rail is degraded or halted: then the batch waits and says why;
    a held batch's deadlines stand still. Batches whose affirmation window
    passed proceed as affirmed first.
    A failed batch's obligations return to ``open`` with one more fail, for
    the next cycle to take again.

    The first read (which batches have overdue legs) takes no lock, so each
    batch is read again under its row lock, batch first and then its legs
    (the order ``leg_confirm`` locks them in): a leg confirmed meanwhile, or
    a batch settled or failed meanwhile, is never failed."""
    with transaction.atomic():
        cycles_lock()
        affirmations_deem(as_of=as_of, actor=actor)
        candidates = list(
            Leg.objects.filter(
                batch__status=Batch.Status.OPEN,
                batch__held_at__isnull=True,
                status__in=OVERDUE_STATUSES,
                deadline__lt=as_of,
            )
            .order_by("batch_id")
            .values_list("batch_id", flat=True)
            .distinct()
        )
        failed, waiting = [], []
        counted = False
        for batch_id in candidates:
            batch = Batch.objects.select_for_update().get(pk=batch_id)
            if batch.status != Batch.Status.OPEN or batch.held_at is not None:
                continue  # settled, failed or held since the first read
            legs = list(
                batch.legs.select_for_update(of=("self",))
                .filter(status__in=OVERDUE_STATUSES, deadline__lt=as_of)
                .select_related("asset__rail")
                .order_by("id")
            )
            if not legs:
                continue  # confirmed since the first read
            paused = [leg for leg in legs if leg.asset.rail.status != Rail.Status.UP]
            if paused:
                reason = "; ".join(
                    f"{leg.direction} {leg.asset.code} leg is past its deadline but rail {leg.asset.rail.code} is "
                    f"{leg.asset.rail.status}: deadline paused"
                    for leg in paused
                )
                if batch.waiting_reason != reason:
                    batch.waiting_reason = reason
                    batch.save(update_fields=["waiting_reason"])
                    audit_record(
                        actor=actor,
                        action="batch.waiting",
                        object_type="Batch",
                        object_id=batch.id,
                        after={"reason": reason},
                        at=as_of,
                    )
                waiting.append(batch.id)
                continue
            counted = _batch_fail(batch=batch, overdue=legs, as_of=as_of, actor=actor) or counted
            failed.append(batch.id)
        flagged = _default_review_flags(as_of=as_of, actor=actor) if counted else []
        return DeadlineResult(failed, waiting, flagged)


def _legs_end(
    *, batch: Batch, failed: dict[int, tuple[str, str]], as_of: datetime, actor: str, reason: str = ""
) -> list[int]:
    """The legs of a failing batch (locked by the caller) end: the overdue
    ones ``failed`` with who failed them and why (``failed``: leg id to
    (failed_by, fail_reason)), every other open one ``cancelled``. Custody
    closes their instructions in this transaction (hooks.legs_finished), and
    writes a return instruction for each escrow leg that was ``locked``
    (hooks.escrow_returned): it is never confirmed, so never a carried
    credit."""
    open_legs = list(batch.legs.select_for_update(of=("self",)).filter(status__in=Leg.OPEN_STATUSES).order_by("id"))
    ended = []
    # escrow: what was locked at the custodian goes back to the side that locked it
    returned = [leg.id for leg in open_legs if leg.status == Leg.Status.LOCKED]
    for leg in open_legs:
        failed_by, fail_reason = failed.get(leg.id, ("", ""))
        status = Leg.Status.FAILED if leg.id in failed else Leg.Status.CANCELLED
        ended.append(leg.id)
        Leg.objects.filter(pk=leg.id).update(status=status, failed_by=failed_by, fail_reason=fail_reason)
        after: dict[str, str | bool] = {"status": status}
        if failed_by:
            after |= {"failed_by": failed_by, "fail_reason": fail_reason}
        if reason:
            after["reason"] = reason
        if leg.id in returned:
            after["returned_from_escrow"] = True
        audit_record(
            actor=actor,
            action=f"leg.{status}",
            object_type="Leg",
            object_id=leg.id,
            before={"status": leg.status},
            after=after,
            at=as_of,
        )
    if ended:
        hooks.legs_finished.fire(leg_ids=ended, as_of=as_of, actor=actor)
    if returned:
        # custody writes the return instructions to the escrow custodian
        hooks.escrow_returned.fire(leg_ids=returned, as_of=as_of, actor=actor)
    return ended


def _attribute(*, batch: Batch, overdue: list[Leg]) -> dict[int, tuple[str, str]]:
    """Who failed each overdue leg and why. An inbound leg is the
    counterparty's to deliver, an outbound one home's. A leg whose rail made
    the batch wait earlier failed for the rail; a leg of a disputed batch for
    the dispute; custody tells a short or over delivery from none at all."""
    reasons: dict[int, str] = {}
    hooks.legs_failing.fire(leg_ids=[leg.id for leg in overdue], reasons=reasons)
    code = batch.counterparty.code
    attributed = {}
    for leg in overdue:
        inbound = leg.direction == Leg.Direction.INBOUND
        why: str
        if f"rail {leg.asset.rail.code} is" in batch.waiting_reason:
            why = FailReason.RAIL_OUTAGE
        elif batch.affirmation == Batch.Affirmation.DISPUTED:
            why = FailReason.DISPUTED
        elif inbound:
            why = reasons.get(leg.id, FailReason.NOT_DELIVERED)
        else:
            why = FailReason.HOME_INSTRUCTION_LATE
        attributed[leg.id] = (code if inbound else HOME, str(why))
    return attributed


def _blame(attributed: dict[int, tuple[str, str]], counterparty: str) -> tuple[str, str]:
    """The batch's failure is the counterparty's when any of its legs
    failed, else home's; its reason is that party's first leg's."""
    ordered = [attributed[leg_id] for leg_id in sorted(attributed)]
    for failed_by, why in ordered:
        if failed_by == counterparty:
            return failed_by, why
    return ordered[0]


def _batch_fail(*, batch: Batch, overdue: list[Leg], as_of: datetime, actor: str) -> bool:
    """Fail the batch with its attribution; returns whether the fail counts
    toward the counterparty's default review (its own fail, not a rail's)."""
    code = batch.counterparty.code
    attributed = _attribute(batch=batch, overdue=overdue)
    failed_by, why = _blame(attributed, code)
    counts = failed_by == code and why != FailReason.RAIL_OUTAGE
    _legs_end(batch=batch, failed=attributed, as_of=as_of, actor=actor)
    returned = Obligation.objects.filter(batch=batch, status=IN_BATCH)
    count = batch_leaving(returned)  # the history keeps the batch they leave
    # only the counterparty's own fails count toward its default review
    returned.update(status=OPEN, batch=None, fail_count=F("fail_count") + (1 if counts else 0))
    detail = "deadline missed: " + ", ".join(
        f"{leg.direction} {leg.asset.code} {display(leg.amount, leg.asset.scale)} "
        f"({attributed[leg.id][0]}: {attributed[leg.id][1]})"
        for leg in overdue
    )
    batch.status = Batch.Status.FAILED
    batch.failed_at = as_of
    batch.failed_by, batch.fail_reason, batch.fail_detail = failed_by, why, detail[:300]
    batch.save(update_fields=["status", "failed_at", "failed_by", "fail_reason", "fail_detail"])
    audit_record(
        actor=actor,
        action="batch.failed",
        object_type="Batch",
        object_id=batch.id,
        before={"status": Batch.Status.OPEN},
        after={
            "status": Batch.Status.FAILED,
            "failed_by": failed_by,
            "fail_reason": why,
            "detail": detail,
            "obligations_recycled": count,
            "counts_toward_default_review": counts,
        },
        at=as_of,
    )
    home_late = [leg for leg in overdue if attributed[leg.id][0] == HOME]
    if home_late:
        # home's own lateness is operations' to chase, never the counterparty's fail
        alert_raise(
            kind="home_leg_late",
            operator_code=code,
            message=f"batch {batch.id} with {code} failed: home's own leg(s) missed the deadline",
            details={
                "batch": batch.id,
                "legs": [
                    {
                        "id": leg.id,
                        "asset": leg.asset.code,
                        "amount": as_str(leg.amount),
                        "reason": attributed[leg.id][1],
                    }
                    for leg in home_late
                ],
            },
            at=as_of,
        )
    # what moved is not stranded: it is carried into the counterparty's next
    # batch, with the credits this batch had taken in
    credits_carry(batch=batch, as_of=as_of, actor=actor)
    return counts


def batches_fail_for_default(*, counterparty_id: int, reason: str, as_of: datetime, actor: str) -> list[int]:
    """A counterparty declared in default: each of its open batches fails
    and every open leg is cancelled (nothing more is sent to it or expected
    from it; custody cancels the instructions). The obligations stay with the
    batch for the close-out, which runs in the caller's transaction.
    Each batch is locked and re-checked: one settled meanwhile stays settled."""
    failed = []
    batch_ids = list(
        Batch.objects.filter(counterparty_id=counterparty_id, status=Batch.Status.OPEN)
        .order_by("id")
        .values_list("id", flat=True)
    )
    for batch_id in batch_ids:
        batch = Batch.objects.select_for_update().get(pk=batch_id)
        if batch.status != Batch.Status.OPEN:
            continue
        _legs_end(batch=batch, failed={}, as_of=as_of, actor=actor, reason=reason)
        credits_carry(batch=batch, as_of=as_of, actor=actor)  # what it holds counts in the close-out
        batch.status, batch.failed_at = Batch.Status.FAILED, as_of
        batch.failed_by, batch.fail_reason = batch.counterparty.code, FailReason.COUNTERPARTY_DEFAULTED
        batch.fail_detail = reason[:300]
        batch.save(update_fields=["status", "failed_at", "failed_by", "fail_reason", "fail_detail"])
        audit_record(
            actor=actor,
            action="batch.failed",
            object_type="Batch",
            object_id=batch.id,
            before={"status": Batch.Status.OPEN},
            after={"status": Batch.Status.FAILED, "failed_by": batch.failed_by, "reason": reason},
            at=as_of,
        )
        failed.append(batch.id)
    return failed


def _default_review_flags(*, as_of: datetime, actor: str) -> list[str]:
    """Flag (never declare) a counterparty for default review when its
    obligations keep failing or stay unsettled too long."""
    fails = settings.DEFAULT_REVIEW_FAILS
    age = as_of - timedelta(hours=settings.DEFAULT_REVIEW_AGE_HOURS)
    # fail_count counts only the counterparty's own fails: an obligation that
    # is old because home was late, or a batch was held, is not its fault
    suspects = (
        Obligation.objects.unsettled()
        .filter(Q(fail_count__gte=fails) | Q(fail_count__gt=0, trade__executed_at__lt=age))
        .values_list("counterparty_id", flat=True)
        .distinct()
    )
    flagged = []
    for operator in Operator.objects.filter(id__in=list(suspects)).order_by("code"):
        if Alert.objects.filter(kind="default_review", operator_code=operator.code, status=Alert.Status.OPEN).exists():
            continue
        alert = alert_raise(
            kind="default_review",
            operator_code=operator.code,
            message=f"{operator.code}: obligations failed {fails}+ times or unsettled over {settings.DEFAULT_REVIEW_AGE_HOURS} h; review for default",
            details={"fails_threshold": fails, "age_hours": settings.DEFAULT_REVIEW_AGE_HOURS},
            at=as_of,
        )
        audit_record(
            actor=actor,
            action="alert.default_review",
            object_type="Alert",
            object_id=alert.id,
            after={"operator": operator.code},
            at=as_of,
        )
        flagged.append(operator.code)
    return flagged
