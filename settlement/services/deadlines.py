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
from controls.money import as_str
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from registry.models import Operator, Rail
from settlement import hooks
from settlement.models import Batch, Leg, Obligation

from .cycles import IN_BATCH, OPEN, cycles_lock

OVERDUE_STATUSES = (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING)


@dataclass(slots=True)
class DeadlineResult:
    failed: list[int]
    waiting: list[int]
    flagged: list[str]


def deadlines_check(*, as_of: datetime, actor: str) -> DeadlineResult:
    """Fail every open batch with an instructed leg past its deadline, unless
    that leg's rail is degraded or halted: then the batch waits and says why.
    A failed batch's obligations return to ``open`` with one more fail, for
    the next cycle to take again.

    The first read (which batches have overdue legs) takes no lock, so each
    batch is read again under its row lock, batch first and then its legs
    (the order ``leg_confirm`` locks them in): a leg confirmed meanwhile, or
    a batch settled or failed meanwhile, is never failed."""
    with transaction.atomic():
        cycles_lock()
        candidates = list(
            Leg.objects.filter(batch__status=Batch.Status.OPEN, status__in=OVERDUE_STATUSES, deadline__lt=as_of)
            .order_by("batch_id")
            .values_list("batch_id", flat=True)
            .distinct()
        )
        failed, waiting = [], []
        for batch_id in candidates:
            batch = Batch.objects.select_for_update().get(pk=batch_id)
            if batch.status != Batch.Status.OPEN:
                continue  # settled (its last leg was confirmed) or failed since the first read
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
            _batch_fail(batch=batch, overdue=legs, as_of=as_of, actor=actor)
            failed.append(batch.id)
        flagged = _default_review_flags(as_of=as_of, actor=actor) if failed else []
        return DeadlineResult(failed, waiting, flagged)


def _legs_end(*, batch: Batch, failed_ids: set[int], as_of: datetime, actor: str) -> list[int]:
    """The legs of a failing batch (locked by the caller) end: the overdue
    ones ``failed``, every other open one ``cancelled``. Custody closes
    their instructions in this transaction (hooks.legs_finished)."""
    open_legs = list(batch.legs.select_for_update(of=("self",)).filter(status__in=Leg.OPEN_STATUSES).order_by("id"))
    ended = []
    for leg in open_legs:
        status = Leg.Status.FAILED if leg.id in failed_ids else Leg.Status.CANCELLED
        ended.append(leg.id)
        Leg.objects.filter(pk=leg.id).update(status=status)
        audit_record(
            actor=actor,
            action=f"leg.{status}",
            object_type="Leg",
            object_id=leg.id,
            before={"status": leg.status},
            after={"status": status},
            at=as_of,
        )
    if ended:
        hooks.legs_finished.fire(leg_ids=ended, as_of=as_of, actor=actor)
    return ended


def _batch_fail(*, batch: Batch, overdue: list[Leg], as_of: datetime, actor: str) -> None:
    overdue_ids = {leg.id for leg in overdue}
    confirmed = list(batch.legs.filter(status=Leg.Status.CONFIRMED).select_related("asset"))
    _legs_end(batch=batch, failed_ids=overdue_ids, as_of=as_of, actor=actor)
    returned = Obligation.objects.filter(batch=batch, status=IN_BATCH)
    count = returned.count()
    returned.update(status=OPEN, batch=None, fail_count=F("fail_count") + 1)
    reason = "deadline missed: " + ", ".join(
        f"{leg.direction} {leg.asset.code} {as_str(leg.amount)}" for leg in overdue
    )
    batch.status = Batch.Status.FAILED
    batch.failed_at = as_of
    batch.fail_reason = reason[:300]
    batch.save(update_fields=["status", "failed_at", "fail_reason"])
    audit_record(
        actor=actor,
        action="batch.failed",
        object_type="Batch",
        object_id=batch.id,
        before={"status": Batch.Status.OPEN},
        after={"status": Batch.Status.FAILED, "reason": reason, "obligations_recycled": count},
        at=as_of,
    )
    if confirmed:
        # Assets that did move for a batch that failed: someone must return
        # them or apply them off-line; the next cycle nets the obligations afresh.
        alert_raise(
            kind="failed_batch_with_movements",
            operator_code=batch.counterparty.code,
            message=f"batch {batch.id} failed after {len(confirmed)} leg(s) had already settled; return or apply them",
            details={
                "legs": [
                    {"id": leg.id, "asset": leg.asset.code, "direction": leg.direction, "amount": as_str(leg.amount)}
                    for leg in confirmed
                ]
            },
            at=as_of,
        )


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
        _legs_end(batch=batch, failed_ids=set(), as_of=as_of, actor=actor)
        batch.status, batch.failed_at, batch.fail_reason = Batch.Status.FAILED, as_of, reason[:300]
        batch.save(update_fields=["status", "failed_at", "fail_reason"])
        audit_record(
            actor=actor,
            action="batch.failed",
            object_type="Batch",
            object_id=batch.id,
            before={"status": Batch.Status.OPEN},
            after={"status": Batch.Status.FAILED, "reason": reason},
            at=as_of,
        )
        failed.append(batch.id)
    return failed


def _default_review_flags(*, as_of: datetime, actor: str) -> list[str]:
    """Flag (never declare) a counterparty for default review when its
    obligations keep failing or stay unsettled too long."""
    fails = settings.DEFAULT_REVIEW_FAILS
    age = as_of - timedelta(hours=settings.DEFAULT_REVIEW_AGE_HOURS)
    suspects = (
        Obligation.objects.filter(status__in=Obligation.UNSETTLED)
        .filter(Q(fail_count__gte=fails) | Q(trade__executed_at__lt=age))
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
