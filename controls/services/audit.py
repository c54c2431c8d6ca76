"""The append-only audit trail. Every service that changes state calls
``audit_record`` inside its own transaction."""

from datetime import datetime
from typing import Any

from django.utils import timezone

from controls.models import AuditEvent

SYSTEM = "system"


def audit_record(
    *,
    actor: str,
    action: str,
    object_type: str,
    object_id: object = "",
    before: Any = None,
    after: Any = None,
    at: datetime | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        at=at or timezone.now(),
        actor=actor or SYSTEM,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        before=before,
        after=after,
    )


def audit_record_many(events: list[dict]) -> int:
    """Many events in one INSERT, for set-based services that change many
    rows at once (the matcher confirming thousands of legs). Each dict has
    the keyword arguments of ``audit_record``; ``at`` is required."""
    rows = [
        AuditEvent(
            at=event["at"],
            actor=event.get("actor") or SYSTEM,
            action=event["action"],
            object_type=event["object_type"],
            object_id=str(event.get("object_id", "")),
            before=event.get("before"),
            after=event.get("after"),
        )
        for event in events
    ]
    AuditEvent.objects.bulk_create(rows, batch_size=5000)
    return len(rows)
