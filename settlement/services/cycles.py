"""Netting cycles and delivery-versus-payment (DESIGN section 7).

A cycle at ``as_of`` takes every open obligation whose trade executed at or
before ``as_of`` and whose rails are all open then, makes one batch per
counterparty and nets it per asset into legs. The whole cycle is one
transaction holding the cycle lock: a worker that dies half-way leaves
nothing behind, and running the same (kind, as_of) again returns the cycle
already made. Obligations settle only when their whole batch settles, and
exposure drops in that same transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import BigIntegerField, Case, F, Q, Sum, Value, When

from custody import calendars
from custody.models import Rail, Wallet, WalletBalance
from settlement.aggregates import sums_by_direction
from settlement.exceptions import Conflict, InvalidInput, NotFound
from settlement.models import (
    Alert,
    ApprovalRequest,
    Asset,
    Batch,
    Cycle,
    CycleLock,
    CycleRequest,
    Delivery,
    Leg,
    Obligation,
    Operator,
)
from settlement.money import as_str

from .approvals import actor_of as approval_actor
from .approvals import approval_kind
from .audit import audit_record
from .exposure import positions_release

logger = logging.getLogger(__name__)

OPEN = Obligation.Status.OPEN
IN_BATCH = Obligation.Status.IN_BATCH


# --- running a cycle -----------------------------------------------------------------


def cycle_run(*, kind: str, as_of: datetime, actor: str) -> Cycle:
    if kind not in Cycle.Kind.values:
        raise InvalidInput("invalid_field", f"kind must be one of {', '.join(Cycle.Kind.values)}", field="kind")
    if as_of.utcoffset() is None:
        raise InvalidInput("invalid_timestamp", "as_of must carry a time zone", field="as_of")
    with transaction.atomic():
        _lock_cycles()
        existing = Cycle.objects.filter(kind=kind, as_of=as_of).first()
        if existing is not None:
            return existing
        cycle = Cycle.objects.create(kind=kind, as_of=as_of, requested_by=actor, started_at=as_of)
        audit_record(
            actor=actor,
            action="cycle.started",
            object_type="Cycle",
            object_id=cycle.id,
            after={"kind": kind, "as_of": as_of.isoformat()},
            at=as_of,
        )
        takeable = _takeable(as_of)
        counterparties = Operator.objects.filter(id__in=takeable.values("counterparty_id")).order_by("id")
        batches = [_batch_open(cycle=cycle, counterparty=counterparty) for counterparty in counterparties]
        _take(takeable, batches)
        for batch in batches:
            _batch_create(cycle=cycle, batch=batch, actor=actor)
        cycle.obligations_taken = Obligation.objects.filter(batch__cycle=cycle).count()
        cycle.obligations_deferred = (
            Obligation.objects.filter(status=OPEN, trade__executed_at__lte=as_of)
            .exclude(counterparty__status="defaulted")
            .count()
        )
        cycle.status = Cycle.Status.DONE
        cycle.finished_at = as_of
        cycle.save(update_fields=["obligations_taken", "obligations_deferred", "status", "finished_at"])
        if kind == Cycle.Kind.INTRADAY:
            CycleRequest.objects.filter(status=CycleRequest.Status.PENDING, requested_at__lte=as_of).update(
                status=CycleRequest.Status.DONE
            )
        audit_record(
            actor=actor,
            action="cycle.done",
            object_type="Cycle",
            object_id=cycle.id,
            after={
                "batches": cycle.batches.count(),
                "taken": cycle.obligations_taken,
                "deferred": cycle.obligations_deferred,
            },
            at=as_of,
        )
    return cycle


def _lock_cycles() -> None:
    """At most one cycle (or deadline check) at a time, across all workers."""
    CycleLock.objects.get_or_create(singleton=True)
    CycleLock.objects.select_for_update().get(singleton=True)


def open_asset_ids(as_of: datetime) -> set[int]:
    """Assets whose rail a cycle at ``as_of`` may use: open by its calendar
    and cut-off, and not halted."""
    rails = {r.id: r for r in Rail.objects.all()}
    open_rails = {
        rail_id
        for rail_id, rail in rails.items()
        if rail.status != Rail.Status.HALTED and calendars.rail_open_at(rail, as_of)
    }
    return set(Asset.objects.filter(rail_id__in=open_rails).values_list("id", flat=True))


def _takeable(as_of: datetime):
    """DVP is per trade: both of its assets' rails must be open."""
    assets = open_asset_ids(as_of)
    return Obligation.objects.filter(
        status=OPEN,
        trade__executed_at__lte=as_of,
        trade__base_asset_id__in=assets,
        trade__quote_asset_id__in=assets,
        counterparty__status__in=[Operator.Status.ACTIVE, Operator.Status.SUSPENDED],
    )


