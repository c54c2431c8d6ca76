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
from settlement.models import Batch, Leg, Obligation

from .cycles import IN_BATCH, OPEN, cycles_lock


@dataclass(slots=True)
class DeadlineResult:
    failed: list[int]
    waiting: list[int]
    flagged: list[str]


def deadlines_check(*, as_of: datetime, actor: str) -> DeadlineResult:
    """Fail every open batch with an instructed leg past its deadline, unless
    that leg's rail is degraded or halted: then the batch waits and says why.
    A failed batch's obligations return to ``open`` with one more fail, for
    the next cycle to take again."""
    with transaction.atomic():
        cycles_lock()
        overdue = (
            Leg.objects.filter(
                batch__status=Batch.Status.OPEN,
                status__in=[Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING],
                deadline__lt=as_of,
            )
            .select_related("asset__rail")
            .order_by("batch_id", "id")
        )
        by_batch: dict[int, list[Leg]] = {}
        for leg in overdue:
            by_batch.setdefault(leg.batch_id, []).append(leg)
        failed, waiting = [], []
        for batch_id, legs in by_batch.items():
            batch = Batch.objects.select_for_update().get(pk=batch_id)
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


def _batch_fail(*, batch: Batch, overdue: list[Leg], as_of: datetime, actor: str) -> None:
    overdue_ids = {leg.id for leg in overdue}
    confirmed = list(batch.legs.filter(status=Leg.Status.CONFIRMED).select_related("asset"))
    batch.legs.filter(id__in=overdue_ids).update(status=Leg.Status.FAILED)
    batch.legs.filter(status__in=Leg.OPEN_STATUSES).update(status=Leg.Status.CANCELLED)
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
