"""Linking movements to legs: the set-based one-to-one pass, the per-leg
pass for hints and many-to-one, and confirming legs whose linked movements
became final.

The one-to-one pass is the common path and runs in a fixed number of
statements whatever the number of legs: one statement pairs legs and
movements, locks are taken in bulk (batches, then legs, then movements: the
order ``leg_confirm`` uses), one statement re-checks every pair under the
locks, one links the movements, and the legs move on in bulk
(``legs_confirm`` / ``legs_mark_confirming``). Only legs the pairing leaves
(hinted ones, many-to-one, deliveries that do not add up) are looked at one
by one.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from controls.services.audit import audit_record_many
from custody.models import Break, Movement
from custody.selectors import amount_str
from registry.models import Asset
from settlement.models import Batch, Delivery, Leg
from settlement.services.legs import legs_confirm, legs_mark_confirming

from ..breaks import break_close_if_open

ACTOR = "custody:matcher"
LIVE = (Movement.Status.SEEN, Movement.Status.FINAL)
MATCHABLE_LEG = (Leg.Status.INSTRUCTED,)
OPEN_LEG = (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING)
DELIVERY_BREAKS = (Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY)

LEG_T, BATCH_T, MOVEMENT_T = Leg._meta.db_table, Batch._meta.db_table, Movement._meta.db_table


def tolerance() -> timedelta:
    """How long before a leg's instruction a movement may be timed and still
    match it: block times have a granularity (1 s; a 12 s slot on Ethereum)
    and the node's clock is not ours."""
    return timedelta(seconds=int(getattr(settings, "CUSTODY_MATCH_TOLERANCE_SECONDS", 60)))


def instructed_at(leg: Leg) -> datetime:
    """Matchable legs are instructed, so they carry the time they were."""
    assert leg.instructed_at is not None, f"leg {leg.id} is matchable but was never instructed"
    return leg.instructed_at


# --- the one-to-one pass, set-based ------------------------------------------------------------