def _batch_open(*, cycle: Cycle, counterparty: Operator) -> Batch:
    policy = counterparty.dvp_policy
    return Batch.objects.create(
        cycle=cycle,
        counterparty=counterparty,
        dvp_policy=policy,
        escrow_custodian_id=counterparty.escrow_custodian_id if policy == Operator.DvpPolicy.ESCROW else None,
        created_at=cycle.as_of,
    )


def _take(takeable, batches: list[Batch]) -> None:
    """Mark every takeable obligation as in its counterparty's batch in one
    pass over the table, and keep the record of what each batch took."""
    if not batches:
        return
    batch_of = Case(
        *[When(counterparty_id=batch.counterparty_id, then=Value(batch.id)) for batch in batches],
        output_field=BigIntegerField(),
    )
    takeable.update(status=IN_BATCH, batch_id=batch_of)
    ids = [batch.id for batch in batches]
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO settlement_batchitem (batch_id, obligation_id) SELECT batch_id, id FROM settlement_obligation "
            f"WHERE batch_id IN ({', '.join(['%s'] * len(ids))})",
            ids,
        )


def _batch_create(*, cycle: Cycle, batch: Batch, actor: str) -> Batch:
    """Net what the batch took per asset into legs, then settle it by netting
    or instruct what its DVP policy allows."""
    as_of = cycle.as_of
    counterparty, policy = batch.counterparty, batch.dvp_policy
    nets = sums_by_direction(Obligation.objects.filter(batch=batch), ("asset_id",))
    taken = sum(inbound_count + outbound_count for _, _, inbound_count, outbound_count in nets.values())
    legs = []
    for (asset_id,), (inbound, outbound, _, _) in sorted(nets.items()):
        net = inbound - outbound
        if net == 0:
            continue
        legs.append(_leg_new(batch=batch, asset_id=asset_id, net=net, as_of=as_of))
    Leg.objects.bulk_create(legs)
    audit_record(
        actor=actor,
        action="batch.created",
        object_type="Batch",
        object_id=batch.id,
        after={
            "counterparty": counterparty.code,
            "dvp_policy": policy,
            "obligations": taken,
            "legs": [
                {"asset_id": leg.asset_id, "direction": leg.direction, "amount": as_str(leg.amount)} for leg in legs
            ],
        },
        at=as_of,
    )
    if not legs:
        _batch_settle(batch=batch, as_of=as_of, actor=actor, by_netting=True)
    else:
        _batch_release(batch=batch, as_of=as_of, actor=actor)
    return batch


def _leg_new(*, batch: Batch, asset_id: int, net: Decimal, as_of: datetime) -> Leg:
    asset = Asset.objects.select_related("rail").get(pk=asset_id)
    direction = Leg.Direction.INBOUND if net > 0 else Leg.Direction.OUTBOUND
    amount = abs(net)
    lead = _cold_to_hot_minutes(asset=asset, amount=amount) if direction == Leg.Direction.OUTBOUND else 0
    return Leg(
        batch=batch,
        asset=asset,
        direction=direction,
        amount=amount,
        status=Leg.Status.PENDING,
        value_date=calendars.value_date(asset.rail, as_of),
        deadline=calendars.leg_deadline(asset.rail, as_of) + timedelta(minutes=lead),
        lead_time_minutes=lead,
    )


