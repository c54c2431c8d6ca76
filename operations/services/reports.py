"""The daily settlement report (circular para 14: settle all trades with each
overseas operator at least once a day).

It lists every obligation that, at the end-of-day cut-off of ``day``, is
older than 24 hours and still unsettled. Each is either a **breach** or
**deferred**: deferred when a closed rail explains it (its trade could not
be settled until less than 24 hours before the cut-off: holidays, weekends,
cut-offs) or when one of its rails is degraded or halted now. A batch
operations hold, or a counterparty they exclude, is shown with its reason
but excuses nothing: such an obligation is still a breach.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings

from controls.models import Alert
from controls.money import as_str, at_scale
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from registry import calendars
from registry.models import Rail
from settlement.models import Batch, CounterpartyExclusion, Obligation

HK = ZoneInfo("Asia/Hong_Kong")


def eod_cutoff(day: date) -> datetime:
    hour, minute = (int(part) for part in settings.EOD_CUTOFF_HKT.split(":"))
    return datetime.combine(day, time(hour, minute), tzinfo=HK)


def first_settleable(rails: tuple[Rail, ...], executed_at: datetime) -> datetime:
    """The first moment at or after execution when every rail of the trade is open."""
    moment = executed_at
    for _ in range(400):
        moved = max(calendars.next_open(rail, moment) for rail in rails)
        if moved == moment and calendars.trade_takeable(rails, moment):
            return moment
        moment = moved if moved > moment else moment + timedelta(minutes=1)
    raise ValueError("no moment within a year when all rails are open")


def settlement_report(*, day: date) -> dict:
    cutoff = eod_cutoff(day)
    limit = cutoff - timedelta(hours=24)
    rails = {r.id: r for r in Rail.objects.all()}
    rows = (
        Obligation.objects.unsettled()
        .filter(trade__executed_at__lte=limit)
        .select_related("trade", "counterparty", "asset", "trade__base_asset", "trade__quote_asset")
        .order_by("trade__executed_at", "id")
    )

    @lru_cache(maxsize=4096)
    def settleable(rail_ids: tuple[int, ...], executed_at: datetime) -> datetime:
        return first_settleable(tuple(rails[i] for i in rail_ids), executed_at)

    # operations' holds and exclusions explain an obligation but never excuse
    # it: it stays a breach unless a rail defers it
    held = {
        b.id: b
        for b in Batch.objects.filter(status=Batch.Status.OPEN, held_at__isnull=False).select_related("counterparty")
    }
    excluded = {
        x.operator_id: x
        for x in CounterpartyExclusion.objects.filter(status=CounterpartyExclusion.Status.ACTIVE).select_related(
            "operator"
        )
    }
    breaches, deferred = [], []
    for o in rows:
        rail_ids = tuple(sorted({o.trade.base_asset.rail_id, o.trade.quote_asset.rail_id}))
        line = {
            "obligation_id": o.id,
            "trade_id": o.trade.trade_id,
            "counterparty": o.counterparty.code,
            "asset": o.asset.code,
            "direction": o.direction,
            "amount": as_str(at_scale(o.amount, o.asset.scale)),
            "status": o.status,
            "executed_at": o.trade.executed_at.isoformat(),
            "age_hours": round((cutoff - o.trade.executed_at).total_seconds() / 3600, 1),
            "fail_count": o.fail_count,
        }
        controls = []
        if o.batch_id in held:
            controls.append(f"batch {o.batch_id} held: {held[o.batch_id].hold_reason}")
        if o.counterparty_id in excluded:
            controls.append(f"{o.counterparty.code} excluded: {excluded[o.counterparty_id].reason}")
        if controls:
            line["held_or_excluded"] = "; ".join(controls)
        down = [rails[i] for i in rail_ids if rails[i].status != Rail.Status.UP]
        if down:
            line["reason"] = "; ".join(f"rail {r.code} is {r.status}: {r.status_reason}" for r in down)
            deferred.append(line)
            continue
        start = settleable(rail_ids, o.trade.executed_at)
        if start > limit:
            line["reason"] = (
                f"rails first open together at {start.astimezone(HK).isoformat()}, under 24 h before the cut-off"
            )
            deferred.append(line)
            continue
        breaches.append(line)
    return {
        "date": day.isoformat(),
        "cutoff": cutoff.isoformat(),
        "breaches": breaches,
        "deferred": deferred,
        "counts": {"breaches": len(breaches), "deferred": len(deferred)},
        "held_batches": [
            {
                "batch": b.id,
                "counterparty": b.counterparty.code,
                "held_at": b.held_at.isoformat() if b.held_at else None,
                "held_by": b.held_by,
                "reason": b.hold_reason,
            }
            for b in held.values()
        ],
        "excluded_counterparties": [
            {
                "counterparty": x.operator.code,
                "since": x.created_at.isoformat(),
                "by": x.created_by,
                "reason": x.reason,
            }
            for x in excluded.values()
        ],
    }


def settlement_report_alert(*, report: dict, actor: str) -> Alert | None:
    """Raise one alert per day that has breaches (idempotent per day)."""
    if not report["breaches"]:
        return None
    kind = "daily_settlement_breach"
    existing = Alert.objects.filter(kind=kind, details__date=report["date"]).first()
    if existing:
        return existing
    by_counterparty: dict[str, int] = {}
    for line in report["breaches"]:
        by_counterparty[line["counterparty"]] = by_counterparty.get(line["counterparty"], 0) + 1
    alert = alert_raise(
        kind=kind,
        message=f"{len(report['breaches'])} obligation(s) unsettled over 24 h at the {report['date']} cut-off",
        details={
            "date": report["date"],
            "by_counterparty": by_counterparty,
            "trade_ids": sorted({b["trade_id"] for b in report["breaches"]}),
        },
        at=datetime.fromisoformat(report["cutoff"]),
    )
    audit_record(
        actor=actor,
        action="alert.daily_settlement_breach",
        object_type="Alert",
        object_id=alert.id,
        after=alert.details,
    )
    return alert
