"""Alerts: something a person must look at. Raised by every layer; the
operations layer pushes them to whoever subscribed."""

from datetime import datetime

from django.utils import timezone

from controls.models import Alert

from .review import rows_resolve


def alert_raise(
    *, kind: str, message: str, details: dict | None = None, operator_code: str = "", at: datetime | None = None
) -> Alert:
    return Alert.objects.create(
        kind=kind,
        message=message,
        details=details or {},
        operator_code=operator_code,
        created_at=at or timezone.now(),
    )


def alerts_acknowledge(*, ids: list[int], actor: str, now: datetime) -> int:
    return rows_resolve(
        Alert,
        ids=ids,
        actor=actor,
        note="",
        now=now,
        status=Alert.Status.ACKNOWLEDGED,
        audit_action="alert.acknowledged",
    )