def _cold_to_hot_minutes(*, asset: Asset, amount: Decimal) -> int:
    """If home's hot wallets on the rail are known to hold less than the leg,
    the leg gets the (shortest) cold-to-hot lead time of a home cold wallet."""
    home_wallets = Wallet.objects.filter(rail=asset.rail_id, operator__role=Operator.Role.HOME)
    hot = WalletBalance.objects.filter(wallet__in=home_wallets.filter(temperature=Wallet.Temperature.HOT), asset=asset)
    if not hot.exists():
        return 0  # no statement of hot balances: nothing to say the hot wallet is short
    held = hot.aggregate(total=Sum("amount"))["total"] or Decimal(0)
    if held >= amount:
        return 0
    cold = home_wallets.filter(temperature=Wallet.Temperature.COLD).order_by("lead_time_minutes").first()
    return cold.lead_time_minutes if cold else 0


def _batch_release(*, batch: Batch, as_of: datetime, actor: str) -> None:
    """Instruct what the DVP policy allows now. Receive-first: inbound legs
    at once, outbound only when every inbound leg is confirmed. Escrow: all
    legs together, to the designated custodian."""
    legs = list(batch.legs.select_related("asset__rail").order_by("id"))
    inbound_done = all(leg.status == Leg.Status.CONFIRMED for leg in legs if leg.direction == Leg.Direction.INBOUND)
    released_outbound = False
    for leg in legs:
        if leg.status != Leg.Status.PENDING:
            continue
        releasable = (
            batch.dvp_policy == Operator.DvpPolicy.ESCROW or leg.direction == Leg.Direction.INBOUND or inbound_done
        )
        if not releasable:
            continue
        leg.status = Leg.Status.INSTRUCTED
        leg.instructed_at = as_of
        if leg.direction == Leg.Direction.OUTBOUND and as_of > batch.created_at:
            # released later than the cycle: its window runs from now
            leg.deadline = max(
                leg.deadline, calendars.leg_deadline(leg.asset.rail, as_of) + timedelta(minutes=leg.lead_time_minutes)
            )
        leg.save(update_fields=["status", "instructed_at", "deadline"])
        released_outbound = released_outbound or leg.direction == Leg.Direction.OUTBOUND
        audit_record(
            actor=actor,
            action="leg.instructed",
            object_type="Leg",
            object_id=leg.id,
            before={"status": Leg.Status.PENDING},
            after={"status": Leg.Status.INSTRUCTED, "deadline": leg.deadline.isoformat()},
            at=as_of,
        )
    if released_outbound:
        # home must now send: the custodian's instruction is written in this
        # same transaction (custody's outbox; imported here to keep the apps'
        # import order one way)
        from custody.services.instructions import instructions_write

        instructions_write(as_of=as_of, actor=actor)


def _batch_settle(*, batch: Batch, as_of: datetime, actor: str, by_netting: bool = False) -> None:
    obligations = Obligation.objects.filter(batch=batch, status=IN_BATCH)
    positions_release(obligations=obligations)
    settled = obligations.update(status=Obligation.Status.SETTLED, settled_at=as_of)
    batch.status = Batch.Status.SETTLED
    batch.settled_at = as_of
    batch.settled_by_netting = by_netting
    batch.waiting_reason = ""
    batch.save(update_fields=["status", "settled_at", "settled_by_netting", "waiting_reason"])
    audit_record(
        actor=actor,
        action="batch.settled",
        object_type="Batch",
        object_id=batch.id,
        before={"status": Batch.Status.OPEN},
        after={"status": Batch.Status.SETTLED, "obligations": settled, "by_netting": by_netting},
        at=as_of,
    )


# --- confirming legs ---------------------------------------------------------------------


