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
from django.db.models import Sum

from controls.exceptions import InvalidInput
from controls.money import as_str
from controls.services.audit import audit_record, audit_record_many
from registry import calendars
from registry.models import Asset, Operator, Rail, Wallet, WalletBalance
from settlement import hooks
from settlement.models import Batch, CounterpartyExclusion, Cycle, CycleLock, CycleRequest, Leg, Obligation

from .credits import credits_apply, credits_settle
from .escrow import escrow_release
from .positions import PositionDelta, positions_apply
from .prefunding import prefunding_settle

logger = logging.getLogger(__name__)

OPEN = Obligation.Status.OPEN
IN_BATCH = Obligation.Status.IN_BATCH


# --- running a cycle -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CycleRun:
    cycle: Cycle
    replayed: bool  # the (kind, as_of) cycle existed already: nothing new was run


def cycle_run(*, kind: str, as_of: datetime, actor: str) -> Cycle:
    return cycle_start(kind=kind, as_of=as_of, actor=actor).cycle


def cycle_start(*, kind: str, as_of: datetime, actor: str) -> CycleRun:
    """Run the ``kind`` cycle at ``as_of``, or return the one that ran at
    that exact instant already (``replayed``): a task delivered twice, or
    the same request repeated, makes one cycle."""
    if not isinstance(kind, str) or kind not in Cycle.Kind.values:
        raise InvalidInput("invalid_field", f"kind must be one of {', '.join(Cycle.Kind.values)}", field="kind")
    if as_of.utcoffset() is None:
        raise InvalidInput("invalid_timestamp", "as_of must carry a time zone", field="as_of")
    with transaction.atomic():
        cycles_lock()
        existing = Cycle.objects.filter(kind=kind, as_of=as_of).first()
        if existing is not None:
            return CycleRun(existing, replayed=True)
        cycle = Cycle.objects.create(kind=kind, as_of=as_of, requested_by=actor, started_at=as_of)
        audit_record(
            actor=actor,
            action="cycle.started",
            object_type="Cycle",
            object_id=cycle.id,
            after={"kind": kind, "as_of": as_of.isoformat()},
            at=as_of,
        )
        rails = _rails_filter(as_of)
        counterparties = _takeable_counterparties(as_of=as_of, rails=rails)
        batches = [_batch_open(cycle=cycle, counterparty=counterparty) for counterparty in counterparties]
        nets = _take(batches=batches, as_of=as_of, rails=rails)
        for batch in batches:
            _batch_create(cycle=cycle, batch=batch, nets=nets.get(batch.id, {}), actor=actor)
        cycle.obligations_taken = sum(
            inbound_count + outbound_count
            for by_asset in nets.values()
            for _, _, inbound_count, outbound_count in by_asset.values()
        )
        cycle.obligations_deferred = _deferred(as_of=as_of, rails=rails, taken=[c.id for c in counterparties])
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
    return CycleRun(cycle, replayed=False)


def cycles_lock() -> None:
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


def _takeable_counterparties(*, as_of: datetime, rails: RailsFilter) -> list[Operator]:
    """The counterparties a cycle takes from: active or suspended, not
    excluded by operations, with an open obligation it may take (one probe
    of the open obligations' index each)."""
    condition, rail_params = rails
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT op.id FROM {Operator._meta.db_table} op WHERE op.status = ANY(%s) "
            f"AND NOT EXISTS (SELECT 1 FROM {CounterpartyExclusion._meta.db_table} x "
            "WHERE x.operator_id = op.id AND x.status = %s) "
            "AND EXISTS (SELECT 1 FROM settlement_obligation o "
            "WHERE o.counterparty_id = op.id AND o.batch_id IS NULL AND o.status = %s "
            f"AND o.executed_at <= %s{condition})",
            [
                [Operator.Status.ACTIVE, Operator.Status.SUSPENDED],
                CounterpartyExclusion.Status.ACTIVE,
                OPEN,
                as_of,
                *rail_params,
            ],
        )
        ids = [operator_id for (operator_id,) in cursor.fetchall()]
    return list(Operator.objects.filter(id__in=ids).order_by("id"))


RailsFilter = tuple[str, list]  # an SQL condition on obligation o, and its parameters


def _rails_filter(as_of: datetime) -> RailsFilter:
    """DVP is per trade: both of its assets' rails must be open. Nothing to
    add when every asset's rail is open (the usual case); otherwise the
    trade's two assets are checked."""
    assets = open_asset_ids(as_of)
    if not Asset.objects.exclude(id__in=assets).exists():
        return "", []
    return (
        " AND o.trade_id IN (SELECT t.id FROM settlement_trade t "
        "WHERE t.base_asset_id = ANY(%s) AND t.quote_asset_id = ANY(%s))",
        [sorted(assets), sorted(assets)],
    )


