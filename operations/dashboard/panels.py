"""What the dashboard shows, as plain data: the state banner, the charts'
series and the tables. The views render these; the page's script redraws
the charts from ``charts()`` and swaps the tables from ``tables()`` without
a reload.

Adding a panel: a function here that returns its data (or None when there
is nothing to show yet), one entry in ``charts()`` or ``tables()``, and its
markup in ``templates/ops/`` (a chart: a ``<canvas data-chart="NAME">`` and
a drawing function in ``static/ops/dashboard.js``).
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Count, Sum
from django.utils import timezone

from controls.models import Alert, ApprovalRequest
from controls.money import display
from controls.services.approvals import approval_describe
from custody.selectors import AGE_BUCKETS, breaks_by_age
from registry.models import Asset
from registry.selectors import HKD
from reserves.models import Claim, ExposureSnapshot
from reserves.selectors import reserve_balance_hkd, trust_account_status
from reserves.services.losses import cover1
from settlement.models import (
    Batch,
    ComplianceException,
    CounterpartyExclusion,
    CycleRequest,
    TradeException,
    TradeIngest,
)
from settlement.selectors.exposure import Exposure, exposure_get
from settlement.selectors.prefunding import attestation_max_age, cover_compute

HK = ZoneInfo("Asia/Hong_Kong")
# The through-the-day chart's exposure series, from the snapshots and the
# live figure: with haircuts (what the cap checks) and at plain marks.
EXPOSURE_SERIES = (("total_hkd", "exposure with haircuts"), ("total_at_marks_hkd", "exposure at marks"))


def hkd(amount: Decimal | None) -> str:
    return display(amount, settings.HKD_SCALE)


def ms(at: datetime) -> int:
    """A time for the charts: milliseconds since the epoch (the page shows it in HKT)."""
    return int(at.timestamp() * 1000)


def age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 3 * 86400:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} days"


# --- the state banner ---------------------------------------------------------------------------


def banner(exposure: Exposure) -> dict:
    used = exposure.utilisation
    return {
        "state": exposure.state,
        "total": hkd(exposure.total_hkd),
        "effective_cap": hkd(exposure.effective_cap_hkd),
        "cap": hkd(exposure.cap_hkd),
        "reserve_available": hkd(exposure.reserve_available_hkd),
        "utilisation": f"{used * 100:.1f} %" if used is not None else "n/a",
        "reasons": list(exposure.reasons),
        "headline": {
            "normal": "Exposure within its thresholds",
            "warning": "Exposure past the warning threshold",
            "settling": "Intraday settlement triggered",
            "halted": "Halted: new cross-operator matching is denied",
        }.get(exposure.state, exposure.state),
    }


# --- charts -------------------------------------------------------------------------------------


def through_the_day(exposure: Exposure, now: datetime) -> dict:
    """Today's (Hong Kong) snapshots and the live figure, with the effective
    cap and the thresholds as lines: the x axis runs from the first sample to now."""
    midnight = now.astimezone(HK).replace(hour=0, minute=0, second=0, microsecond=0)
    fields = {f.name for f in ExposureSnapshot._meta.get_fields()}
    series = [(name, label) for name, label in EXPOSURE_SERIES if name in fields or name == "total_hkd"]
    rows = list(
        ExposureSnapshot.objects.filter(at__gte=midnight, at__lte=now)
        .order_by("at")
        .values("at", "effective_cap_hkd", *[name for name, _ in series])
    )
    live = {"at": now, "effective_cap_hkd": exposure.effective_cap_hkd}
    for name, _ in series:
        live[name] = getattr(exposure, name, None)
    rows.append(live)
    thresholds = exposure.thresholds

    def line(value_of) -> list[dict]:
        return [{"x": ms(r["at"]), "y": float(v)} for r in rows if (v := value_of(r)) is not None]

    datasets = [
        {"key": name, "label": label, "data": line(lambda r, n=name: r.get(n))}
        for name, label in series
        if any(r.get(name) is not None for r in rows)
    ]
    datasets.append({"key": "cap", "label": "effective cap", "data": line(lambda r: r["effective_cap_hkd"])})
    for key, label in (("warn_at", "warning"), ("settle_at", "settle"), ("halt_at", "halt")):
        share = thresholds.get(key)
        if share is not None:
            datasets.append(
                {
                    "key": key,
                    "label": f"{label} at {share * 100:.0f} %",
                    "data": line(lambda r, s=share: r["effective_cap_hkd"] * s),
                }
            )
    first = rows[0]["at"]
    return {
        "start": ms(min(first, now - timedelta(minutes=30))),
        "end": ms(now + timedelta(minutes=2)),
        "samples": len(rows),
        "peak": hkd(max(r["total_hkd"] or Decimal(0) for r in rows)),
        "datasets": datasets,
    }


def by_counterparty(exposure: Exposure) -> dict:
    rows = exposure.by_counterparty
    return {
        "labels": [c.operator for c in rows],
        "exposure": [float(c.exposure_hkd) for c in rows],
        "limit": [float(c.limit_hkd) if c.limit_hkd is not None else None for c in rows],
        "over": [c.limit_hkd is not None and c.exposure_hkd > c.limit_hkd for c in rows],
    }


def fails_and_breaks(now: datetime) -> dict:
    breaks = breaks_by_age(now=now)
    ages = [
        now - at
        for at in Batch.objects.filter(status=Batch.Status.FAILED, failed_at__gte=now - timedelta(days=7)).values_list(
            "failed_at", flat=True
        )
        if at is not None
    ]
    fails = [sum(1 for a in ages if a >= low and (high is None or a < high)) for _, low, high in AGE_BUCKETS]
    return {
        "labels": [b["label"] for b in breaks],
        "breaks": [b["total"] for b in breaks],
        "fails": fails,
        "total": sum(b["total"] for b in breaks) + sum(fails),
    }


def reserve(exposure: Exposure, now: datetime) -> dict:
    balance = reserve_balance_hkd()
    figures: list[tuple[str, Decimal | None]] = [
        ("fund balance", balance),
        ("available", exposure.reserve_available_hkd),
        ("cap", exposure.cap_hkd),
    ]
    # cover-1: the largest loss home's clients would suffer if one
    # counterparty defaulted now, at stressed marks, against the fund
    cover = cover1(as_of=now, available=exposure.reserve_available_hkd)
    figures.append(("cover-1 (largest loss)", cover["largest_loss_if_default_hkd"]))
    shown = [(label, value) for label, value in figures if value is not None]
    return {
        "labels": [label for label, _ in shown],
        "values": [float(value) for _, value in shown],
        "shown": [hkd(value) for _, value in shown],
        "balance": hkd(balance),
        "coverage": f"{balance / exposure.cap_hkd:.2f}x" if exposure.cap_hkd else "n/a",
        "cover1": cover,
        # the fund's trust account against its bank statements (circular para 17)
        "trust": trust_account_status(),
    }


def cover(now: datetime) -> list[dict]:
    """Prefunding cover per operator and asset (para 10)."""
    rows = []
    for c in cover_compute(as_of=now):
        seconds = int((now - c.attested_at).total_seconds()) if c.attested_at else None
        used = (c.required / c.attested * 100) if c.attested else None
        rows.append(
            {
                "label": f"{c.operator} {c.asset}",
                "operator": c.operator,
                "asset": c.asset,
                "state": c.state,
                "reason": c.reason,
                "attested": display(c.attested, c.scale) if c.attested is not None else None,
                "required": display(c.required, c.scale),
                "headroom": display(c.headroom, c.scale) if c.headroom is not None else None,
                "short": c.headroom is not None and c.headroom < 0,
                "age": age(seconds) if seconds is not None else None,
                "max_age": age(int(attestation_max_age(c.rail_kind).total_seconds())),
                "used": float(min(used, Decimal(200))) if used is not None else 100.0,
            }
        )
    return rows


def charts(now: datetime | None = None) -> dict:
    """Everything the page's charts and banner need, as JSON."""
    now = now or timezone.now()
    exposure = exposure_get(as_of=now)
    covers = cover(now)
    return {
        "as_of": now.isoformat(),
        "banner": banner(exposure),
        "day": through_the_day(exposure, now),
        "counterparties": by_counterparty(exposure),
        "ages": fails_and_breaks(now),
        "reserve": reserve(exposure, now),
        "cover": {
            "labels": [c["label"] for c in covers],
            "used": [c["used"] for c in covers],
            "bad": [c["state"] != "covered" for c in covers],
        },
    }


