"""Matching observed movements to legs, and the breaks for what does not match.

An inbound leg matches movements from the counterparty's registered wallets
or accounts (``Movement.counterparty``), of the leg's asset, that occurred
after the leg was instructed and sum exactly to the leg: one-to-one, or
several in the order they occurred (many-to-one). An outbound leg matches
home's own movements to the counterparty the same way. Movements a
counterparty told us about (``Delivery`` hints) are tried first; a hint never
confirms anything by itself.

Matched movements are linked to the leg. While any of them is only seen (not
final) the leg is ``confirming`` (``leg_mark_confirming``); when all are
final, ``leg_confirm`` is called with the evidence. A reorg of a seen
movement unlinks it and calls ``leg_unsee`` (see ``chain``).

The bulk one-to-one pass is one SQL statement that pairs legs and movements
by (asset, counterparty, direction, amount) in time order; the rest (hints,
many-to-one, breaks) looks only at legs that still have candidates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from controls.exceptions import Conflict
from controls.money import as_str
from controls.services.audit import audit_record
from custody.models import Break, Movement
from custody.selectors import amount_str
from registry.models import Rail
from settlement.models import Batch, Delivery, Leg
from settlement.services.legs import leg_confirm, leg_mark_confirming

from .breaks import NewBreak, break_close_if_open, break_raise, breaks_open

logger = logging.getLogger(__name__)

ACTOR = "custody:matcher"
LIVE = (Movement.Status.SEEN, Movement.Status.FINAL)
MATCHABLE_LEG = (Leg.Status.INSTRUCTED,)
OPEN_LEG = (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING)


def tolerance() -> timedelta:
    """How long before a leg's instruction a movement may be timed and still
    match it: block times have a granularity (1 s; a 12 s slot on Ethereum)
    and the node's clock is not ours."""
    return timedelta(seconds=int(getattr(settings, "CUSTODY_MATCH_TOLERANCE_SECONDS", 60)))


@dataclass
class ReconcileResult:
    confirmed: list[int] = field(default_factory=list)
    confirming: list[int] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)
    instructions: int = 0

    def as_json(self) -> dict:
        return {
            "confirmed_legs": self.confirmed,
            "confirming_legs": self.confirming,
            "breaks_raised": self.breaks,
            "instructions_written": self.instructions,
        }


def reconcile_run(*, as_of: datetime, actor: str = ACTOR) -> ReconcileResult:
    """Match what can be matched, confirm what is final, raise the breaks,
    write the outbox. Idempotent: running it twice changes nothing more."""
    from .instructions import instructions_write

    result = ReconcileResult()
    hinted = set(Delivery.objects.filter(leg__status__in=MATCHABLE_LEG).values_list("leg_id", flat=True))
    for leg_id in sorted(hinted):
        _match_leg(leg_id=leg_id, as_of=as_of, actor=actor, result=result)
    for leg_id, movement_id in _one_to_one_pairs(exclude_legs=hinted):
        _link(leg_id=leg_id, movement_ids=[movement_id], how="one_to_one", as_of=as_of, actor=actor, result=result)
    for leg_id in _legs_with_candidates():
        _match_leg(leg_id=leg_id, as_of=as_of, actor=actor, result=result)
    _finalise(as_of=as_of, actor=actor, result=result)
    _unmatched(as_of=as_of, actor=actor, result=result)
    _missing(as_of=as_of, actor=actor, result=result)
    result.instructions = len(instructions_write(as_of=as_of, actor=actor))
    return result


# --- candidates --------------------------------------------------------------------------------


def _instructed_at(leg: Leg) -> datetime:
    """Matchable legs are instructed, so they carry the time they were."""
    assert leg.instructed_at is not None, f"leg {leg.id} is matchable but was never instructed"
    return leg.instructed_at


def _candidates(leg: Leg):
    """Unlinked live movements a leg may match, hinted ones first."""
    base = Movement.objects.filter(
        leg__isnull=True,
        status__in=LIVE,
        direction=leg.direction,
        asset_id=leg.asset_id,
        counterparty_id=leg.batch.counterparty_id,
        occurred_at__gte=_instructed_at(leg) - tolerance(),
    )
    hints = list(Delivery.objects.filter(leg=leg).values_list("tx_hash", "bank_reference"))
    hashes = [tx for tx, _ in hints if tx]
    refs = [ref for _, ref in hints if ref]
    hinted = Q(pk__in=[])
    if hashes:
        hinted |= Q(tx_hash__in=hashes)
    for ref in refs:
        hinted |= Q(bank_reference__iexact=ref) | Q(customer_reference__iexact=ref) | Q(entry_ref__iexact=ref)
        hinted |= Q(details__icontains=ref)
    first = list(base.filter(hinted).order_by("occurred_at", "id"))
    rest = list(base.exclude(pk__in=[m.pk for m in first]).order_by("occurred_at", "id"))
    return first, rest