# what a set of obligation rows adds up to, per direction: inbound sum,
# outbound sum, inbound count, outbound count (settlement.aggregates, in SQL)
_SUMS = """coalesce(sum(amount) FILTER (WHERE direction = 'inbound'), 0),
       coalesce(sum(amount) FILTER (WHERE direction = 'outbound'), 0),
       count(*) FILTER (WHERE direction = 'inbound'),
       count(*) FILTER (WHERE direction = 'outbound')"""

# One pass: every open obligation of the batches' counterparties executed by
# the cut-off is marked in its counterparty's batch (joined, so batch_id only
# ever names a batch row), and what was marked is netted per batch and asset
# from the rows the UPDATE returns.
_TAKE_SQL = """
WITH taken AS (
    UPDATE settlement_obligation o SET status = %s, batch_id = b.id
    FROM settlement_batch b
    WHERE b.id = ANY(%s) AND o.counterparty_id = b.counterparty_id
      AND o.batch_id IS NULL AND o.status = %s AND o.executed_at <= %s{rails}
    RETURNING o.batch_id, o.asset_id, o.direction, o.amount
)
SELECT batch_id, asset_id, {sums}
FROM taken GROUP BY batch_id, asset_id
""".replace("{sums}", _SUMS)

Nets = dict[int, tuple[Decimal, Decimal, int, int]]  # asset id: (inbound, outbound, inbound count, outbound count)


def _take(*, batches: list[Batch], as_of: datetime, rails: RailsFilter) -> dict[int, Nets]:
    """Take every takeable obligation into its counterparty's batch in one
    statement; return what each batch took, per asset. Which obligation is
    in which batch is ``obligation.batch_id``; no row is written per
    obligation besides its own (a BatchItem is written only when it leaves
    a batch unsettled)."""
    if not batches:
        return {}
    condition, rail_params = rails
    with connection.cursor() as cursor:
        cursor.execute(
            _TAKE_SQL.format(rails=condition), [IN_BATCH, [b.id for b in batches], OPEN, as_of, *rail_params]
        )
        nets: dict[int, Nets] = {}
        for batch_id, asset_id, inbound, outbound, inbound_count, outbound_count in cursor.fetchall():
            nets.setdefault(batch_id, {})[asset_id] = (inbound, outbound, inbound_count, outbound_count)
    return nets


def _deferred(*, as_of: datetime, rails: RailsFilter, taken: list[int]) -> int:
    """Open obligations executed by the cut-off that the cycle left: of a
    counterparty it did not take from (excluded, or neither active nor
    suspended; a defaulted one's are closed out, not deferred), or of a
    trade whose rail was closed. None can be left when every asset's rail
    was open and every counterparty with open obligations was taken."""
    others = (
        Operator.objects.exclude(id__in=taken)
        .exclude(status=Operator.Status.DEFAULTED)
        .filter(id__in=Obligation.objects.filter(batch__isnull=True, status=OPEN).values("counterparty_id"))
    )
    if not rails[0] and not others.exists():
        return 0
    return (
        Obligation.objects.filter(batch__isnull=True, status=OPEN, executed_at__lte=as_of)
        .exclude(counterparty__status=Operator.Status.DEFAULTED)
        .count()
    )


def _batch_open(*, cycle: Cycle, counterparty: Operator) -> Batch:
    policy = counterparty.dvp_policy
    window = settings.BATCH_AFFIRMATION_WINDOW_MINUTES
    return Batch.objects.create(
        cycle=cycle,
        counterparty=counterparty,
        dvp_policy=policy,
        escrow_custodian_id=counterparty.escrow_custodian_id if policy == Operator.DvpPolicy.ESCROW else None,
        created_at=cycle.as_of,
        affirmation=Batch.Affirmation.PENDING if window > 0 else Batch.Affirmation.NOT_REQUIRED,
        affirmation_due=cycle.as_of + timedelta(minutes=window) if window > 0 else None,
    )


def _batch_create(*, cycle: Cycle, batch: Batch, nets: Nets, actor: str) -> Batch:
    """Net what the batch took per asset (``nets``, from the take) into legs,
    then settle it by netting or instruct what its DVP policy allows."""
    as_of = cycle.as_of
    counterparty, policy = batch.counterparty, batch.dvp_policy
    taken = sum(inbound_count + outbound_count for _, _, inbound_count, outbound_count in nets.values())
    batch.obligations_taken = taken
    batch.save(update_fields=["obligations_taken"])
    # what moved for an earlier batch that failed nets in here (never settles outside DVP)
    carried = credits_apply(batch=batch, as_of=as_of, actor=actor)
    legs = []
    for asset_id in sorted(set(nets) | set(carried)):
        inbound, outbound, _, _ = nets.get(asset_id, (Decimal(0), Decimal(0), 0, 0))
        net = inbound - outbound + carried.get(asset_id, Decimal(0))
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
            "credits_netted": {str(asset_id): as_str(change) for asset_id, change in sorted(carried.items())},
            "legs": [
                {"asset_id": leg.asset_id, "direction": leg.direction, "amount": as_str(leg.amount)} for leg in legs
            ],
        },
        at=as_of,
    )
    if not legs:
        batch_settle(batch=batch, as_of=as_of, actor=actor, by_netting=True)
    else:
        batch_release(batch=batch, as_of=as_of, actor=actor)
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