# --- tables -------------------------------------------------------------------------------------


def approvals_pending() -> list[dict]:
    pending = (
        ApprovalRequest.objects.filter(status=ApprovalRequest.Status.PENDING)
        .select_related("requested_by")
        .prefetch_related("changes")
        .order_by("requested_at")[:20]
    )
    return [
        {
            "id": a.id,
            "kind": a.get_kind_display(),
            "what": approval_describe(a),
            "by": a.requested_by.username,
            "at": a.requested_at,
        }
        for a in pending
    ]


def tables(now: datetime | None = None) -> dict:
    now = now or timezone.now()
    exposure = exposure_get(as_of=now)
    stale_before = now - timedelta(seconds=settings.MARK_STALE_AFTER_SECONDS)
    ages = breaks_by_age(now=now)
    return {
        "now": now,
        "banner": banner(exposure),
        "counterparties": [
            {
                "code": c.operator,
                "exposure": hkd(c.exposure_hkd),
                "limit": hkd(c.limit_hkd) if c.limit_hkd is not None else "none",
                "over": c.limit_hkd is not None and c.exposure_hkd > c.limit_hkd,
                "share_of_limit": f"{c.exposure_hkd / c.limit_hkd * 100:.0f} %" if c.limit_hkd else "",
                "open": c.open_obligations,
                "eligible": c.eligible,
            }
            for c in exposure.by_counterparty
        ],
        "approvals": approvals_pending(),
        "marks": [
            {
                "code": a.code,
                "price": Decimal(1) if a.code == HKD else a.mark_hkd,
                "as_of": a.mark_as_of,
                "stale": a.code != HKD and (a.mark_as_of is None or a.mark_as_of < stale_before),
            }
            for a in Asset.objects.order_by("code")
        ],
        "trade_exceptions": TradeException.objects.filter(status="open")
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n"),
        "compliance": ComplianceException.objects.filter(status="open")
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n"),
        "alerts": Alert.objects.filter(status="open")[:10],
        "alerts_open": Alert.objects.filter(status="open").count(),
        "cycle_requests": CycleRequest.objects.filter(status="pending")[:5],
        "ingests": TradeIngest.objects.all()[:8],
        "batches": Batch.objects.select_related("cycle", "counterparty")
        .prefetch_related("legs__asset")
        .order_by("-id")[:10],
        "fails": Batch.objects.filter(status=Batch.Status.FAILED).count(),
        "held": Batch.objects.filter(status=Batch.Status.OPEN, held_at__isnull=False)
        .select_related("counterparty")
        .order_by("held_at")[:20],
        "exclusions": CounterpartyExclusion.objects.filter(status=CounterpartyExclusion.Status.ACTIVE)
        .select_related("operator")
        .order_by("created_at"),
        "breaks_by_age": ages,
        "breaks_open": sum(b["total"] for b in ages),
        "cover": cover(now),
        "reserve": reserve(exposure, now),
        "claims": list(
            Claim.objects.values("status")
            .annotate(n=Count("id"), loss=Sum("loss_hkd"), shortfall=Sum("shortfall_hkd"))
            .order_by("status")
        ),
    }