def _legs_with_candidates() -> list[int]:
    movement = Movement.objects.filter(
        leg__isnull=True,
        status__in=LIVE,
        direction=OuterRef("direction"),
        asset_id=OuterRef("asset_id"),
        counterparty_id=OuterRef("batch__counterparty_id"),
        occurred_at__gte=OuterRef("instructed_at") - tolerance(),
    )
    return list(
        Leg.objects.filter(status__in=MATCHABLE_LEG, movements__isnull=True)
        .filter(Exists(movement))
        .order_by("instructed_at", "id")
        .values_list("id", flat=True)
    )


def _one_to_one_pairs(*, exclude_legs: set[int]) -> list[tuple[int, int]]:
    """Legs and movements paired one-to-one in SQL: the n-th open leg of an
    (asset, counterparty, direction, amount) with the n-th unlinked movement
    of the same, each in time order. ``_link`` checks each pair (the movement
    must come after the leg was instructed); a leg whose pair fails goes on
    to the per-leg pass."""
    leg_t, batch_t, mov_t = Leg._meta.db_table, Batch._meta.db_table, Movement._meta.db_table
    sql = f"""
        WITH legs AS (
            SELECT l.id, l.asset_id, b.counterparty_id, l.direction, l.amount, l.instructed_at,
                   ROW_NUMBER() OVER (PARTITION BY l.asset_id, b.counterparty_id, l.direction, l.amount
                                      ORDER BY l.instructed_at, l.id) AS rn
            FROM {leg_t} l JOIN {batch_t} b ON b.id = l.batch_id
            WHERE l.status = %s AND NOT EXISTS (SELECT 1 FROM {mov_t} x WHERE x.leg_id = l.id)
        ), moves AS (
            SELECT m.id, m.asset_id, m.counterparty_id, m.direction, m.amount, m.occurred_at,
                   ROW_NUMBER() OVER (PARTITION BY m.asset_id, m.counterparty_id, m.direction, m.amount
                                      ORDER BY m.occurred_at, m.id) AS rn
            FROM {mov_t} m
            WHERE m.leg_id IS NULL AND m.status IN (%s, %s) AND m.direction IN (%s, %s)
              AND m.counterparty_id IS NOT NULL
        )
        SELECT legs.id, moves.id FROM legs JOIN moves
          ON moves.asset_id = legs.asset_id AND moves.counterparty_id = legs.counterparty_id
         AND moves.direction = legs.direction AND moves.amount = legs.amount AND moves.rn = legs.rn
        ORDER BY legs.instructed_at, legs.id
    """
    params = [Leg.Status.INSTRUCTED, *LIVE, Movement.Direction.INBOUND, Movement.Direction.OUTBOUND]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(leg_id, movement_id) for leg_id, movement_id in cursor.fetchall() if leg_id not in exclude_legs]


# --- one leg -------------------------------------------------------------------------------------


def _match_leg(*, leg_id: int, as_of: datetime, actor: str, result: ReconcileResult) -> None:
    leg = Leg.objects.select_related("batch").filter(pk=leg_id, status__in=MATCHABLE_LEG).first()
    if leg is None or leg.movements.exists():
        return
    hinted, rest = _candidates(leg)
    ordered = hinted + rest
    chosen = _exact_set(leg.amount, hinted) or _exact_set(leg.amount, ordered)
    if chosen:
        how = "hint" if all(m in hinted for m in chosen) else ("one_to_one" if len(chosen) == 1 else "many_to_one")
        _link(leg_id=leg.id, movement_ids=[m.id for m in chosen], how=how, as_of=as_of, actor=actor, result=result)
        return
    if leg.direction == Leg.Direction.INBOUND:
        _delivery_breaks(leg=leg, candidates=ordered, as_of=as_of, actor=actor, result=result)


def _exact_set(amount: Decimal, movements: Sequence[Movement]) -> list[Movement]:
    """One movement of exactly the amount, else the shortest run in time
    order from the first that sums to it exactly."""
    for movement in movements:
        if movement.amount == amount:
            return [movement]
    total, run = Decimal(0), []
    for movement in movements:
        total += movement.amount
        run.append(movement)
        if total == amount:
            return run
        if total > amount:
            break
    return []


