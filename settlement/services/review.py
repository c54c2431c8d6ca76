"""Operations closing the queues that the trade intake fills."""

from datetime import datetime

from controls.services.review import rows_resolve
from settlement.models import ComplianceException, TradeException


def trade_exceptions_resolve(*, ids: list[int], actor: str, note: str, now: datetime) -> int:
    return rows_resolve(
        TradeException,
        ids=ids,
        actor=actor,
        note=note,
        now=now,
        status="resolved",
        audit_action="trade_exception.resolved",
    )


def compliance_exceptions_resolve(*, ids: list[int], actor: str, note: str, now: datetime) -> int:
    return rows_resolve(
        ComplianceException,
        ids=ids,
        actor=actor,
        note=note,
        now=now,
        status="resolved",
        audit_action="compliance_exception.resolved",
    )
