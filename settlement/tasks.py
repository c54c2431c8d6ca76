"""Celery tasks: thin, idempotent, time-limited; each calls one service.

Cycles started by beat use the current minute as their as_of, so a task
delivered twice (or a beat and a manual run in the same minute) makes one
cycle.
"""

from datetime import datetime

from celery import shared_task
from django.utils import timezone

from settlement.services.cycle_requests import cycle_request_dispatch_service
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.exposure import exposure_verify
from settlement.services.prefunding import holds_expire, prefunding_verify

ACTOR = "celery"


def _minute(raw: str | None = None) -> datetime:
    moment = datetime.fromisoformat(raw) if raw else timezone.now()
    return moment.replace(second=0, microsecond=0)


@shared_task(name="settlement.exposure_verify", time_limit=120, soft_time_limit=100)
def exposure_verify_task() -> dict:
    result = exposure_verify(as_of=timezone.now(), actor=ACTOR)
    return {"ok": result.ok, "differences": len(result.differences), "alert_id": result.alert_id}


@shared_task(name="settlement.cycle_request_dispatch", time_limit=600, soft_time_limit=540)
def cycle_request_dispatch(request_id: int) -> str:
    return cycle_request_dispatch_service(request_id=request_id, now=timezone.now())


@shared_task(name="settlement.cycle_run", time_limit=600, soft_time_limit=540, acks_late=True)
def cycle_run_task(kind: str, as_of: str | None = None) -> int:
    return cycle_run(kind=kind, as_of=_minute(as_of), actor=ACTOR).id


@shared_task(name="settlement.deadlines_check", time_limit=120, soft_time_limit=100)
def deadlines_check_task() -> dict:
    result = deadlines_check(as_of=timezone.now(), actor=ACTOR)
    return {"failed": result.failed, "waiting": result.waiting, "flagged": result.flagged}


@shared_task(name="settlement.prefunding_expire", time_limit=120, soft_time_limit=100)
def prefunding_expire_task() -> int:
    """Expire holds past their time (expiry is applied on every read too)."""
    return holds_expire(as_of=timezone.now(), actor=ACTOR)


@shared_task(name="settlement.prefunding_verify", time_limit=120, soft_time_limit=100)
def prefunding_verify_task() -> dict:
    result = prefunding_verify(as_of=timezone.now(), actor=ACTOR)
    return {"ok": result.ok, "differences": len(result.differences), "alert_id": result.alert_id}