def _delivery_breaks(*, leg: Leg, candidates: list[Movement], as_of: datetime, actor: str, result) -> None:
    """Final movements from the counterparty that do not add up to the leg:
    short or over delivery. Waits while any candidate is still only seen."""
    if not candidates or any(m.status != Movement.Status.FINAL for m in candidates):
        return
    delivered = sum((m.amount for m in candidates), Decimal(0))
    code = leg.asset.code
    if delivered < leg.amount:
        kind, other, diff = Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY, leg.amount - delivered
        text = f"leg {leg.id}: {leg.batch.counterparty.code} delivered {as_str(delivered)} {code} of {as_str(leg.amount)} (short {as_str(diff)})"
    else:
        kind, other, diff = Break.Kind.OVER_DELIVERY, Break.Kind.SHORT_DELIVERY, delivered - leg.amount
        text = f"leg {leg.id}: {leg.batch.counterparty.code} delivered {as_str(delivered)} {code} for {as_str(leg.amount)} (over by {as_str(diff)}); no run of movements matches exactly"
    with transaction.atomic():
        brk, changed = break_raise(
            key=f"{kind}:leg:{leg.id}",
            kind=kind,
            asset_id=leg.asset_id,
            amount=diff,
            description=text,
            actor=actor,
            at=as_of,
            counterparty_id=leg.batch.counterparty_id,
            leg_id=leg.id,
            movements=candidates,
        )
        break_close_if_open(
            key=f"{other}:leg:{leg.id}", note=f"superseded: now {kind.replace('_', ' ')}", actor=actor, at=as_of
        )
    if changed:
        result.breaks.append(brk.id)


def _evidence(movements: Sequence[Movement], how: str) -> dict:
    if movements[0].source == Movement.Source.CHAIN:
        items = [
            {
                "chain_id": m.chain_id,
                "tx_hash": m.tx_hash,
                "log_index": m.log_index,
                "block_number": m.block_number,
                "block_hash": m.block_hash,
                "from": m.from_address,
                "to": m.to_address,
                "amount": amount_str(m.amount, m.asset),
                "status": m.status,
            }
            for m in movements
        ]
        return {"source": "chain", "matched_by": how, "movements": items}
    items = [
        {
            "account": m.account.number if m.account else None,
            "statement": m.statement.statement_ref if m.statement else None,
            "entry_ref": m.entry_ref,
            "bank_reference": m.bank_reference,
            "booking_date": m.booking_date.isoformat() if m.booking_date else None,
            "amount": amount_str(m.amount, m.asset),
            "status": m.status,
        }
        for m in movements
    ]
    return {"source": "bank", "matched_by": how, "movements": items}


def _link(*, leg_id: int, movement_ids: list[int], how: str, as_of: datetime, actor: str, result) -> bool:
    """Link movements to a leg and move the leg on: confirming while any is
    only seen, confirmed when all are final. Re-checks everything under
    locks (batch, then leg, then movements: the order leg_confirm uses)."""
    with transaction.atomic():
        leg = Leg.objects.filter(pk=leg_id).first()
        if leg is None:
            return False
        Batch.objects.select_for_update().get(pk=leg.batch_id)
        leg = Leg.objects.select_for_update().select_related("batch", "asset").get(pk=leg_id)
        if leg.status not in MATCHABLE_LEG or leg.movements.exists():
            return False
        movements = list(
            Movement.objects.select_for_update(of=("self",))
            .filter(pk__in=movement_ids, leg__isnull=True, status__in=LIVE)
            .select_related("account", "statement", "asset")
            .order_by("occurred_at", "id")
        )
        ok = (
            len(movements) == len(movement_ids)
            and sum((m.amount for m in movements), Decimal(0)) == leg.amount
            and all(
                m.asset_id == leg.asset_id
                and m.direction == leg.direction
                and m.counterparty_id == leg.batch.counterparty_id
                and m.occurred_at >= _instructed_at(leg) - tolerance()
                for m in movements
            )
        )
        if not ok:
            return False
        Movement.objects.filter(pk__in=movement_ids).update(leg=leg, matched_at=as_of)
        evidence = _evidence(movements, how)
        audit_record(
            actor=actor,
            action="movement.matched",
            object_type="Leg",
            object_id=leg.id,
            after={"movements": movement_ids, "matched_by": how},
            at=as_of,
        )
        for kind in (Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY):
            break_close_if_open(
                key=f"{kind}:leg:{leg.id}",
                note=f"resolved by matching: leg {leg.id} matched exactly by movement(s) {movement_ids}",
                actor=actor,
                at=as_of,
            )
        if all(m.status == Movement.Status.FINAL for m in movements):
            leg_confirm(leg_id=leg.id, evidence=evidence, actor=actor, as_of=as_of)
            result.confirmed.append(leg.id)
        else:
            leg_mark_confirming(leg_id=leg.id, evidence=evidence, actor=actor, as_of=as_of)
            result.confirming.append(leg.id)
        return True


