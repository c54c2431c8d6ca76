"""Writes that move exposure: running positions, marks, the verification
against a full recompute, and the intraday cycle request at settle_at."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from settlement.aggregates import sums_by_direction
from settlement.exceptions import InvalidInput
from settlement.models import Alert, Asset, CycleRequest, ExposurePosition, Mark, Obligation
from settlement.money import as_str, parse_decimal
from settlement.selectors import HKD, Exposure, ExposureState, exposure_get, exposure_recompute_positions
from settlement.timestamps import parse_instant

from .audit import SYSTEM, audit_record

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PositionDelta:
    counterparty_id: int
    asset_id: int
    receivable: Decimal
    payable: Decimal
    receivable_count: int
    payable_count: int


def positions_apply(*, deltas: list[PositionDelta]) -> None:
    """Add deltas to the running positions. Must run inside the transaction
    that changed the obligations. Rows are created if missing and updated in
    (counterparty, asset) order, so concurrent writers lock them in one
    order and cannot deadlock."""
    if not deltas:
        return
    deltas = sorted(deltas, key=lambda d: (d.counterparty_id, d.asset_id))
    ExposurePosition.objects.bulk_create(
        [ExposurePosition(counterparty_id=d.counterparty_id, asset_id=d.asset_id) for d in deltas],
        ignore_conflicts=True,
    )
    for d in deltas:
        ExposurePosition.objects.filter(counterparty_id=d.counterparty_id, asset_id=d.asset_id).update(
            receivable=F("receivable") + d.receivable,
            payable=F("payable") + d.payable,
            receivable_count=F("receivable_count") + d.receivable_count,
            payable_count=F("payable_count") + d.payable_count,
        )


def positions_release(*, obligations: QuerySet[Obligation]) -> None:
    """Obligations leaving the unsettled set (settled, or closed out in a
    default) come out of the running positions. Call it in the transaction
    that changes their status, before the change (the sums read them)."""
    sums = sums_by_direction(obligations, ("counterparty_id", "asset_id"))
    positions_apply(
        deltas=[
            PositionDelta(cp, asset, -inbound, -outbound, -inbound_count, -outbound_count)
            for (cp, asset), (inbound, outbound, inbound_count, outbound_count) in sums.items()
        ]
    )


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
    from settlement.tasks import cycle_request_dispatch

    transaction.on_commit(lambda: cycle_request_dispatch.delay(request.id), robust=True)
    return request


# --- marks ------------------------------------------------------------------------


def marks_post(*, marks: object, actor: str, now: datetime | None = None) -> list[Mark]:
    """Record marks; the newest per asset by ``as_of`` becomes its current mark.
    All or nothing: one bad item refuses the request, naming it."""
    now = now or timezone.now()
    if not isinstance(marks, list) or not marks:
        raise InvalidInput("invalid_field", "marks must be a non-empty list", field="marks")
    if len(marks) > 1000:
        raise InvalidInput("too_many_items", "at most 1,000 marks per request", field="marks")
    assets = {a.code: a for a in Asset.objects.all()}
    parsed = []
    for i, item in enumerate(marks):
        where = f"marks[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("invalid_field", f"{where} must be an object", field=where)
        code = item.get("asset")
        asset = assets.get(code) if isinstance(code, str) else None
        if asset is None:
            raise InvalidInput(
                "unknown_asset", f"{where}.asset {code!r} is not a registered asset", field=f"{where}.asset"
            )
        if asset.code == HKD:
            raise InvalidInput(
                "invalid_field", f"{where}: HKD is the valuation currency; its mark is always 1", field=f"{where}.asset"
            )
        try:
            price = parse_decimal(item.get("price_hkd"), field=f"{where}.price_hkd")
        except InvalidInput as error:
            raise InvalidInput(error.code, error.message, field=error.field) from None
        as_of = parse_instant(item.get("as_of"), field=f"{where}.as_of", default=now)
        if as_of > now + timedelta(seconds=60):
            raise InvalidInput("future_as_of", f"{where}.as_of is in the future", field=f"{where}.as_of")
        source = item.get("source", actor)
        if not isinstance(source, str) or len(source) > 100:
            raise InvalidInput(
                "invalid_field", f"{where}.source must be a string of at most 100 characters", field=f"{where}.source"
            )
        parsed.append((asset, price, as_of, source or actor))
    created = []
    with transaction.atomic():
        for asset, price, as_of, source in parsed:
            created.append(
                Mark.objects.create(asset=asset, price_hkd=price, as_of=as_of, source=source, received_at=now)
            )
            locked = Asset.objects.select_for_update().get(pk=asset.pk)
            if locked.mark_as_of is None or as_of >= locked.mark_as_of:
                before = {
                    "price_hkd": as_str(locked.mark_hkd),
                    "as_of": locked.mark_as_of.isoformat() if locked.mark_as_of else None,
                }
                locked.mark_hkd, locked.mark_as_of, locked.mark_source = price, as_of, source
                locked.save(update_fields=["mark_hkd", "mark_as_of", "mark_source"])
                audit_record(
                    actor=actor,
                    action="mark.updated",
                    object_type="Asset",
                    object_id=asset.code,
                    before=before,
                    after={"price_hkd": as_str(price), "as_of": as_of.isoformat(), "source": source},
                    at=now,
                )
        exposure = exposure_get(as_of=now)
        cycle_request_if_settling(exposure=exposure, actor=actor)
    return created


# --- verification -----------------------------------------------------------------


@dataclass(slots=True)
class VerifyResult:
    ok: bool
    differences: list[dict]
    alert_id: int | None


def exposure_verify(*, as_of: datetime | None = None, actor: str = SYSTEM) -> VerifyResult:
    """Compare the running positions with a full recompute from the
    obligations. Any difference is logged, audited and raised as an alert."""
    as_of = as_of or timezone.now()
    owns_transaction = not connection.in_atomic_block
    with transaction.atomic():
        # Both reads must see one moment. In its own transaction a REPEATABLE
        # READ snapshot gives that without making intake wait; inside a
        # caller's transaction (already started) writers wait on a SHARE lock
        # for the length of the check instead.
        with connection.cursor() as cursor:
            if owns_transaction:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            else:
                cursor.execute("LOCK TABLE settlement_exposureposition IN SHARE MODE")
        running = {
            (p.counterparty_id, p.asset_id): (p.receivable, p.payable, p.receivable_count, p.payable_count)
            for p in ExposurePosition.objects.order_by("counterparty_id", "asset_id")
        }
        recomputed = exposure_recompute_positions()
        zero = (Decimal(0), Decimal(0), 0, 0)
        differences = []
        for key in sorted(set(running) | set(recomputed)):
            have, want = running.get(key, zero), recomputed.get(key, zero)
            if have != want:
                differences.append(
                    {
                        "counterparty_id": key[0],
                        "asset_id": key[1],
                        "running": [as_str(have[0]), as_str(have[1]), have[2], have[3]],
                        "recomputed": [as_str(want[0]), as_str(want[1]), want[2], want[3]],
                    }
                )
        if not differences:
            return VerifyResult(True, [], None)
        message = f"incremental exposure differs from the recompute in {len(differences)} position(s)"
        logger.error("exposure verification failed: %s: %s", message, differences)
        alert = Alert.objects.create(
            kind="exposure_mismatch", message=message, details={"differences": differences}, created_at=as_of
        )
        audit_record(
            actor=actor,
            action="exposure.mismatch",
            object_type="Alert",
            object_id=alert.id,
            after={"differences": differences},
            at=as_of,
        )
        return VerifyResult(False, differences, alert.id)
