"""The reserve sizing report (circular para 17: a fund not less than the cap,
adjusted to expected exposure). It shows its method, not only its number."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Avg, Max, Sum
from django.db.models.functions import TruncDate

from registry import calendars
from registry.models import Asset, Rail
from registry.selectors import HKD
from settlement.models import CapConfig, Obligation

from .models import Claim, ExposureSnapshot
from .selectors import reserve_available_hkd, reserve_balance_hkd, trust_account_status
from .services.losses import cover1

HK = ZoneInfo("Asia/Hong_Kong")
HEADROOM = Decimal("1.25")  # recommended cap = 1.25 x the 99th percentile daily peak
ROUND_TO = Decimal(1_000_000)


def _percentile(values: list[Decimal], pct: int) -> Decimal | None:
    """Nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[rank - 1]


def _round_up(value: Decimal) -> Decimal:
    return ((value / ROUND_TO).to_integral_value(rounding=ROUND_CEILING) * ROUND_TO).quantize(Decimal("0.01"))


def _window(as_of: datetime, days: int) -> dict:
    since = as_of - timedelta(days=days)
    snapshots = ExposureSnapshot.objects.filter(at__gt=since, at__lte=as_of)
    peaks = list(
        snapshots.annotate(day=TruncDate("at", tzinfo=HK))
        .values("day")
        .annotate(peak=Max("total_hkd"))
        .order_by("day")
        .values_list("day", "peak")
    )
    values = [peak for _, peak in peaks]
    return {
        "days_with_data": len(values),
        "peak_hkd": max(values) if values else None,
        "p99_daily_peak_hkd": _percentile(values, 99),
        "mean_utilisation": snapshots.aggregate(u=Avg("utilisation"))["u"],
        "daily_peaks": [{"date": d.isoformat(), "peak_hkd": p} for d, p in peaks[-14:]],
    }


def _daily_inflow_hkd(as_of: datetime, days: int = 30) -> Decimal:
    """Average value per day of new receivables (what counterparties came to
    owe home), at current marks: the rate at which exposure builds up."""
    rows = (
        Obligation.objects.filter(
            direction=Obligation.Direction.INBOUND, created_at__gt=as_of - timedelta(days=days), created_at__lte=as_of
        )
        .values("asset_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    marks = {a.id: (Decimal(1) if a.code == HKD else a.mark_hkd) for a in Asset.objects.all()}
    total = sum(((r["total"] or Decimal(0)) * (marks.get(r["asset_id"]) or Decimal(0)) for r in rows), Decimal(0))
    return (total / days).quantize(Decimal("0.01"))


def reserve_report(*, as_of: datetime) -> dict:
    cap = CapConfig.objects.first()
    cap_hkd = cap.total_hkd if cap else Decimal("0.00")
    balance, available = reserve_balance_hkd(), reserve_available_hkd()
    cover = cover1(as_of=as_of, available=available)
    recent, longer = _window(as_of, 30), _window(as_of, 90)
    inflow = _daily_inflow_hkd(as_of)
    today = as_of.astimezone(HK).date()
    closures: list[dict[str, Any]] = []
    for rail in Rail.objects.filter(kind=Rail.Kind.BANK).order_by("code"):
        stretches = calendars.closures(rail, today, today + timedelta(days=365))
        if not stretches:
            continue
        longest = max(stretches, key=lambda s: ((s[1] - s[0]).days, -s[0].toordinal()))
        days = (longest[1] - longest[0]).days + 1
        closures.append(
            {
                "rail": rail.code,
                "longest_from": longest[0].isoformat(),
                "longest_to": longest[1].isoformat(),
                "days": days,
                # trades keep arriving while the rail is shut and cannot settle until it opens
                "build_up_hkd": (inflow * (days + 1)).quantize(Decimal("0.01")),
                "next_from": stretches[0][0].isoformat(),
                "next_to": stretches[0][1].isoformat(),
            }
        )
    p99 = longer["p99_daily_peak_hkd"]
    candidates = {"current cap": cap_hkd}
    method = [f"the configured cap is {cap_hkd} HKD; the fund may never be less than the cap (para 17)"]
    if p99 is not None:
        candidates[f"{HEADROOM} x 99th percentile daily peak (90 days)"] = p99 * HEADROOM
        method.append(
            f"99th percentile of {longer['days_with_data']} daily exposure peaks over 90 days is {p99} HKD; x{HEADROOM} headroom = {(p99 * HEADROOM).quantize(Decimal('0.01'))} HKD"
        )
        candidates["highest daily peak (90 days)"] = longer["peak_hkd"]
    else:
        method.append(
            "no exposure history yet (snapshots are taken every minute): sizing rests on the cap and closures"
        )
    if closures:
        worst = max(closures, key=lambda c: c["build_up_hkd"])
        candidates[f"build-up over the longest {worst['rail']} closure"] = worst["build_up_hkd"]
        method.append(
            f"receivables arrive at {inflow} HKD a day (30-day average); the longest {worst['rail']} closure ({worst['longest_from']} to "
            f"{worst['longest_to']}, {worst['days']} days) could build {worst['build_up_hkd']} HKD before the rail reopens"
        )
    driver = max(candidates, key=lambda k: candidates[k])
    recommended_cap = _round_up(max(candidates.values())) if max(candidates.values()) > 0 else Decimal("0.00")
    method.append(
        f"recommended cap = the largest of these ({driver}), rounded up to {ROUND_TO:,.0f} HKD = {recommended_cap} HKD"
    )
    largest = cover["largest_loss_if_default_hkd"]
    # cover-1: what the fund has available must pay the largest default; approved claims come first
    cover1_fund = _round_up(largest + (balance - available)) if largest > 0 else Decimal("0.00")
    if largest > 0:
        method.append(
            f"cover-1: if {cover['largest_loss_operator']} defaulted now its clients would lose {largest} HKD at "
            f"stressed marks (mark x (1 + haircut)); with {balance - available} HKD of approved claims unpaid, a fund "
            f"covering it holds {cover1_fund} HKD (rounded up)"
        )
    recommended_fund = max(recommended_cap, cap_hkd, cover1_fund)
    method.append(
        f"recommended fund = max(recommended cap, configured cap, cover-1) = {recommended_fund} HKD; "
        f"the fund holds {balance} HKD"
    )
    unpaid = Claim.objects.aggregate(t=Sum("shortfall_hkd"))["t"] or Decimal("0.00")
    return {
        "as_of": as_of.isoformat(),
        "balance_hkd": balance,
        "available_hkd": available,
        "cap_hkd": cap_hkd,
        "effective_cap_hkd": max(min(cap_hkd, available), Decimal(0)),
        "coverage_ratio": (balance / cap_hkd).quantize(Decimal("0.0001")) if cap_hkd else None,
        "recommended_hkd": recommended_fund,
        "recommended_cap_hkd": recommended_cap,
        "claims_shortfall_hkd": unpaid,
        **cover,
        "last_30_days": recent,
        "last_90_days": longer,
        "daily_inflow_hkd": inflow,
        "closures": closures,
        "method": method,
        "trust_account": trust_account_status(),
    }


def jsonable(value):
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value
