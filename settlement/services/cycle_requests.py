"""Intraday cycle requests (circular para 15: reaching settle_at starts a
cycle at once). The request is a row written in the caller's transaction,
durable even if the broker is down; the task that serves it is queued on
commit, by name, so this module needs nothing from the task module."""

from __future__ import annotations

from datetime import datetime

from celery import signature
from django.db import transaction

from controls.services.audit import SYSTEM, audit_record
from settlement.models import CycleRequest
from settlement.selectors.exposure import Exposure, ExposureState

from .cycles import cycle_run

DISPATCH_TASK = "settlement.cycle_request_dispatch"


def cycle_request_if_settling(*, exposure: Exposure, actor: str) -> CycleRequest | None:
    """At or above settle_at, make sure one intraday cycle request is pending.

    The request row is written in the caller's transaction (durable even if
    the broker is down); the task that acts on it is queued on commit.
    """
    if exposure.state not in (ExposureState.SETTLING, ExposureState.HALTED) or exposure.utilisation is None:
        return None
    if exposure.total_hkd < exposure.effective_cap_hkd * exposure.thresholds["settle_at"]:
        return None  # halted for another reason (a missing mark): settling will not cure it
    if CycleRequest.objects.filter(status=CycleRequest.Status.PENDING, kind="intraday").exists():
        return None
    request = CycleRequest.objects.create(
        kind="intraday",
        reason=f"utilisation {exposure.utilisation} reached settle threshold {exposure.thresholds['settle_at']}",
        utilisation=exposure.utilisation,
        requested_at=exposure.as_of,
    )
    audit_record(
        actor=actor,
        action="cycle_request.created",
        object_type="CycleRequest",
        object_id=request.id,
        after={"kind": "intraday", "reason": request.reason},
        at=exposure.as_of,
    )
    transaction.on_commit(lambda: signature(DISPATCH_TASK, args=(request.id,)).delay(), robust=True)
    return request


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
