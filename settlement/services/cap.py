"""The cap and the reserve cover: the two halves of the effective cap
(min(cap, reserve available), circular paras 15 and 17). The reserves layer
owns the fund and its rules; it sets these through here, in its own
transaction, so exposure reads only settlement's tables."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction

from controls.services.audit import audit_record
from settlement.models import CapConfig, ReserveCover
from settlement.selectors.exposure import exposure_get

from .cycle_requests import cycle_request_if_settling

CAP_FIELDS = ("total_hkd", "warn_at", "settle_at", "halt_at")


def cap_set(*, values: dict[str, Decimal], actor: str, at: datetime) -> CapConfig:
    """Set the cap and its thresholds (the caller has checked them against
    the fund and had them approved)."""
    with transaction.atomic():
        cap = CapConfig.objects.select_for_update().first()
        before = {k: format(getattr(cap, k), "f") for k in CAP_FIELDS} if cap else None
        if cap is None:
            cap = CapConfig(singleton=True)
        for name in CAP_FIELDS:
            setattr(cap, name, values[name])
        cap.updated_at = at
        cap.save()
        audit_record(
            actor=actor,
            action="cap.changed",
            object_type="CapConfig",
            object_id=cap.pk,
            before=before,
            after={k: format(values[k], "f") for k in CAP_FIELDS},
            at=at,
        )
        cycle_request_if_settling(exposure=exposure_get(as_of=at), actor=actor)
        return cap


def reserve_cover_set(*, available_hkd: Decimal, actor: str, at: datetime) -> ReserveCover:
    """The fund's available balance changed: the effective cap follows at
    once, and a lower cap may start an intraday cycle."""
    with transaction.atomic():
        cover = ReserveCover.objects.select_for_update().first()
        if cover is not None and cover.available_hkd == available_hkd:
            return cover
        before = None if cover is None else {"available_hkd": format(cover.available_hkd, "f")}
        if cover is None:
            cover = ReserveCover(singleton=True)
        cover.available_hkd, cover.updated_at = available_hkd, at
        cover.save()
        audit_record(
            actor=actor,
            action="reserve_cover.updated",
            object_type="ReserveCover",
            object_id=cover.pk,
            before=before,
            after={"available_hkd": format(available_hkd, "f")},
            at=at,
        )
        cycle_request_if_settling(exposure=exposure_get(as_of=at), actor=actor)
        return cover