def leg_confirm(*, leg_id: int, evidence: dict, actor: str, as_of: datetime) -> Leg:
    """Record that a leg is final, with its evidence (a chain transfer, a
    statement entry, or an approved manual confirmation). The chain watcher
    and statement importer call this; so does a four-eyes approval.
    Confirming an already confirmed leg returns it unchanged."""
    with transaction.atomic():
        leg = Leg.objects.select_related("batch").filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        batch = Batch.objects.select_for_update().get(pk=leg.batch_id)  # batch first, then its legs
        leg = Leg.objects.select_for_update().get(pk=leg_id)
        if leg.status == Leg.Status.CONFIRMED:
            return leg
        if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
            raise Conflict(
                "leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed"
            )
        before = leg.status
        leg.status = Leg.Status.CONFIRMED
        leg.confirmed_at = as_of
        leg.confirmed_by = actor
        leg.evidence = evidence
        leg.save(update_fields=["status", "confirmed_at", "confirmed_by", "evidence"])
        audit_record(
            actor=actor,
            action="leg.confirmed",
            object_type="Leg",
            object_id=leg.id,
            before={"status": before},
            after={"status": Leg.Status.CONFIRMED, "evidence": evidence},
            at=as_of,
        )
        if batch.status == Batch.Status.OPEN:
            _batch_release(batch=batch, as_of=as_of, actor=actor)
            if not batch.legs.exclude(status=Leg.Status.CONFIRMED).exists():
                _batch_settle(batch=batch, as_of=as_of, actor=actor)
        return leg


# --- deadlines, fails, recycling ------------------------------------------------------------


@dataclass(slots=True)
class DeadlineResult:
    failed: list[int]
    waiting: list[int]
    flagged: list[str]


def deadlines_check(*, as_of: datetime, actor: str) -> DeadlineResult:
    """Fail every open batch with an instructed leg past its deadline, unless
    that leg's rail is degraded or halted: then the batch waits and says why.
    A failed batch's obligations return to ``open`` with one more fail, for
    the next cycle to take again."""
    with transaction.atomic():
        _lock_cycles()
        overdue = (
            Leg.objects.filter(
                batch__status=Batch.Status.OPEN,
                status__in=[Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING],
                deadline__lt=as_of,
            )
            .select_related("asset__rail")
            .order_by("batch_id", "id")
        )
        by_batch: dict[int, list[Leg]] = {}
        for leg in overdue:
            by_batch.setdefault(leg.batch_id, []).append(leg)
        failed, waiting = [], []
        for batch_id, legs in by_batch.items():
            batch = Batch.objects.select_for_update().get(pk=batch_id)
            paused = [leg for leg in legs if leg.asset.rail.status != Rail.Status.UP]
            if paused:
                reason = "; ".join(
                    f"{leg.direction} {leg.asset.code} leg is past its deadline but rail {leg.asset.rail.code} is "
                    f"{leg.asset.rail.status}: deadline paused"
                    for leg in paused
                )
                if batch.waiting_reason != reason:
                    batch.waiting_reason = reason
                    batch.save(update_fields=["waiting_reason"])
                    audit_record(
                        actor=actor,
                        action="batch.waiting",
                        object_type="Batch",
                        object_id=batch.id,
                        after={"reason": reason},
                        at=as_of,
                    )
                waiting.append(batch.id)
                continue
            _batch_fail(batch=batch, overdue=legs, as_of=as_of, actor=actor)
            failed.append(batch.id)
        flagged = _default_review_flags(as_of=as_of, actor=actor) if failed else []
        return DeadlineResult(failed, waiting, flagged)


