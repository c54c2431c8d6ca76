"""Celery tasks: thin, idempotent, time-limited; each calls one service."""

from celery import shared_task
from django.utils import timezone

from settlement.services.cycle_requests import cycle_request_dispatch_service
from settlement.services.exposure import exposure_verify


@shared_task(name="settlement.exposure_verify", time_limit=120, soft_time_limit=100)
def exposure_verify_task() -> dict:
    result = exposure_verify(as_of=timezone.now())
    return {"ok": result.ok, "differences": len(result.differences), "alert_id": result.alert_id}


@shared_task(name="settlement.cycle_request_dispatch", time_limit=60, soft_time_limit=50)
def cycle_request_dispatch(request_id: int) -> str:
    return cycle_request_dispatch_service(request_id=request_id)
