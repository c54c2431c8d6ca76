"""Celery tasks of the operations layer: thin, idempotent, time-limited."""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

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
