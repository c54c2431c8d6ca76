"""Observe the watched states, make one notification per change, and queue
its deliveries."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from controls.models import Alert
from controls.money import display
from controls.services.audit import audit_record
from custody.models import Break
from reserves.models import Claim, Default
from settlement.models import Batch, Leg
from settlement.selectors.exposure import exposure_get

from ...models import EventKind, Notification, NotificationDelivery, Subscription, WatchedState

# The alerts of the lower layers that are themselves one change each. Issue
# 12's dispute and issue 13's cover-1 check raise the two marked kinds; they
# reach subscribers as soon as their emitters raise them under these names.
ALERT_KINDS: dict[str, str] = {
    "prefunding_cover_breach": EventKind.COVER_BREACH,
    "prefunding_attestation_stale": EventKind.ATTESTATION_STALE,
    "failed_batch_with_movements": EventKind.BATCH_FAILED,
    "batch_disputed": EventKind.BATCH_DISPUTED,
    "home_leg_late": EventKind.BATCH_FAILED,  # home's own leg failed its batch
    "cover1_shortfall": EventKind.FUND_BELOW_COVER,  # the fund no longer covers the largest loss-if-default
    "default_review": EventKind.DEFAULT,
    "claims_shortfall": EventKind.CLAIM_PAID,
}
ALERTS_WATERMARK = "alerts:last_id"
# one scan at a time: two concurrent scans must not both see the same change
SCAN_LOCK = 0x6E6F7469  # "noti"


@dataclass(slots=True)
class Observation:
    kind: str
    key: str
    state: str
    title: str
    baseline: str = ""  # the state a thing is in before it was ever seen: no notification for it
    operator_code: str = ""
    details: dict = field(default_factory=dict)


def _hkd(amount) -> str:
    return display(amount, settings.HKD_SCALE)


def _exposure(now: datetime) -> list[Observation]:
    exposure = exposure_get(as_of=now)
    used = f"{exposure.utilisation * 100:.1f} %" if exposure.utilisation is not None else "n/a"
    found = [
        Observation(
            kind=EventKind.EXPOSURE_STATE,
            key="exposure",
            state=exposure.state,
            baseline="normal",
            title=(
                f"exposure {exposure.state}: {_hkd(exposure.total_hkd)} HKD of an effective cap of "
                f"{_hkd(exposure.effective_cap_hkd)} HKD ({used})"
                + (f"; {'; '.join(exposure.reasons)}" if exposure.reasons else "")
            ),
            details={
                "state": exposure.state,
                "reasons": exposure.reasons,
                "total_hkd": format(exposure.total_hkd, "f"),
                "effective_cap_hkd": format(exposure.effective_cap_hkd, "f"),
                "utilisation": format(exposure.utilisation, "f") if exposure.utilisation is not None else None,
            },
        )
    ]
    for c in exposure.by_counterparty:
        if c.limit_hkd is None:
            continue
        over = c.exposure_hkd > c.limit_hkd
        found.append(
            Observation(
                kind=EventKind.EXPOSURE_STATE,
                key=f"exposure:limit:{c.operator}",
                state="over_limit" if over else "within_limit",
                baseline="within_limit",
                operator_code=c.operator,
                title=(
                    f"{c.operator} {'over' if over else 'back within'} its limit: {_hkd(c.exposure_hkd)} HKD "
                    f"against {_hkd(c.limit_hkd)} HKD"
                ),
                details={
                    "operator": c.operator,
                    "exposure_hkd": format(c.exposure_hkd, "f"),
                    "limit_hkd": format(c.limit_hkd, "f"),
                },
            )
        )
    return found


def _batches(now: datetime) -> list[Observation]:
    since = now - timedelta(hours=settings.NOTIFY_LOOKBACK_HOURS)
    failed = Batch.objects.filter(status=Batch.Status.FAILED, failed_at__gte=since).select_related(
        "counterparty", "cycle"
    )
    return [
        Observation(
            kind=EventKind.BATCH_FAILED,
            key=f"batch:{b.id}",
            state="failed",
            operator_code=b.counterparty.code,
            title=f"batch {b.id} with {b.counterparty.code} ({b.cycle.kind} cycle) failed: {b.fail_reason or 'deadline missed'}",
            details={"batch": b.id, "counterparty": b.counterparty.code, "reason": b.fail_reason},
        )
        for b in failed
    ]


def _deadlines(now: datetime) -> list[Observation]:
    """One per batch with open legs due soon, naming the first of them."""
    soon = (
        Leg.objects.filter(
            status__in=Leg.OPEN_STATUSES,
            batch__status=Batch.Status.OPEN,
            deadline__gt=now,
            deadline__lte=now + timedelta(minutes=settings.NOTIFY_DEADLINE_MINUTES),
        )
        .select_related("asset", "batch__counterparty")
        .order_by("batch_id", "deadline", "id")
    )
    by_batch: dict[int, list[Leg]] = {}
    for leg in soon:
        by_batch.setdefault(leg.batch_id, []).append(leg)
    found = []
    for batch_id, legs in by_batch.items():
        first = legs[0]
        counterparty = first.batch.counterparty.code
        minutes = max(1, int((first.deadline - now).total_seconds() // 60))
        found.append(
            Observation(
                kind=EventKind.DEADLINE_NEAR,
                key=f"deadline:batch:{batch_id}",
                state="near",
                operator_code=counterparty,
                title=(
                    f"batch {batch_id} with {counterparty}: {len(legs)} open leg(s) due within {minutes} min, first "
                    f"the {first.direction} leg of {display(first.amount, first.asset.scale)} {first.asset.code} "
                    f"({first.status})"
                ),
                details={
                    "batch": batch_id,
                    "legs": [
                        {"leg": leg.id, "deadline": leg.deadline.isoformat(), "status": leg.status} for leg in legs
                    ],
                },
            )
        )
    return found


def _breaks(now: datetime) -> list[Observation]:
    hours = settings.NOTIFY_BREAK_AGE_HOURS
    aged = Break.objects.filter(status__in=Break.UNRESOLVED, opened_at__lte=now - timedelta(hours=hours))
    return [
        Observation(
            kind=EventKind.BREAK_AGED,
            key=f"break:{b.id}",
            state="aged",
            operator_code=b.counterparty.code if b.counterparty is not None else "",
            title=f"break {b.id} ({b.get_kind_display()}) unresolved for over {hours} h: {b.description[:120]}",
            details={"break": b.id, "kind": b.kind, "opened_at": b.opened_at.isoformat(), "owner": b.owner},
        )
        for b in aged.select_related("counterparty")
    ]


def _defaults_and_claims(now: datetime) -> list[Observation]:
    since = now - timedelta(hours=settings.NOTIFY_LOOKBACK_HOURS)
    found = [
        Observation(
            kind=EventKind.DEFAULT,
            key=f"default:{d.id}",
            state="declared",
            operator_code=d.operator.code,
            title=f"{d.operator.code} declared in default: {d.obligations_closed_out} obligation(s) closed out, "
            f"loss {_hkd(d.total_loss_hkd)} HKD",
            details={"operator": d.operator.code, "reason": d.reason, "total_loss_hkd": format(d.total_loss_hkd, "f")},
        )
        for d in Default.objects.filter(created_at__gte=since).select_related("operator")
    ]
    found += [
        Observation(
            kind=EventKind.CLAIM_PAID,
            key=f"claim:{c.id}",
            state="paid",
            operator_code=c.counterparty.code,
            title=f"claim {c.id} of client {c.account_ref} paid {_hkd(c.paid_hkd)} of {_hkd(c.loss_hkd)} HKD",
            details={"claim": c.id, "paid_hkd": format(c.paid_hkd, "f"), "shortfall_hkd": format(c.shortfall_hkd, "f")},
        )
        for c in Claim.objects.filter(status=Claim.Status.PAID, paid_at__gte=since).select_related("counterparty")
    ]
    return found


def _alerts(watermark: WatchedState | None) -> tuple[list[Observation], int | None]:
    """New alerts of the kinds above, each one change. On the very first scan
    the alerts already raised are history: only later ones are told."""
    if watermark is None:
        return [], Alert.objects.order_by("-id").values_list("id", flat=True).first() or 0
    last = int(watermark.state)
    new = list(Alert.objects.filter(id__gt=last).order_by("id"))
    found = [
        Observation(
            kind=ALERT_KINDS[a.kind],
            key=f"alert:{a.id}",
            state="raised",
            operator_code=a.operator_code,
            title=a.message[:200],
            details={"alert": a.id, "alert_kind": a.kind, **(a.details if isinstance(a.details, dict) else {})},
        )
        for a in new
        if a.kind in ALERT_KINDS
    ]
    return found, (new[-1].id if new else None)


def deliveries_pending(notifications: list[Notification]) -> list[int]:
    """The deliveries still to send of these notifications: the caller (a
    task, a view) queues them once the transaction that made them committed."""
    return list(
        NotificationDelivery.objects.filter(
            notification__in=notifications, status=NotificationDelivery.Status.PENDING
        ).values_list("id", flat=True)
    )


def _notify(observation: Observation, *, previous: str, now: datetime, actor: str) -> Notification:
    notification = Notification.objects.create(
        kind=observation.kind,
        key=observation.key,
        state=observation.state,
        previous=previous,
        title=observation.title[:200],
        details=observation.details,
        operator_code=observation.operator_code,
        at=now,
    )
    subscribers = Subscription.objects.filter(active=True, kinds__contains=[observation.kind])
    deliveries = NotificationDelivery.objects.bulk_create(
        [NotificationDelivery(notification=notification, subscription=s, created_at=now) for s in subscribers]
    )
    audit_record(
        actor=actor,
        action="notification.raised",
        object_type="Notification",
        object_id=notification.id,
        before={"state": previous} if previous else None,
        after={
            "kind": notification.kind,
            "key": notification.key,
            "state": notification.state,
            "subscribers": [d.subscription_id for d in deliveries],
        },
        at=now,
    )
    return notification


def notifications_scan(*, now: datetime, actor: str) -> list[Notification]:
    """One pass over everything watched; returns the notifications made
    (their deliveries are queued by the caller: ``deliveries_pending``)."""
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SCAN_LOCK])
        watermark = WatchedState.objects.filter(key=ALERTS_WATERMARK).first()
        from_alerts, last_alert = _alerts(watermark)
        observations = (
            _exposure(now) + _batches(now) + _deadlines(now) + _breaks(now) + _defaults_and_claims(now) + from_alerts
        )
        seen = {w.key: w for w in WatchedState.objects.filter(key__in=[o.key for o in observations])}
        made = []
        for observation in observations:
            known = seen.get(observation.key)
            previous = known.state if known else observation.baseline
            if previous == observation.state:
                continue  # unchanged (or still in the state it starts in): nothing to tell
            if known is None:
                WatchedState.objects.create(key=observation.key, state=observation.state, changed_at=now)
            else:
                WatchedState.objects.filter(pk=known.pk).update(state=observation.state, changed_at=now)
            made.append(_notify(observation, previous=previous, now=now, actor=actor))
        if last_alert is not None:
            WatchedState.objects.update_or_create(
                key=ALERTS_WATERMARK, defaults={"state": str(last_alert), "changed_at": now}
            )
        return made


def notification_sample(*, subscription: Subscription, actor: str, now: datetime) -> NotificationDelivery:
    """A sample notification to one subscriber, to test its receiver."""
    with transaction.atomic():
        notification = Notification.objects.create(
            kind=EventKind.SAMPLE,
            key=f"sample:{subscription.id}",
            state="sample",
            title=f"sample notification for {subscription.name}, sent by {actor}",
            details={"sample": True, "subscription": subscription.name},
            at=now,
        )
        delivery = NotificationDelivery.objects.create(
            notification=notification, subscription=subscription, created_at=now
        )
        audit_record(
            actor=actor,
            action="notification.sample",
            object_type="Subscription",
            object_id=subscription.id,
            after={"notification": notification.id, "delivery": delivery.id},
            at=now,
        )
    return delivery
