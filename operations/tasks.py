"""Celery tasks of the operations layer: thin, idempotent, time-limited."""

from datetime import datetime
from functools import partial

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from operations.services.notifications import deliveries_pending, delivery_attempt, notifications_scan
from operations.services.reports import settlement_report, settlement_report_alert
from settlement.services.statements import statements_generate

ACTOR = "celery"


@shared_task(name="operations.settlement_report", time_limit=300, soft_time_limit=270)
def settlement_report_task(day: str | None = None) -> dict:
    report = settlement_report(day=datetime.fromisoformat(day).date() if day else timezone.localdate())
    settlement_report_alert(report=report, actor=ACTOR)
    # the end of the day: each counterparty's statement, kept as sent
    made = statements_generate(day=datetime.fromisoformat(report["date"]).date(), actor=ACTOR, now=timezone.now())
    return {"breaches": len(report["breaches"]), "deferred": len(report["deferred"]), "statements": len(made)}


def deliveries_queue(delivery_ids: list[int]) -> None:
    """Send each delivery through Celery once the caller's transaction commits
    (at once when there is none): a worker never reads an uncommitted row."""
    for delivery_id in delivery_ids:
        transaction.on_commit(partial(notification_deliver_task.delay, delivery_id))


@shared_task(name="operations.notifications_scan", time_limit=60, soft_time_limit=50)
def notifications_scan_task() -> int:
    made = notifications_scan(now=timezone.now(), actor=ACTOR)
    deliveries_queue(deliveries_pending(made))
    return len(made)


@shared_task(
    bind=True,
    name="operations.notification_deliver",
    time_limit=60,
    soft_time_limit=50,
    max_retries=settings.NOTIFY_MAX_RETRIES,
)
def notification_deliver_task(self, delivery_id: int) -> str:
    """One attempt; a failure is retried with exponential backoff until
    NOTIFY_MAX_RETRIES, then the delivery is marked failed."""
    last = self.request.retries >= self.max_retries
    status = delivery_attempt(delivery_id=delivery_id, now=timezone.now(), last=last)
    if status == "pending":
        countdown = min(settings.NOTIFY_RETRY_BASE_SECONDS * 2**self.request.retries, settings.NOTIFY_RETRY_MAX_SECONDS)
        raise self.retry(countdown=countdown)
    return status
