"""Exposure snapshots (the sizing history) and the daily insurance check."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import Q, Sum

from controls.models import Alert
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from registry.models import Asset, Wallet, WalletBalance
from registry.selectors import HKD
from settlement.models import Obligation
from settlement.selectors.exposure import exposure_get

from ..models import ExposureSnapshot, InsurancePolicy
from ..selectors import reserve_available_hkd
from .losses import cover1


def exposure_snapshot_take(*, now: datetime) -> ExposureSnapshot:
    at = now.replace(second=0, microsecond=0)
    exposure = exposure_get(as_of=now)
    snapshot, _ = ExposureSnapshot.objects.get_or_create(
        at=at,
        defaults={
            "total_hkd": exposure.total_hkd,
            "total_at_marks_hkd": exposure.total_at_marks_hkd,
            "effective_cap_hkd": exposure.effective_cap_hkd,
            "utilisation": exposure.utilisation,
            "state": exposure.state,
            "by_counterparty": {c.operator: format(c.exposure_hkd, "f") for c in exposure.by_counterparty},
        },
    )
    return snapshot


def _to_be_delivered() -> tuple[Decimal, set[str]]:
    """Settlement assets overseas operators still have to deliver to home:
    unsettled inbound obligations, at current marks, in one aggregate."""
    marks = {a.id: (Decimal(1) if a.code == HKD else a.mark_hkd) for a in Asset.objects.all()}
    codes = dict(Asset.objects.values_list("id", "code"))
    rows = (
        Obligation.objects.unsettled()
        .filter(direction=Obligation.Direction.INBOUND)
        .values("asset_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    value, unvalued = Decimal(0), set()
    for row in rows:
        mark = marks.get(row["asset_id"])
        if mark is None:
            unvalued.add(codes[row["asset_id"]])
            continue
        value += row["total"] * mark
    return value, unvalued


def insurance_required(*, on: date) -> dict:
    """What para 18 asks to be covered: 100% of the value of settlement assets
    in home hot storage, at least 50% of those in cold (FACTS: VATP 10.22),
    and the same level as hot storage for the settlement assets overseas
    operators still have to deliver (the circular); percentages are settings,
    values at current marks. Coverage counts home's policies, and an overseas
    operator's only with home or its associated entity as beneficiary on
    trust (footnote 4)."""
    hot_pct = Decimal(str(getattr(settings, "INSURANCE_HOT_PCT", "1.00")))
    cold_pct = Decimal(str(getattr(settings, "INSURANCE_COLD_PCT", "0.50")))
    delivery_pct = Decimal(str(getattr(settings, "INSURANCE_TO_BE_DELIVERED_PCT", "1.00")))
    marks = {a.id: (Decimal(1) if a.code == HKD else a.mark_hkd) for a in Asset.objects.all()}
    values = {"hot": Decimal(0), "cold": Decimal(0)}
    unvalued = set()
    balances = WalletBalance.objects.filter(wallet__operator__role="home").select_related("wallet", "asset")
    for balance in balances:
        mark = marks.get(balance.asset_id)
        if mark is None:
            unvalued.add(balance.asset.code)
            continue
        values[balance.wallet.temperature] += balance.amount * mark
    to_be_delivered, unvalued_inbound = _to_be_delivered()
    unvalued |= unvalued_inbound
    required = (values["hot"] * hot_pct + values["cold"] * cold_pct + to_be_delivered * delivery_pct).quantize(
        Decimal("0.01")
    )
    in_force = InsurancePolicy.objects.filter(starts_on__lte=on, ends_on__gte=on).order_by("reference")
    counted = [p for p in in_force if p.counts_for_home]
    coverage = sum((p.coverage_hkd for p in counted), Decimal("0.00"))
    return {
        "hot_hkd": values["hot"].quantize(Decimal("0.01")),
        "cold_hkd": values["cold"].quantize(Decimal("0.01")),
        "to_be_delivered_hkd": to_be_delivered.quantize(Decimal("0.01")),
        "hot_pct": hot_pct,
        "cold_pct": cold_pct,
        "to_be_delivered_pct": delivery_pct,
        "policies_not_counted": [p.reference for p in in_force if not p.counts_for_home],
        "required_hkd": required,
        "coverage_hkd": coverage,
        "shortfall_hkd": max(required - coverage, Decimal("0.00")),
        "unvalued_assets": sorted(unvalued),
        "wallets_without_balances": Wallet.objects.filter(operator__role="home")
        .exclude(balances__isnull=False)
        .count(),
    }


def insurance_check(*, on: date, actor: str) -> list[Alert]:
    """Daily: alert on a coverage shortfall or a policy ending soon (once a day each)."""
    result = insurance_required(on=on)
    alerts = []
    with transaction.atomic():
        if result["shortfall_hkd"] > 0:
            alerts.append(
                _alert_once(
                    kind="insurance_shortfall",
                    day=on,
                    message=f"coverage {result['coverage_hkd']} HKD is short of the required {result['required_hkd']} HKD by {result['shortfall_hkd']} HKD",
                    details={k: str(v) for k, v in result.items()},
                    actor=actor,
                )
            )
        warn_days = int(getattr(settings, "INSURANCE_EXPIRY_WARNING_DAYS", 30))
        for policy in InsurancePolicy.objects.filter(
            Q(ends_on__gte=on) & Q(ends_on__lte=on + timedelta(days=warn_days))
        ):
            alerts.append(
                _alert_once(
                    kind="policy_expiring",
                    day=on,
                    message=f"policy {policy.reference} ({policy.provider}) ends on {policy.ends_on}",
                    details={"policy": policy.reference, "ends_on": policy.ends_on.isoformat()},
                    actor=actor,
                )
            )
    return [a for a in alerts if a is not None]


def _alert_once(*, kind: str, day: date, message: str, details: dict, actor: str) -> Alert:
    details = {**details, "date": day.isoformat()}
    existing = Alert.objects.filter(kind=kind, details__date=day.isoformat(), message=message).first()
    if existing:
        return existing
    alert = alert_raise(kind=kind, message=message, details=details, at=datetime.combine(day, time(0), tzinfo=UTC))
    audit_record(
        actor=actor, action=f"alert.{kind}", object_type="Alert", object_id=alert.id, after={"message": message}
    )
    return alert


def cover1_check(*, now: datetime, actor: str) -> Alert | None:
    """Every minute: alert when the fund's available balance no longer covers
    the largest loss-if-default (cover-1). Once per breach: no new alert while
    one is still open; a breach after an acknowledged one alerts again."""
    available = reserve_available_hkd()
    cover = cover1(as_of=now, available=available)
    if cover["cover1_covered"]:
        return None
    with transaction.atomic():
        if Alert.objects.select_for_update().filter(kind="cover1_shortfall", status=Alert.Status.OPEN).exists():
            return None
        largest = cover["largest_loss_if_default_hkd"]
        if cover["cover1_unvalued"]:
            message = f"cover-1 cannot be measured: no mark for what {', '.join(cover['cover1_unvalued'])} owes"
        else:
            message = (
                f"the reserve fund's available {available} HKD does not cover the {largest} HKD loss if "
                f"{cover['largest_loss_operator']} defaulted now (cover-1 ratio {cover['cover1_ratio']})"
            )
        alert = alert_raise(
            kind="cover1_shortfall",
            message=message,
            details={
                "available_hkd": format(available, "f"),
                "largest_loss_if_default_hkd": format(largest, "f"),
                "operator": cover["largest_loss_operator"],
                "unvalued": cover["cover1_unvalued"],
            },
            operator_code=cover["largest_loss_operator"] or "",
            at=now,
        )
        audit_record(
            actor=actor,
            action="alert.cover1_shortfall",
            object_type="Alert",
            object_id=alert.id,
            at=now,
            after={"message": message},
        )
        return alert
