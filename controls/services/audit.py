"""The append-only audit trail. Every service that changes state calls
``audit_record`` inside its own transaction."""

from datetime import datetime
from typing import Any

import orjson
from django.db import connection
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
    the keyword arguments of ``audit_record``; ``at`` is required. The rows
    travel as one JSON parameter (json_to_recordset): adapting a JSON value
    per row costs the client more than the server's insert."""
    if not events:
        return 0
    rows = [
        {
            "at": event["at"],
            "actor": event.get("actor") or SYSTEM,
            "action": event["action"],
            "object_type": event["object_type"],
            "object_id": str(event.get("object_id", "")),
            "before": event.get("before"),
            "after": event.get("after"),
        }
        for event in events
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {AuditEvent._meta.db_table} (at, actor, action, object_type, object_id, before, after) "
            "SELECT at, actor, action, object_type, object_id, before, after FROM json_to_recordset(%s::json) "
            "AS r(at timestamptz, actor text, action text, object_type text, object_id text, before jsonb, after jsonb)",
            [orjson.dumps(rows).decode()],
        )
    return len(rows)
