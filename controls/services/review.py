"""Closing rows of the queues that fill up for people (exceptions, alerts):
each row moves to its closed status under its lock, with an audit event."""

from datetime import datetime

from django.db import transaction

from .audit import audit_record


def rows_resolve(model, *, ids: list[int], actor: str, note: str, now: datetime, status: str, audit_action: str) -> int:
    with transaction.atomic():
        rows = list(model.objects.select_for_update().filter(id__in=ids).exclude(status=status).order_by("id"))
        for row in rows:
            before = row.status
            row.status = status
            fields = ["status"]
            if hasattr(row, "resolution"):
                row.resolution, row.resolved_by, row.resolved_at = note, actor, now
                fields += ["resolution", "resolved_by", "resolved_at"]
            row.save(update_fields=fields)
            audit_record(
                actor=actor,
                action=audit_action,
                object_type=model.__name__,
                object_id=row.id,
                before={"status": before},
                after={"status": status, "note": note},
                at=now,
            )
        return len(rows)