def _finalise(*, as_of: datetime, actor: str, result: ReconcileResult) -> None:
    """Confirming legs whose linked movements have all become final."""
    pending = Movement.objects.filter(leg=OuterRef("pk")).exclude(status=Movement.Status.FINAL)
    legs = (
        Leg.objects.filter(status=Leg.Status.CONFIRMING, movements__isnull=False)
        .exclude(Exists(pending))
        .distinct()
        .order_by("id")
    )
    for leg in legs:
        movements = list(leg.movements.select_related("account", "statement", "asset").order_by("occurred_at", "id"))
        how = (leg.evidence or {}).get("matched_by", "one_to_one")
        try:
            leg_confirm(leg_id=leg.id, evidence=_evidence(movements, how), actor=actor, as_of=as_of)
        except Conflict:
            continue  # read without a lock: its batch failed meanwhile (leg_confirm re-checked under the lock)
        result.confirmed.append(leg.id)


# --- breaks that are not about one leg's amount ---------------------------------------------------


def _unmatched(*, as_of: datetime, actor: str, result: ReconcileResult) -> None:
    """Final movements in or out of home that no open leg can take."""
    for direction, kind in (
        (Movement.Direction.INBOUND, Break.Kind.UNMATCHED_RECEIPT),
        (Movement.Direction.OUTBOUND, Break.Kind.UNMATCHED_PAYMENT),
    ):
        open_leg = Leg.objects.filter(
            direction=direction,
            status__in=OPEN_LEG,
            asset_id=OuterRef("asset_id"),
            batch__counterparty_id=OuterRef("counterparty_id"),
            instructed_at__lte=OuterRef("occurred_at") + tolerance(),
        )
        movements = (
            Movement.objects.filter(status=Movement.Status.FINAL, leg__isnull=True, direction=direction)
            .exclude(Exists(open_leg))
            .exclude(breaks__kind=kind)
            .select_related("asset", "counterparty", "account")
            .order_by("id")
        )
        verb = "received from" if direction == Movement.Direction.INBOUND else "paid to"
        items = []
        for movement in movements:
            who = movement.counterparty.code if movement.counterparty else "an unregistered sender or receiver"
            where = movement.tx_hash or f"{movement.account.number if movement.account else ''} {movement.entry_ref}"
            items.append(
                NewBreak(
                    key=f"{kind}:movement:{movement.id}",
                    kind=kind,
                    asset_id=movement.asset_id,
                    amount=movement.amount,
                    description=f"{as_str(movement.amount)} {movement.asset.code} {verb} {who} ({where.strip()}) "
                    "matches no open leg",
                    counterparty_id=movement.counterparty_id,
                    movement_id=movement.id,
                )
            )
        with transaction.atomic():
            result.breaks.extend(b.id for b in breaks_open(items=items, actor=actor, at=as_of))


def _missing(*, as_of: datetime, actor: str, result: ReconcileResult) -> None:
    """Inbound legs past their deadline without a confirmation, on a rail
    that is up (a degraded or halted rail pauses deadlines)."""
    legs = (
        Leg.objects.filter(
            direction=Leg.Direction.INBOUND,
            status__in=[*OPEN_LEG, Leg.Status.FAILED],
            deadline__lt=as_of,
            asset__rail__status=Rail.Status.UP,
        )
        .exclude(breaks__kind=Break.Kind.MISSING_DELIVERY)
        .select_related("asset", "batch__counterparty")
        .order_by("id")
    )
    for leg in legs:
        delivered = sum((m.amount for m in Movement.objects.filter(leg=leg, status=Movement.Status.FINAL)), Decimal(0))
        with transaction.atomic():
            brk, changed = break_raise(
                key=f"{Break.Kind.MISSING_DELIVERY}:leg:{leg.id}",
                kind=Break.Kind.MISSING_DELIVERY,
                asset_id=leg.asset_id,
                amount=leg.amount - delivered,
                description=(
                    f"leg {leg.id}: {as_str(leg.amount)} {leg.asset.code} from {leg.batch.counterparty.code} "
                    f"not delivered by its deadline {leg.deadline.isoformat()}"
                ),
                actor=actor,
                at=as_of,
                counterparty_id=leg.batch.counterparty_id,
                leg_id=leg.id,
            )
        if changed:
            result.breaks.append(brk.id)