def one_to_one_pairs(*, exclude_legs: set[int]) -> list[tuple[int, int]]:
    """Legs and movements paired one-to-one in SQL: the n-th open leg of an
    (asset, counterparty, direction, amount) with the n-th unlinked movement
    of the same, each in time order. ``one_to_one_link`` re-checks each pair
    under the locks (the movement must come after the leg was instructed); a
    leg whose pair fails goes on to the per-leg pass."""
    sql = f"""
        WITH legs AS (
            SELECT l.id, l.asset_id, b.counterparty_id, l.direction, l.amount, l.instructed_at,
                   ROW_NUMBER() OVER (PARTITION BY l.asset_id, b.counterparty_id, l.direction, l.amount
                                      ORDER BY l.instructed_at, l.id) AS rn
            FROM {LEG_T} l JOIN {BATCH_T} b ON b.id = l.batch_id
            WHERE l.status = %s AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
        ), moves AS (
            SELECT m.id, m.asset_id, m.counterparty_id, m.direction, m.amount, m.occurred_at,
                   ROW_NUMBER() OVER (PARTITION BY m.asset_id, m.counterparty_id, m.direction, m.amount
                                      ORDER BY m.occurred_at, m.id) AS rn
            FROM {MOVEMENT_T} m
            WHERE m.leg_id IS NULL AND m.status IN (%s, %s) AND m.direction IN (%s, %s)
              AND m.counterparty_id IS NOT NULL
              AND (m.asset_id, m.counterparty_id, m.direction, m.amount) IN (
                  SELECT asset_id, counterparty_id, direction, amount FROM legs)
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


def _lock(table: str, ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])


def one_to_one_link(*, exclude_legs: set[int], as_of: datetime, actor: str, result) -> int:
    """Link every one-to-one pair at once and move the legs on: confirmed
    when the movement is final, confirming while it is only seen. Returns
    the number of legs linked."""
    pairs = one_to_one_pairs(exclude_legs=exclude_legs)
    if not pairs:
        return 0
    with transaction.atomic():
        leg_ids = sorted(leg for leg, _ in pairs)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT batch_id FROM {LEG_T} WHERE id = ANY(%s)", [leg_ids])
            batch_ids = sorted(row[0] for row in cursor.fetchall())
        _lock(BATCH_T, batch_ids)
        _lock(LEG_T, leg_ids)
        _lock(MOVEMENT_T, sorted(movement for _, movement in pairs))
        with connection.cursor() as cursor:
            # every pair again, now under the locks: the leg still instructed
            # with nothing linked, the movement still unlinked and live, and
            # the same asset, direction, counterparty and amount, after the
            # leg was instructed
            cursor.execute(
                f"""
                WITH pair AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS p(leg_id, movement_id)),
                valid AS (
                    SELECT pair.leg_id, pair.movement_id FROM pair
                    JOIN {LEG_T} l ON l.id = pair.leg_id
                    JOIN {BATCH_T} b ON b.id = l.batch_id
                    JOIN {MOVEMENT_T} m ON m.id = pair.movement_id
                    WHERE l.status = %s AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
                      AND m.leg_id IS NULL AND m.status IN (%s, %s)
                      AND m.asset_id = l.asset_id AND m.direction = l.direction
                      AND m.counterparty_id = b.counterparty_id AND m.amount = l.amount
                      AND m.occurred_at >= l.instructed_at - %s
                )
                UPDATE {MOVEMENT_T} m SET leg_id = valid.leg_id, matched_at = %s
                FROM valid WHERE m.id = valid.movement_id
                RETURNING m.leg_id, m.id
                """,
                [
                    [leg for leg, _ in pairs],
                    [movement for _, movement in pairs],
                    Leg.Status.INSTRUCTED,
                    *LIVE,
                    tolerance(),
                    as_of,
                ],
            )
            linked = {leg_id: [movement_id] for leg_id, movement_id in cursor.fetchall()}
        if not linked:
            return 0
        _move_on(linked=linked, how="one_to_one", as_of=as_of, actor=actor, result=result)
        return len(linked)


def _move_on(*, linked: dict[int, list[int]], how: str, as_of: datetime, actor: str, result) -> None:
    """After movements were linked: the audit trail, the delivery breaks
    the match resolves, then the legs confirmed or confirming in bulk."""
    movements = movement_evidence([m for ids in linked.values() for m in ids])
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "movement.matched",
                "object_type": "Leg",
                "object_id": leg_id,
                "after": {"movements": ids, "matched_by": how},
                "at": as_of,
            }
            for leg_id, ids in linked.items()
        ]
    )
    _delivery_breaks_resolve(linked=linked, actor=actor, at=as_of)
    final, seen = {}, {}
    for leg_id, ids in linked.items():
        items = [movements[m] for m in ids]
        evidence = _evidence(items, how)
        if all(item["status"] == Movement.Status.FINAL for item in items):
            final[leg_id] = evidence
        else:
            seen[leg_id] = evidence
    result.confirmed.extend(legs_confirm(evidence=final, actor=actor, as_of=as_of))
    result.confirming.extend(legs_mark_confirming(evidence=seen, actor=actor, as_of=as_of))


def _delivery_breaks_resolve(*, linked: dict[int, list[int]], actor: str, at: datetime) -> None:
    keys = [f"{kind}:leg:{leg_id}" for leg_id in linked for kind in DELIVERY_BREAKS]
    open_keys = Break.objects.filter(key__in=keys, status__in=Break.UNRESOLVED).values_list("key", flat=True)
    for key in sorted(open_keys):
        leg_id = int(key.rsplit(":", 1)[1])
        break_close_if_open(
            key=key,
            note=f"resolved by matching: leg {leg_id} matched exactly by movement(s) {linked[leg_id]}",
            actor=actor,
            at=at,
        )


# --- evidence ------------------------------------------------------------------------------------

_EVIDENCE_FIELDS = (
    "id",
    "source",
    "status",
    "amount",
    "asset__scale",
    "chain_id",
    "tx_hash",
    "log_index",
    "block_number",
    "block_hash",
    "from_address",
    "to_address",
    "account__number",
    "statement__statement_ref",
    "entry_ref",
    "bank_reference",
    "booking_date",
    "occurred_at",
)


def movement_evidence(ids: list[int]) -> dict[int, dict]:
    """What a leg's evidence says about each movement, read in one query."""
    return {row["id"]: row for row in Movement.objects.filter(pk__in=ids).values(*_EVIDENCE_FIELDS)}


