"""Marks: the latest price of each asset in HKD. A new mark revalues the
exposure at once, which may start an intraday cycle."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.money import as_str, parse_decimal
from controls.services.audit import audit_record
from controls.timestamps import parse_instant
from registry.models import Asset, Mark
from registry.selectors import HKD
from settlement.selectors.exposure import exposure_get

from .cycle_requests import cycle_request_if_settling


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
        # Lock every asset this request marks, in one statement and in id
        # order: two feeds posting the same assets in different orders then
        # queue behind each other instead of deadlocking.
        locked = {
            a.id: a for a in Asset.objects.select_for_update().filter(pk__in={a.id for a, *_ in parsed}).order_by("id")
        }
        for asset, price, as_of, source in parsed:
            created.append(
                Mark.objects.create(asset=asset, price_hkd=price, as_of=as_of, source=source, received_at=now)
            )
            current = locked[asset.id]
            if current.mark_as_of is None or as_of >= current.mark_as_of:
                before = {
                    "price_hkd": as_str(current.mark_hkd),
                    "as_of": current.mark_as_of.isoformat() if current.mark_as_of else None,
                }
                current.mark_hkd, current.mark_as_of, current.mark_source = price, as_of, source
                current.save(update_fields=["mark_hkd", "mark_as_of", "mark_source"])
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
