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