def _batch_fail(*, batch: Batch, overdue: list[Leg], as_of: datetime, actor: str) -> None:
    overdue_ids = {leg.id for leg in overdue}
    confirmed = list(batch.legs.filter(status=Leg.Status.CONFIRMED).select_related("asset"))
    batch.legs.filter(id__in=overdue_ids).update(status=Leg.Status.FAILED)
    batch.legs.filter(status__in=Leg.OPEN_STATUSES).update(status=Leg.Status.CANCELLED)
    returned = Obligation.objects.filter(batch=batch, status=IN_BATCH)
    count = returned.count()
    returned.update(status=OPEN, batch=None, fail_count=F("fail_count") + 1)
    reason = "deadline missed: " + ", ".join(
        f"{leg.direction} {leg.asset.code} {as_str(leg.amount)}" for leg in overdue
    )
    batch.status = Batch.Status.FAILED
    batch.failed_at = as_of
    batch.fail_reason = reason[:300]
    batch.save(update_fields=["status", "failed_at", "fail_reason"])
    audit_record(
        actor=actor,
        action="batch.failed",
        object_type="Batch",
        object_id=batch.id,
        before={"status": Batch.Status.OPEN},
        after={"status": Batch.Status.FAILED, "reason": reason, "obligations_recycled": count},
        at=as_of,
    )
    if confirmed:
        # Assets that did move for a batch that failed: someone must return
        # them or apply them off-line; the next cycle nets the obligations afresh.
        Alert.objects.create(
            kind="failed_batch_with_movements",
            operator=batch.counterparty,
            message=f"batch {batch.id} failed after {len(confirmed)} leg(s) had already settled; return or apply them",
            details={
                "legs": [
                    {"id": leg.id, "asset": leg.asset.code, "direction": leg.direction, "amount": as_str(leg.amount)}
                    for leg in confirmed
                ]
            },
            created_at=as_of,
        )


def _default_review_flags(*, as_of: datetime, actor: str) -> list[str]:
    """Flag (never declare) a counterparty for default review when its
    obligations keep failing or stay unsettled too long."""
    fails = settings.DEFAULT_REVIEW_FAILS
    age = as_of - timedelta(hours=settings.DEFAULT_REVIEW_AGE_HOURS)
    suspects = (
        Obligation.objects.filter(status__in=Obligation.UNSETTLED)
        .filter(Q(fail_count__gte=fails) | Q(trade__executed_at__lt=age))
        .values_list("counterparty_id", flat=True)
        .distinct()
    )
    flagged = []
    for operator in Operator.objects.filter(id__in=list(suspects)).order_by("code"):
        if Alert.objects.filter(kind="default_review", operator=operator, status=Alert.Status.OPEN).exists():
            continue
        alert = Alert.objects.create(
            kind="default_review",
            operator=operator,
            message=f"{operator.code}: obligations failed {fails}+ times or unsettled over {settings.DEFAULT_REVIEW_AGE_HOURS} h; review for default",
            details={"fails_threshold": fails, "age_hours": settings.DEFAULT_REVIEW_AGE_HOURS},
            created_at=as_of,
        )
        audit_record(
            actor=actor,
            action="alert.default_review",
            object_type="Alert",
            object_id=alert.id,
            after={"operator": operator.code},
            at=as_of,
        )
        flagged.append(operator.code)
    return flagged


# --- deliveries reported by a counterparty ------------------------------------------------


def delivery_report(
    *,
    leg_id: int,
    tx_hash: str | None,
    bank_reference: str | None,
    operator: Operator | None,
    actor: str,
    now: datetime,
) -> tuple[Delivery, bool]:
    """A counterparty says how it delivered. Kept as a hint for matching; it
    never confirms a leg by itself. Returns (delivery, created)."""
    leg = Leg.objects.select_related("batch", "asset__rail").filter(pk=leg_id).first()
    if leg is None or (operator is not None and not operator.is_home and leg.batch.counterparty_id != operator.id):
        raise NotFound("not_found", f"no leg {leg_id}")
    if bool(tx_hash) == bool(bank_reference):
        raise InvalidInput("invalid_request", "send exactly one of tx_hash or bank_reference")
    if tx_hash is not None:
        if leg.asset.rail.kind != Rail.Kind.EVM:
            raise InvalidInput(
                "invalid_field",
                f"leg {leg.id} is on a {leg.asset.rail.kind} rail: send bank_reference",
                field="tx_hash",
            )
        if not (isinstance(tx_hash, str) and len(tx_hash) == 66 and tx_hash.startswith("0x") and _is_hex(tx_hash[2:])):
            raise InvalidInput("invalid_field", "tx_hash must be 0x followed by 64 hex digits", field="tx_hash")
        tx_hash = tx_hash.lower()
    else:
        if not isinstance(bank_reference, str) or not bank_reference.strip() or len(bank_reference) > 80:
            raise InvalidInput(
                "invalid_field",
                "bank_reference must be a non-empty string of at most 80 characters",
                field="bank_reference",
            )
        bank_reference = bank_reference.strip()
    with transaction.atomic():
        delivery, created = Delivery.objects.get_or_create(
            leg=leg,
            tx_hash=tx_hash or "",
            bank_reference=bank_reference or "",
            defaults={"reported_by": actor, "reported_at": now},
        )
        if created:
            audit_record(
                actor=actor,
                action="delivery.reported",
                object_type="Leg",
                object_id=leg.id,
                after={"tx_hash": delivery.tx_hash, "bank_reference": delivery.bank_reference},
                at=now,
            )
    return delivery, created


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


