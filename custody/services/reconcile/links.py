"""Applying matches: linking the chosen movements to their legs in bulk,
under locks, with the evidence and audit trail, and moving the legs (and
the batches they complete) on."""

from __future__ import annotations

import functools
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction

from controls.services.audit import audit_record_many
from custody.models import Break, Movement
from custody.selectors import amount_str
from registry.models import Asset
from settlement.models import Batch, Leg
from settlement.services.legs import batches_advance, legs_confirm, legs_mark_confirming

from ..breaks import break_close_if_open

LIVE = (Movement.Status.SEEN, Movement.Status.FINAL)
DELIVERY_BREAKS = (Break.Kind.SHORT_DELIVERY, Break.Kind.OVER_DELIVERY)
LEG_T, BATCH_T, MOVEMENT_T = Leg._meta.db_table, Batch._meta.db_table, Movement._meta.db_table


def tolerance() -> timedelta:
    """How long before a leg's instruction a movement may be timed and still
    match it: block times have a granularity (1 s; a 12 s slot on Ethereum)
    and the node's clock is not ours."""
    return timedelta(seconds=int(getattr(settings, "CUSTODY_MATCH_TOLERANCE_SECONDS", 60)))


def _lock(table: str, ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {table} WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [ids])


def links_apply(*, chosen: dict[int, list[int]], how: dict[int, str], as_of: datetime, actor: str, result) -> int:
    """Link the movements chosen for each leg and move the legs on, all at
    once: confirmed when every movement is final, confirming while any is
    only seen. Locks the batches, then the legs, then the movements (id
    order; the order ``leg_confirm`` uses) and re-checks every leg under the
    locks in one statement: still instructed with nothing linked, each
    movement still unlinked and live, of the leg's asset, direction and
    counterparty, after the leg was instructed, adding up to the leg. A leg
    that fails the check is left for the next run. Returns the number of
    legs linked."""
    if not chosen:
        return 0
    leg_ids = [leg for leg, movements in chosen.items() for _ in movements]
    movement_ids = [m for movements in chosen.values() for m in movements]
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT DISTINCT batch_id FROM {LEG_T} WHERE id = ANY(%s)", [sorted(chosen)])
            batch_ids = sorted(row[0] for row in cursor.fetchall())
        _lock(BATCH_T, batch_ids)
        _lock(LEG_T, sorted(chosen))
        _lock(MOVEMENT_T, sorted(movement_ids))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH pair AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[]) AS p(leg_id, movement_id)),
                valid AS (
                    SELECT pair.leg_id FROM pair
                    JOIN {LEG_T} l ON l.id = pair.leg_id
                    JOIN {BATCH_T} b ON b.id = l.batch_id
                    JOIN {MOVEMENT_T} m ON m.id = pair.movement_id
                    GROUP BY pair.leg_id, l.amount
                    HAVING sum(m.amount) = l.amount AND bool_and(
                        l.status = %s AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
                        AND m.leg_id IS NULL AND m.status IN (%s, %s)
                        AND m.asset_id = l.asset_id AND m.direction = l.direction
                        AND m.counterparty_id = b.counterparty_id
                        AND m.occurred_at >= l.instructed_at - make_interval(secs => %s))
                )
                UPDATE {MOVEMENT_T} m SET leg_id = pair.leg_id, matched_at = %s
                FROM pair WHERE m.id = pair.movement_id AND pair.leg_id IN (SELECT leg_id FROM valid)
                RETURNING m.leg_id, m.id
                """,
                [leg_ids, movement_ids, Leg.Status.INSTRUCTED, *LIVE, tolerance().total_seconds(), as_of],
            )
            linked: dict[int, list[int]] = {}
            for leg_id, movement_id in cursor.fetchall():
                linked.setdefault(leg_id, []).append(movement_id)
        if linked:
            _move_on(linked=linked, how=how, as_of=as_of, actor=actor, result=result)
        return len(linked)


def _move_on(*, linked: dict[int, list[int]], how: dict[int, str], as_of: datetime, actor: str, result) -> None:
    """After movements were linked: the audit trail, the delivery breaks
    the match resolves, the legs confirmed or confirming in bulk, then the
    batches they complete (timed apart in ``result.timings["batches"]``)."""
    movements = movement_evidence([m for ids in linked.values() for m in ids])
    audit_record_many(
        [
            {
                "actor": actor,
                "action": "movement.matched",
                "object_type": "Leg",
                "object_id": leg_id,
                "after": {"movements": ids, "matched_by": how[leg_id]},
                "at": as_of,
            }
            for leg_id, ids in linked.items()
        ]
    )
    _delivery_breaks_resolve(linked=linked, actor=actor, at=as_of)
    final, seen = {}, {}
    for leg_id, ids in linked.items():
        items = [movements[m] for m in ids]
        evidence = evidence_of(items, how[leg_id])
        if all(item["status"] == Movement.Status.FINAL for item in items):
            final[leg_id] = evidence
        else:
            seen[leg_id] = evidence
    confirmed = legs_confirm(evidence=final, actor=actor, as_of=as_of, advance=False)
    result.confirmed.extend(confirmed)
    result.confirming.extend(legs_mark_confirming(evidence=seen, actor=actor, as_of=as_of))
    if confirmed:
        started = time.perf_counter()
        batch_ids = sorted(set(Leg.objects.filter(pk__any=confirmed).values_list("batch_id", flat=True)))
        batches_advance(batch_ids=batch_ids, as_of=as_of, actor=actor)
        result.timings["batches"] = result.timings.get("batches", 0.0) + time.perf_counter() - started


def _delivery_breaks_resolve(*, linked: dict[int, list[int]], actor: str, at: datetime) -> None:
    """Short or over deliveries on the legs just matched exactly: resolved."""
    open_keys = Break.objects.filter(
        leg_id__any=list(linked), kind__in=DELIVERY_BREAKS, status__in=Break.UNRESOLVED
    ).values_list("key", "leg_id")
    for key, leg_id in sorted(open_keys):
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
    return {row["id"]: row for row in Movement.objects.filter(pk__any=ids).values(*_EVIDENCE_FIELDS)}


@functools.cache
def _scaled(scale: int) -> Asset:
    """An unsaved asset of that scale: what ``amount_str`` reads."""
    return Asset(scale=scale)


def evidence_of(movements: Sequence[dict], how: str) -> dict:
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
                "amount": amount_str(m["amount"], _scaled(m["asset__scale"])),
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
            "amount": amount_str(m["amount"], _scaled(m["asset__scale"])),
            "status": m["status"],
        }
        for m in ordered
    ]
    return {"source": "bank", "matched_by": how, "movements": items}
