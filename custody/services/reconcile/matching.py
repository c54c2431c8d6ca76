"""Choosing which movements settle which leg: the one-to-one pass, the
pass for what it leaves (many-to-one, short and over deliveries), hinted
legs, and confirming legs whose linked movements became final.

Both passes run in a fixed number of statements whatever the number of
legs: the one-to-one pass pairs legs and movements in one SQL statement; the
pass after it reads the remaining legs and all their candidates in two
queries and chooses in Python, leg by leg in instruction order, from what
the legs before it left. Either way the links are applied in bulk
(``links.links_apply``). Only hinted legs (a counterparty named the
transfer) and breaks are handled one leg at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple, Protocol, TypeVar

from django.db import connection
from django.db.models import Exists, OuterRef, Q

from custody.models import Movement
from registry.models import Operator
from settlement.models import Delivery, Leg
from settlement.services.legs import legs_confirm

from .links import BATCH_T, LEG_T, LIVE, MOVEMENT_T, evidence_of, links_apply, movement_evidence, tolerance
from .scope import settlement_movements, settlement_movements_sql

ACTOR = "custody:matcher"
MATCHABLE_LEG = (Leg.Status.INSTRUCTED,)
OPEN_LEG = (Leg.Status.INSTRUCTED, Leg.Status.CONFIRMING)


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
    elsewhere, elsewhere_params = settlement_movements_sql("m")
    sql = f"""
        WITH legs AS (
            SELECT l.id, l.asset_id, b.counterparty_id, l.direction, l.amount, l.instructed_at,
                   ROW_NUMBER() OVER (PARTITION BY l.asset_id, b.counterparty_id, l.direction, l.amount
                                      ORDER BY l.instructed_at, l.id) AS rn
            FROM {LEG_T} l JOIN {BATCH_T} b ON b.id = l.batch_id
            WHERE l.status = %s AND b.dvp_policy <> %s
              AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
        ), moves AS (
            SELECT m.id, m.asset_id, m.counterparty_id, m.direction, m.amount, m.occurred_at,
                   ROW_NUMBER() OVER (PARTITION BY m.asset_id, m.counterparty_id, m.direction, m.amount
                                      ORDER BY m.occurred_at, m.id) AS rn
            FROM {MOVEMENT_T} m
            WHERE m.leg_id IS NULL AND m.status IN (%s, %s) AND m.direction IN (%s, %s)
              AND m.counterparty_id IS NOT NULL
              AND {elsewhere}
              AND (m.asset_id, m.counterparty_id, m.direction, m.amount) IN (
                  SELECT asset_id, counterparty_id, direction, amount FROM legs)
        )
        SELECT legs.id, moves.id FROM legs JOIN moves
          ON moves.asset_id = legs.asset_id AND moves.counterparty_id = legs.counterparty_id
         AND moves.direction = legs.direction AND moves.amount = legs.amount AND moves.rn = legs.rn
        ORDER BY legs.instructed_at, legs.id
    """
    params = [
        Leg.Status.INSTRUCTED,
        Operator.DvpPolicy.ESCROW,  # an escrow leg is locked at its custodian (``escrow``), never delivered to us
        *LIVE,
        Movement.Direction.INBOUND,
        Movement.Direction.OUTBOUND,
        *elsewhere_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(leg_id, movement_id) for leg_id, movement_id in cursor.fetchall() if leg_id not in exclude_legs]


def one_to_one_link(*, exclude_legs: set[int], as_of: datetime, actor: str, result) -> int:
    """Link every one-to-one pair at once (``links_apply``). Returns the
    number of legs linked."""
    pairs = one_to_one_pairs(exclude_legs=exclude_legs)
    chosen = {leg: [movement] for leg, movement in pairs}
    return links_apply(chosen=chosen, how=dict.fromkeys(chosen, "one_to_one"), as_of=as_of, actor=actor, result=result)


# --- one leg at a time: hints, many-to-one -------------------------------------------------------


def candidates(leg: Leg) -> tuple[list[Movement], list[Movement]]:
    """Unlinked live movements a leg may match, hinted ones first."""
    base = Movement.objects.filter(
        settlement_movements(),
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


class _Candidate(NamedTuple):
    id: int
    amount: Decimal
    occurred_at: datetime
    status: str


def pending_link(*, exclude_legs: set[int], as_of: datetime, actor: str, result) -> int:
    """What the one-to-one pass left: matchable legs with nothing linked that
    have candidates, in instruction order, each taking one movement of
    exactly its amount or the shortest run of candidates in time order that
    adds up to it (many-to-one), from what the legs before it left. Two
    queries read the legs and every candidate; the links are applied in bulk
    (``links_apply``); an inbound leg whose final candidates do not add up
    gets its short or over delivery break. Returns the number linked."""
    movement = Movement.objects.filter(
        settlement_movements(),
        leg__isnull=True,
        status__in=LIVE,
        direction=OuterRef("direction"),
        asset_id=OuterRef("asset_id"),
        counterparty_id=OuterRef("batch__counterparty_id"),
        occurred_at__gte=OuterRef("instructed_at") - tolerance(),
    )
    legs = list(
        Leg.objects.filter(status__in=MATCHABLE_LEG, movements__isnull=True)
        .exclude(pk__in=exclude_legs)
        .exclude(batch__dvp_policy=Operator.DvpPolicy.ESCROW)
        .filter(Exists(movement))
        .order_by("instructed_at", "id")
        .values_list("id", "asset_id", "batch__counterparty_id", "direction", "amount", "instructed_at")
    )
    if not legs:
        return 0
    groups: dict[tuple, list[_Candidate]] = {}
    rows = (
        Movement.objects.filter(
            settlement_movements(),
            leg__isnull=True,
            status__in=LIVE,
            direction__in=sorted({leg[3] for leg in legs}),
            asset_id__in=sorted({leg[1] for leg in legs}),
            counterparty_id__in=sorted({leg[2] for leg in legs}),
        )
        .order_by("occurred_at", "id")
        .values_list("asset_id", "counterparty_id", "direction", "id", "amount", "occurred_at", "status")
    )
    for asset_id, counterparty_id, direction, movement_id, movement_amount, occurred_at, status in rows:
        candidate = _Candidate(movement_id, movement_amount, occurred_at, status)
        groups.setdefault((asset_id, counterparty_id, direction), []).append(candidate)
    taken: set[int] = set()
    chosen: dict[int, list[int]] = {}
    how: dict[int, str] = {}
    short_or_over: list[tuple[int, list[int]]] = []
    for leg_id, asset_id, counterparty_id, direction, amount, leg_instructed_at in legs:
        assert leg_instructed_at is not None, f"leg {leg_id} is matchable but was never instructed"
        earliest = leg_instructed_at - tolerance()
        candidates = [
            m
            for m in groups.get((asset_id, counterparty_id, direction), ())
            if m.id not in taken and m.occurred_at >= earliest
        ]
        run = exact_set(amount, candidates)
        if run:
            chosen[leg_id] = [m.id for m in run]
            how[leg_id] = "one_to_one" if len(run) == 1 else "many_to_one"
            taken.update(chosen[leg_id])
        elif (
            direction == Leg.Direction.INBOUND
            and candidates
            and all(m.status == Movement.Status.FINAL for m in candidates)
        ):
            short_or_over.append((leg_id, [m.id for m in candidates]))
    linked = links_apply(chosen=chosen, how=how, as_of=as_of, actor=actor, result=result)
    if short_or_over:
        from .deliveries import delivery_breaks

        for leg_id, ids in short_or_over:
            leg = Leg.objects.select_related("batch__counterparty", "asset").get(pk=leg_id)
            found = list(Movement.objects.filter(pk__in=ids, leg__isnull=True).order_by("occurred_at", "id"))
            delivery_breaks(leg=leg, candidates=found, as_of=as_of, actor=actor, result=result)
    return linked


def match_leg(*, leg_id: int, as_of: datetime, actor: str, result) -> None:
    from .deliveries import delivery_breaks

    leg = (
        Leg.objects.select_related("batch")
        .filter(pk=leg_id, status__in=MATCHABLE_LEG)
        .exclude(batch__dvp_policy=Operator.DvpPolicy.ESCROW)
        .first()
    )
    if leg is None or leg.movements.exists():
        return
    hinted, rest = candidates(leg)
    ordered = hinted + rest
    chosen = exact_set(leg.amount, hinted) or exact_set(leg.amount, ordered)
    if chosen:
        how = "hint" if all(m in hinted for m in chosen) else ("one_to_one" if len(chosen) == 1 else "many_to_one")
        links_apply(chosen={leg.id: [m.id for m in chosen]}, how={leg.id: how}, as_of=as_of, actor=actor, result=result)
        return
    if leg.direction == Leg.Direction.INBOUND:
        delivery_breaks(leg=leg, candidates=ordered, as_of=as_of, actor=actor, result=result)


class _HasAmount(Protocol):
    @property
    def amount(self) -> Decimal: ...


_M = TypeVar("_M", bound=_HasAmount)


def exact_set(amount: Decimal, movements: Sequence[_M]) -> list[_M]:
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
    for leg_id, movement_id in Movement.objects.filter(leg_id__any=list(legs)).values_list("leg_id", "id"):
        linked.setdefault(leg_id, []).append(movement_id)
    movements = movement_evidence([m for ids in linked.values() for m in ids])
    evidence = {
        leg_id: evidence_of([movements[m] for m in ids], (legs[leg_id] or {}).get("matched_by", "one_to_one"))
        for leg_id, ids in linked.items()
    }
    result.confirmed.extend(legs_confirm(evidence=evidence, actor=actor, as_of=as_of))
