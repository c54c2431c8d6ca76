"""Operations closing the queues that intake and verification fill."""

from datetime import datetime

from django.db import transaction

from settlement.models import Alert, ComplianceException, TradeException

from .audit import audit_record


def _resolve(model, *, ids: list[int], actor: str, note: str, now: datetime, status: str, audit_action: str) -> int:
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


def trade_exceptions_resolve(*, ids: list[int], actor: str, note: str, now: datetime) -> int:
    return _resolve(
        TradeException,
        ids=ids,
        actor=actor,
        note=note,
        now=now,
        status="resolved",
        audit_action="trade_exception.resolved",
    )


def compliance_exceptions_resolve(*, ids: list[int], actor: str, note: str, now: datetime) -> int:
    return _resolve(
        ComplianceException,
        ids=ids,
        actor=actor,
        note=note,
        now=now,
        status="resolved",
        audit_action="compliance_exception.resolved",
    )


def alerts_acknowledge(*, ids: list[int], actor: str, now: datetime) -> int:
    return _resolve(
        Alert,
        ids=ids,
        actor=actor,
        note="",
        now=now,
        status="acknowledged",
        audit_action="alert.acknowledged",
    )
