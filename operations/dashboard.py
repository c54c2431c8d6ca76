"""The operations dashboard at /ops/: one page, read-only, staff only."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count, Sum
from django.shortcuts import render
from django.utils import timezone

from controls.models import Alert
from controls.money import display
from custody.selectors import breaks_by_age
from registry.models import Asset
from registry.selectors import HKD
from settlement.models import Batch, ComplianceException, CycleRequest, TradeException, TradeIngest
from settlement.selectors.exposure import exposure_get
from settlement.selectors.prefunding import attestation_max_age, cover_compute


def _pct(part: Decimal, whole: Decimal) -> Decimal:
    """A bar width, 0 to 100."""
    return Decimal(0) if not whole else min(Decimal(100), (part / whole * 100).quantize(Decimal("0.1")))


def _reserve_card(exposure, now) -> dict:
    from reserves.models import Claim
    from reserves.selectors import reserve_balance_hkd, trust_account_status
    from reserves.services.losses import cover1

    balance = reserve_balance_hkd()
    claims = (
        Claim.objects.values("status")
        .annotate(n=Count("id"), loss=Sum("loss_hkd"), shortfall=Sum("shortfall_hkd"))
        .order_by("status")
    )
    return {
        "balance": balance,
        "cap": exposure.cap_hkd,
        "coverage": (balance / exposure.cap_hkd).quantize(Decimal("0.01")) if exposure.cap_hkd else None,
        "claims": list(claims),
        # cover-1: the fund's available balance against the largest loss if one counterparty defaulted now
        "cover1": cover1(as_of=now, available=exposure.reserve_available_hkd),
        # the fund's trust account against its bank statements (circular para 17)
        "trust": trust_account_status(),
    }


def _today_line(now) -> dict | None:
    """Today's (Hong Kong) exposure snapshots as an SVG polyline over 0..100,
    with the effective cap drawn at the top: "through the day"."""
    from zoneinfo import ZoneInfo

    from reserves.models import ExposureSnapshot

    hk = ZoneInfo("Asia/Hong_Kong")
    midnight = now.astimezone(hk).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = list(
        ExposureSnapshot.objects.filter(at__gte=midnight)
        .order_by("at")
        .values_list("at", "total_hkd", "effective_cap_hkd")
    )
    if len(rows) < 2:
        return None
    top = max(max(cap for _, _, cap in rows), max(total for _, total, _ in rows)) or Decimal(1)

    def point(at, value) -> str:
        x = Decimal((at - midnight).total_seconds()) / (24 * 36)  # 0..100 across the day
        return f"{x:.2f},{100 - value / top * 100:.2f}"

    points = " ".join(point(at, total) for at, total, _ in rows)
    caps = " ".join(point(at, cap) for at, _, cap in rows)
    return {"points": points, "caps": caps, "peak": max(total for _, total, _ in rows), "samples": len(rows)}


def _cover_card(now) -> list[dict]:
    """Prefunding cover per operator and asset (para 10): the attested
    balance against what it must cover, with the attestation's age."""
    rows = []
    for cover in cover_compute(as_of=now):
        age = int((now - cover.attested_at).total_seconds()) if cover.attested_at else None
        headroom = cover.headroom
        rows.append(
            {
                "operator": cover.operator,
                "asset": cover.asset,
                "state": cover.state,
                "reason": cover.reason,
                "attested": display(cover.attested, cover.scale) if cover.attested is not None else None,
                "required": display(cover.required, cover.scale),
                "headroom": display(headroom, cover.scale) if headroom is not None else None,
                "short": headroom is not None and headroom < 0,
                "age": _age(age) if age is not None else None,
                "max_age": _age(int(attestation_max_age(cover.rail_kind).total_seconds())),
                "bar": _pct(cover.required, cover.attested) if cover.attested else Decimal(100),
            }
        )
    return rows


def _age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


@staff_member_required
def dashboard(request):
    now = timezone.now()
    exposure = exposure_get(as_of=now)
    cap = exposure.effective_cap_hkd
    counterparties = [
        {
            "code": c.operator,
            "exposure": c.exposure_hkd,
            "limit": c.limit_hkd,
            "open": c.open_obligations,
            "eligible": c.eligible,
            "bar": _pct(c.exposure_hkd, cap),
            "limit_bar": _pct(c.limit_hkd, cap) if c.limit_hkd else None,
        }
        for c in exposure.by_counterparty
    ]
    stale_before = now - timedelta(seconds=settings.MARK_STALE_AFTER_SECONDS)
    marks = [
        {
            "code": a.code,
            "price": Decimal(1) if a.code == HKD else a.mark_hkd,
            "as_of": a.mark_as_of,
            "stale": a.code != HKD and (a.mark_as_of is None or a.mark_as_of < stale_before),
        }
        for a in Asset.objects.order_by("code")
    ]
    context = {
        "now": now,
        "exposure": exposure,
        "utilisation_bar": _pct(exposure.total_hkd, cap),
        "thresholds": {k: v * 100 for k, v in exposure.thresholds.items()},
        "counterparties": counterparties,
        "marks": marks,
        "trade_exceptions": TradeException.objects.filter(status="open")
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n"),
        "compliance": ComplianceException.objects.filter(status="open")
        .values("code")
        .annotate(n=Count("id"))
        .order_by("-n"),
        "alerts": Alert.objects.filter(status="open")[:12],
        "cycle_requests": CycleRequest.objects.filter(status="pending")[:10],
        "ingests": TradeIngest.objects.all()[:10],
        "batches": Batch.objects.select_related("cycle", "counterparty")
        .prefetch_related("legs__asset")
        .order_by("-id")[:12],
        "fails": Batch.objects.filter(status=Batch.Status.FAILED).count(),
        "reserve": _reserve_card(exposure, now),
        "today": _today_line(now),
        "breaks_by_age": breaks_by_age(now=now),
        "cover": _cover_card(now),
    }
    return render(request, "ops/dashboard.html", context)