def batch_release(*, batch: Batch, as_of: datetime, actor: str) -> None:
    """Instruct what the DVP policy allows now. Receive-first: inbound legs
    at once, outbound only when every inbound leg is confirmed. Escrow: all
    legs together, each to the escrow custodian's holding wallet or account,
    and their releases together once every leg is locked there (the caller
    settles the batch when its legs are all confirmed). A held batch instructs
    nothing; home's outbound legs also wait for the counterparty's
    affirmation while one is pending."""
    if batch.held_at is not None:
        return
    legs = list(batch.legs.select_related("asset__rail").order_by("id"))
    affirmed = batch.affirmation != Batch.Affirmation.PENDING
    inbound_done = all(leg.status == Leg.Status.CONFIRMED for leg in legs if leg.direction == Leg.Direction.INBOUND)
    released_outbound = False
    for leg in legs:
        if leg.status != Leg.Status.PENDING:
            continue
        releasable = leg.direction == Leg.Direction.INBOUND or (
            affirmed and (batch.dvp_policy == Operator.DvpPolicy.ESCROW or inbound_done)
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
        # home must now send: custody writes the custodian's instruction in
        # this same transaction (its outbox), through the hook it connected
        hooks.outbound_legs_instructed.fire(as_of=as_of, actor=actor)
    # escrow: every leg locked (a held batch was released since) goes out together
    escrow_release(batch=batch, as_of=as_of, actor=actor)


# Every obligation of the settling batches in one pass; what settled comes
# back per batch, counterparty and asset: the running positions it leaves and
# each batch's count for its audit event.
_SETTLE_SQL = """
WITH settled AS (
    UPDATE settlement_obligation SET status = %s, settled_at = %s
    WHERE batch_id = ANY(%s) AND status = %s
    RETURNING batch_id, counterparty_id, asset_id, direction, amount
)
SELECT batch_id, counterparty_id, asset_id, {sums}
FROM settled GROUP BY batch_id, counterparty_id, asset_id
""".replace("{sums}", _SUMS)


def batch_settle(*, batch: Batch, as_of: datetime, actor: str, by_netting: bool = False) -> None:
    batches_settle(batches=[batch], as_of=as_of, actor=actor, by_netting=by_netting)


def batches_settle(*, batches: list[Batch], as_of: datetime, actor: str, by_netting: bool = False) -> None:
    """Settle open batches together, inside the caller's transaction, which
    holds their locks: prefunding's committed clears and funded moves (para
    10), every obligation settles in one UPDATE whose returned rows release
    the running positions, the credits they netted settle, and each batch is
    settled with its audit event (one INSERT for all)."""
    if not batches:
        return
    ids = [batch.id for batch in batches]
    prefunding_settle(batch_ids=ids, as_of=as_of)  # para 10: committed clears, funded moves
    with connection.cursor() as cursor:
        cursor.execute(_SETTLE_SQL, [Obligation.Status.SETTLED, as_of, ids, IN_BATCH])
        rows = cursor.fetchall()
    released: dict[tuple[int, int], list] = {}
    settled: dict[int, int] = {}
    for batch_id, counterparty_id, asset_id, inbound, outbound, inbound_count, outbound_count in rows:
        total = released.setdefault((counterparty_id, asset_id), [Decimal(0), Decimal(0), 0, 0])
        total[0] += inbound
        total[1] += outbound
        total[2] += inbound_count
        total[3] += outbound_count
        settled[batch_id] = settled.get(batch_id, 0) + inbound_count + outbound_count
    positions_apply(
        deltas=[PositionDelta(cp, asset, -t[0], -t[1], -t[2], -t[3]) for (cp, asset), t in released.items()]
    )
    credits = credits_settle(batch_ids=ids, as_of=as_of)
    Batch.objects.filter(pk__any=ids).update(
        status=Batch.Status.SETTLED, settled_at=as_of, settled_by_netting=by_netting, waiting_reason=""
    )
    for batch in batches:
        batch.status, batch.settled_at = Batch.Status.SETTLED, as_of
        batch.settled_by_netting, batch.waiting_reason = by_netting, ""
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "batch.settled",
                "object_type": "Batch",
                "object_id": batch.id,
                "before": {"status": Batch.Status.OPEN},
                "after": {
                    "status": Batch.Status.SETTLED,
                    "obligations": settled.get(batch.id, 0),
                    "credits_settled": credits.get(batch.id, 0),
                    "by_netting": by_netting,
                },
                "at": as_of,
            }
            for batch in batches
        ]
    )
