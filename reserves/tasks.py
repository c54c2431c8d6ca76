from celery import shared_task
from django.utils import timezone

from .services.monitoring import cover1_check, exposure_snapshot_take, insurance_check


@shared_task(name="reserves.exposure_snapshot", time_limit=60, soft_time_limit=50)
def exposure_snapshot_task() -> str:
    return exposure_snapshot_take(now=timezone.now()).at.isoformat()


@shared_task(name="reserves.insurance_check", time_limit=120, soft_time_limit=100)
def insurance_check_task() -> int:
    return len(insurance_check(on=timezone.localdate(), actor="celery"))


@shared_task(name="reserves.cover1_check", time_limit=60, soft_time_limit=50)
def cover1_check_task() -> int | None:
    alert = cover1_check(now=timezone.now(), actor="celery")
    return alert.id if alert else None
