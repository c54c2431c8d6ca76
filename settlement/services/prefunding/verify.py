"""The balances are cached sums: a recompute from the append-only records
(funding events, hold events, settlement entries) must give the same
figures. A difference is an alert and an audit event; nothing is corrected
silently."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from settlement.selectors.prefunding import Difference, prefunding_recompute


@dataclass(slots=True)
class VerifyResult:
    differences: list[Difference] = field(default_factory=list)
    alert_id: int | None = None

    @property
    def ok(self) -> bool:
        return not self.differences


def prefunding_verify(*, as_of: datetime, actor: str) -> VerifyResult:
    """Compare every balance and hold with a recompute. In its own
    transaction both reads see one REPEATABLE READ snapshot, so writers do
    not wait; inside a caller's transaction they see what it sees."""
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        if owns_transaction:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        differences = prefunding_recompute()
        if not differences:
            return VerifyResult()
        details = [d.as_json() for d in differences[:100]]
        alert = alert_raise(
            kind="prefunding_mismatch",
            message=f"{len(differences)} prefunding figure(s) differ from a recompute from their records",
            details={"differences": details},
            at=as_of,
        )
        audit_record(
            actor=actor,
            action="prefunding.mismatch",
            object_type="Alert",
            object_id=alert.id,
            after={"differences": details},
            at=as_of,
        )
    return VerifyResult(differences, alert.id)