# --- manual confirmation with four eyes -----------------------------------------------------


def _leg_confirm_check(*, payload: dict) -> None:
    leg_id = payload.get("leg_id")
    leg = Leg.objects.filter(pk=leg_id).first() if isinstance(leg_id, int) else None
    if leg is None:
        raise NotFound("not_found", f"no leg {payload.get('leg_id')}")
    if leg.status not in (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING):
        raise Conflict("leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be confirmed")


@approval_kind(ApprovalRequest.Kind.LEG_CONFIRM, check=_leg_confirm_check)
def _leg_confirm_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    leg = leg_confirm(
        leg_id=payload["leg_id"],
        evidence={
            "manual": payload["evidence"],
            "approval_id": request.id,
            "requested_by": request.requested_by.username,
            "approved_by": approver.username,
        },
        actor=approval_actor(approver),
        as_of=now,
    )
    leg.batch.refresh_from_db()
    return {"leg_id": leg.id, "leg_status": leg.status, "batch_id": leg.batch_id, "batch_status": leg.batch.status}


# --- what the watchers report before finality ---------------------------------------------


def leg_mark_confirming(*, leg_id: int, evidence: dict, actor: str, as_of: datetime) -> Leg:
    """A matching movement is seen but not final yet (e.g. too few block
    confirmations). Idempotent; never moves a confirmed leg backwards."""
    with transaction.atomic():
        leg = Leg.objects.select_for_update().filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        if leg.status == Leg.Status.CONFIRMING or leg.status == Leg.Status.CONFIRMED:
            return leg
        if leg.status != Leg.Status.INSTRUCTED:
            raise Conflict("leg_not_confirmable", f"leg {leg.id} is {leg.status}; only an instructed leg can be seen")
        leg.status = Leg.Status.CONFIRMING
        leg.evidence = evidence
        leg.save(update_fields=["status", "evidence"])
        audit_record(
            actor=actor,
            action="leg.confirming",
            object_type="Leg",
            object_id=leg.id,
            before={"status": Leg.Status.INSTRUCTED},
            after={"status": Leg.Status.CONFIRMING, "evidence": evidence},
            at=as_of,
        )
        return leg


def leg_unsee(*, leg_id: int, reason: str, actor: str, as_of: datetime) -> Leg:
    """The movement that made a leg ``confirming`` went away (a reorg): back
    to ``instructed`` so matching can find another. A confirmed leg is final
    and is not touched (a break records the problem instead)."""
    with transaction.atomic():
        leg = Leg.objects.select_for_update().filter(pk=leg_id).first()
        if leg is None:
            raise NotFound("not_found", f"no leg {leg_id}")
        if leg.status != Leg.Status.CONFIRMING:
            return leg
        leg.status = Leg.Status.INSTRUCTED
        leg.evidence = None
        leg.save(update_fields=["status", "evidence"])
        audit_record(
            actor=actor,
            action="leg.unseen",
            object_type="Leg",
            object_id=leg.id,
            before={"status": Leg.Status.CONFIRMING},
            after={"status": Leg.Status.INSTRUCTED, "reason": reason},
            at=as_of,
        )
        return leg
