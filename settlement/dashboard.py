"""The operations dashboard at /ops/: one page, read-only, staff only."""

from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db.models import Count
from django.shortcuts import render
from django.utils import timezone

from .models import Alert, Asset, ComplianceException, CycleRequest, TradeException, TradeIngest
from .selectors import HKD, exposure_get


def _pct(part: Decimal, whole: Decimal) -> float:
    # a bar width for the picture, not money
    return 0.0 if not whole else min(100.0, round(float(part / whole * 100), 1))


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
        "thresholds": {k: float(v) * 100 for k, v in exposure.thresholds.items()},
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
        "alerts": Alert.objects.filter(status="open")[:10],
        "cycle_requests": CycleRequest.objects.filter(status="pending")[:10],
        "ingests": TradeIngest.objects.all()[:10],
    }
    return render(request, "ops/dashboard.html", context)