def _evidence(movements: Sequence[dict], how: str) -> dict:
    """The evidence of a match, movements in the order they occurred."""
    ordered = sorted(movements, key=lambda m: (m["occurred_at"], m["id"]))
    if ordered[0]["source"] == Movement.Source.CHAIN:
        items = [
            {
                "chain_id": m["chain_id"],
                "tx_hash": m["tx_hash"],
                "log_index": m["log_index"],
                "block_number": m["block_number"],
                "block_hash": m["block_hash"],
                "from": m["from_address"],
                "to": m["to_address"],
                "amount": amount_str(m["amount"], Asset(scale=m["asset__scale"])),
                "status": m["status"],
            }
            for m in ordered
        ]
        return {"source": "chain", "matched_by": how, "movements": items}
    items = [
        {
            "account": m["account__number"],
            "statement": m["statement__statement_ref"],
            "entry_ref": m["entry_ref"],
            "bank_reference": m["bank_reference"],
            "booking_date": m["booking_date"].isoformat() if m["booking_date"] else None,
            "amount": amount_str(m["amount"], Asset(scale=m["asset__scale"])),
            "status": m["status"],
        }
        for m in ordered
    ]
    return {"source": "bank", "matched_by": how, "movements": items}


# --- one leg at a time: hints, many-to-one -------------------------------------------------------


def candidates(leg: Leg) -> tuple[list[Movement], list[Movement]]:
    """Unlinked live movements a leg may match, hinted ones first."""
    base = Movement.objects.filter(
        leg__isnull=True,
        status__in=LIVE,
        direction=leg.direction,
        asset_id=leg.asset_id,
        counterparty_id=leg.batch.counterparty_id,
        occurred_at__gte=instructed_at(leg) - tolerance(),
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


def pending_legs() -> list[int]:
    """Matchable legs with nothing linked that still have candidates: what
    the one-to-one pass left."""
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


def match_leg(*, leg_id: int, as_of: datetime, actor: str, result) -> None:
    from .deliveries import delivery_breaks

    leg = Leg.objects.select_related("batch").filter(pk=leg_id, status__in=MATCHABLE_LEG).first()
    if leg is None or leg.movements.exists():
        return
    hinted, rest = candidates(leg)
    ordered = hinted + rest
    chosen = exact_set(leg.amount, hinted) or exact_set(leg.amount, ordered)
    if chosen:
        how = "hint" if all(m in hinted for m in chosen) else ("one_to_one" if len(chosen) == 1 else "many_to_one")
        _link(leg_id=leg.id, movement_ids=[m.id for m in chosen], how=how, as_of=as_of, actor=actor, result=result)
        return
    if leg.direction == Leg.Direction.INBOUND:
        delivery_breaks(leg=leg, candidates=ordered, as_of=as_of, actor=actor, result=result)


def exact_set(amount: Decimal, movements: Sequence[Movement]) -> list[Movement]:
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


def _link(*, leg_id: int, movement_ids: list[int], how: str, as_of: datetime, actor: str, result) -> bool:
    """Link movements to one leg and move the leg on: confirming while any
    is only seen, confirmed when all are final. Re-checks everything under
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
            .order_by("occurred_at", "id")
        )
        ok = (
            len(movements) == len(movement_ids)
            and sum((m.amount for m in movements), Decimal(0)) == leg.amount
            and all(
                m.asset_id == leg.asset_id
                and m.direction == leg.direction
                and m.counterparty_id == leg.batch.counterparty_id
                and m.occurred_at >= instructed_at(leg) - tolerance()
                for m in movements
            )
        )
        if not ok:
            return False
        Movement.objects.filter(pk__in=movement_ids).update(leg=leg, matched_at=as_of)
        _move_on(linked={leg.id: movement_ids}, how=how, as_of=as_of, actor=actor, result=result)
        return True


# --- legs whose movements became final -----------------------------------------------------------


def finalise(*, as_of: datetime, actor: str, result) -> None:
    """Confirming legs whose linked movements have all become final, in bulk."""
    pending = Movement.objects.filter(leg=OuterRef("pk")).exclude(status=Movement.Status.FINAL)
    legs = dict(
        Leg.objects.filter(status=Leg.Status.CONFIRMING, movements__isnull=False)
        .exclude(Exists(pending))
        .distinct()
        .values_list("id", "evidence")
    )
    if not legs:
        return
    linked: dict[int, list[int]] = {}
    for leg_id, movement_id in Movement.objects.filter(leg_id__in=list(legs)).values_list("leg_id", "id"):
        linked.setdefault(leg_id, []).append(movement_id)
    movements = movement_evidence([m for ids in linked.values() for m in ids])
    evidence = {
        leg_id: _evidence([movements[m] for m in ids], (legs[leg_id] or {}).get("matched_by", "one_to_one"))
        for leg_id, ids in linked.items()
    }
    result.confirmed.extend(legs_confirm(evidence=evidence, actor=actor, as_of=as_of))
