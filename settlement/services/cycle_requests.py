"""Intraday cycle requests (DESIGN section 5: settle_at starts a cycle at once)."""

from datetime import datetime

from django.db import transaction

from settlement.models import CycleRequest

from .audit import SYSTEM
from .cycles import cycle_run


def cycle_request_dispatch_service(*, request_id: int, now: datetime) -> str:
    """Run the intraday cycle a request asked for. The cycle marks every
    pending request up to its as_of done; a request already served by
    another cycle needs nothing more."""
    with transaction.atomic():
        request = CycleRequest.objects.filter(pk=request_id).first()
        if request is None:
            return "missing"
        if request.status != CycleRequest.Status.PENDING:
            return request.status
    as_of = max(now, request.requested_at).replace(second=0, microsecond=0)
    if as_of < request.requested_at:
        as_of = request.requested_at
    cycle = cycle_run(kind="intraday", as_of=as_of, actor=SYSTEM)
    return f"cycle {cycle.id}"
