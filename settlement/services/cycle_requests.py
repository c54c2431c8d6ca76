"""Intraday cycle requests (DESIGN section 5: settle_at starts a cycle).

Netting cycles are the next issue. Until they exist, dispatching a request
records that it reached a worker and leaves it ``pending``: visibly not yet
acted on, in the admin and the audit trail, rather than pretending a cycle ran.
"""

from django.db import transaction

from settlement.models import CycleRequest

from .audit import SYSTEM, audit_record


def cycle_request_dispatch_service(*, request_id: int) -> str:
    with transaction.atomic():
        request = CycleRequest.objects.select_for_update().filter(pk=request_id).first()
        if request is None:
            return "missing"
        if request.status != CycleRequest.Status.PENDING:
            return request.status
        audit_record(
            actor=SYSTEM,
            action="cycle_request.awaiting_cycles",
            object_type="CycleRequest",
            object_id=request.id,
            after={"status": request.status, "note": "netting cycles are not built yet; request kept pending"},
        )
        return "pending"
