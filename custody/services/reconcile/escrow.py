"""Escrow locks: a leg of an escrow batch is delivered not to home or the
counterparty but to the batch's escrow custodian, and it is ``locked`` when
a final movement of exactly its amount reaches that custodian's escrow
holder from the side that owes it: for an inbound leg a chain transfer from
one of the counterparty's registered wallets into the escrow wallet; for an
outbound leg a transfer from home's wallet into it, or a debit on home's
bank statement paid to the escrow account. The legs and movements are paired
in one SQL statement (the n-th leg with the n-th movement of the same asset,
custodian, sender and amount, each in time order), linked under the locks,
and the legs locked in bulk (``settlement.services.legs.legs_lock``), which
releases every batch whose legs are then all locked.

What the watcher cannot see (a bank transfer between two other parties into
the escrow account) comes as the custodian's report, confirmed by hand with
four eyes (``leg_confirm`` locks an escrow leg).

The release and return instructions the custodian carries out are seen the
same way (``escrow_payouts_seen``): the transfer out of the escrow wallet is
linked to its leg and the instruction is ``done``."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

from controls.services.audit import audit_record_many
from custody.models import Instruction, Movement
from registry.models import BankAccount, Operator, Wallet
from settlement.models import Batch, Leg
from settlement.services.legs import legs_lock

from .links import BATCH_T, LEG_T, MOVEMENT_T, _lock, evidence_of, movement_evidence, tolerance

WALLET_T, ACCOUNT_T = Wallet._meta.db_table, BankAccount._meta.db_table
INSTRUCTION_T = Instruction._meta.db_table


def escrow_pairs(*, home_id: int) -> list[tuple[int, int]]:
    """Instructed legs of open escrow batches paired with the final,
    unlinked movements into their escrow custodian's holders."""
    sql = f"""
        WITH legs AS (
            SELECT l.id, l.asset_id, l.amount, l.instructed_at, b.escrow_custodian_id AS custodian_id,
                   CASE WHEN l.direction = %s THEN b.counterparty_id ELSE %s END AS sender,
                   ROW_NUMBER() OVER (
                       PARTITION BY l.asset_id, b.escrow_custodian_id,
                                    CASE WHEN l.direction = %s THEN b.counterparty_id ELSE %s END, l.amount
                       ORDER BY l.instructed_at, l.id) AS rn
            FROM {LEG_T} l JOIN {BATCH_T} b ON b.id = l.batch_id
            WHERE l.status = %s AND b.status = %s AND b.dvp_policy = %s AND b.escrow_custodian_id IS NOT NULL
              AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
        ), arrivals AS (
            SELECT m.id, m.asset_id, m.amount, m.occurred_at, holder.custodian_id, sender.operator_id AS sender
            FROM {MOVEMENT_T} m
            JOIN {WALLET_T} holder ON holder.id = m.to_wallet_id AND holder.escrow
            JOIN {WALLET_T} sender ON sender.id = m.from_wallet_id AND NOT sender.escrow
            WHERE m.leg_id IS NULL AND m.status = %s AND m.source = %s
            UNION ALL
            SELECT m.id, m.asset_id, m.amount, m.occurred_at, holder.escrow_custodian_id, %s
            FROM {MOVEMENT_T} m
            JOIN {ACCOUNT_T} holder ON holder.rail_id = m.rail_id AND holder.number = m.counterparty_account
                 AND holder.escrow_custodian_id IS NOT NULL
            WHERE m.leg_id IS NULL AND m.status = %s AND m.source = %s AND m.direction = %s
        ), moves AS (
            SELECT arrivals.*, ROW_NUMBER() OVER (
                       PARTITION BY asset_id, custodian_id, sender, amount ORDER BY occurred_at, id) AS rn
            FROM arrivals
            WHERE (asset_id, custodian_id, sender, amount) IN (SELECT asset_id, custodian_id, sender, amount FROM legs)
        )
        SELECT legs.id, moves.id FROM legs JOIN moves
          ON moves.asset_id = legs.asset_id AND moves.custodian_id = legs.custodian_id
         AND moves.sender = legs.sender AND moves.amount = legs.amount AND moves.rn = legs.rn
         AND moves.occurred_at >= legs.instructed_at - make_interval(secs => %s)
        ORDER BY legs.instructed_at, legs.id
    """
    inbound = Leg.Direction.INBOUND
    params: list[str | int | float] = [
        inbound,
        home_id,
        inbound,
        home_id,
        Leg.Status.INSTRUCTED,
        Batch.Status.OPEN,
        Operator.DvpPolicy.ESCROW,
        Movement.Status.FINAL,
        Movement.Source.CHAIN,
        home_id,
        Movement.Status.FINAL,
        Movement.Source.BANK,
        Movement.Direction.OUTBOUND,
        tolerance().total_seconds(),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def escrow_locks(*, as_of: datetime, actor: str, result) -> list[int]:
    """Lock every escrow leg whose delivery reached the escrow custodian;
    returns the legs locked (``result.confirmed`` is not touched: a lock is
    not a confirmation)."""
    home_id = Operator.objects.filter(role=Operator.Role.HOME).values_list("id", flat=True).first()
    if (
        home_id is None
        or not Batch.objects.filter(status=Batch.Status.OPEN, dvp_policy=Operator.DvpPolicy.ESCROW).exists()
    ):
        return []  # no open escrow batch (a few rows): the legs table is not read
    pairs = escrow_pairs(home_id=home_id)
    if not pairs:
        return []
    leg_ids = sorted({leg for leg, _ in pairs})
    movement_ids = sorted({movement for _, movement in pairs})
    with transaction.atomic():
        batch_ids = sorted(set(Leg.objects.filter(pk__any=leg_ids).values_list("batch_id", flat=True)))
        _lock(BATCH_T, batch_ids)
        _lock(LEG_T, leg_ids)
        _lock(MOVEMENT_T, movement_ids)
        # re-checked under the locks: the leg still instructed with nothing
        # linked, the movement still unlinked and final
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                UPDATE {MOVEMENT_T} m SET leg_id = pair.leg_id, matched_at = %s
                FROM unnest(%s::bigint[], %s::bigint[]) AS pair(leg_id, movement_id), {LEG_T} l
                WHERE m.id = pair.movement_id AND l.id = pair.leg_id AND l.status = %s
                  AND m.leg_id IS NULL AND m.status = %s
                  AND NOT EXISTS (SELECT 1 FROM {MOVEMENT_T} x WHERE x.leg_id = l.id)
                RETURNING pair.leg_id, m.id
                """,
                [
                    as_of,
                    [leg for leg, _ in pairs],
                    [movement for _, movement in pairs],
                    Leg.Status.INSTRUCTED,
                    Movement.Status.FINAL,
                ],
            )
            linked = dict(cursor.fetchall())
        if not linked:
            return []
        movements = movement_evidence(list(linked.values()))
        evidence = {leg: evidence_of([movements[movement]], "escrow_lock") for leg, movement in linked.items()}
        locked = legs_lock(evidence=evidence, actor=actor, as_of=as_of)
    result.locked.extend(locked)
    return locked


def escrow_payouts_seen(*, as_of: datetime, actor: str) -> list[int]:
    """Release and return instructions carried out: a final chain transfer of
    exactly the instruction's amount and asset from its escrow wallet to the
    wallet it names completes it (``done``, the movement linked to the
    leg), so what the custodian paid out is neither an unmatched receipt nor
    an instruction still due. Paired in one statement, n-th with n-th in
    time order; the rows are locked and re-checked. Returns the instructions
    done."""
    kinds = (Instruction.Kind.RELEASE, Instruction.Kind.RETURN)
    if not Instruction.objects.filter(kind__in=kinds, status__in=Instruction.OPEN).exists():
        return []
    sql = f"""
        WITH due AS (
            SELECT i.id, i.leg_id, i.asset_id, i.amount, i.from_ref, i.to_ref,
                   ROW_NUMBER() OVER (PARTITION BY i.asset_id, i.from_ref, i.to_ref, i.amount
                                      ORDER BY i.created_at, i.id) AS rn
            FROM {INSTRUCTION_T} i
            WHERE i.kind IN (%s, %s) AND i.status IN (%s, %s)
        ), paid AS (
            SELECT m.id, m.asset_id, m.amount, m.from_address, m.to_address,
                   ROW_NUMBER() OVER (PARTITION BY m.asset_id, m.from_address, m.to_address, m.amount
                                      ORDER BY m.occurred_at, m.id) AS rn
            FROM {MOVEMENT_T} m JOIN {WALLET_T} holder ON holder.id = m.from_wallet_id AND holder.escrow
            WHERE m.leg_id IS NULL AND m.status = %s AND m.source = %s
        )
        SELECT due.id, due.leg_id, paid.id FROM due JOIN paid
          ON paid.asset_id = due.asset_id AND paid.from_address = due.from_ref AND paid.to_address = due.to_ref
         AND paid.amount = due.amount AND paid.rn = due.rn
        ORDER BY due.id
    """
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                Instruction.Kind.RELEASE,
                Instruction.Kind.RETURN,
                *Instruction.OPEN,
                Movement.Status.FINAL,
                Movement.Source.CHAIN,
            ],
        )
        rows = cursor.fetchall()
    if not rows:
        return []
    done = []
    with transaction.atomic():
        _lock(INSTRUCTION_T, sorted(i for i, _, _ in rows))
        _lock(MOVEMENT_T, sorted(m for _, _, m in rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                WITH pair AS (SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[])
                              AS p(instruction_id, leg_id, movement_id)),
                linked AS (
                    UPDATE {MOVEMENT_T} m SET leg_id = pair.leg_id, matched_at = %s
                    FROM pair, {INSTRUCTION_T} i
                    WHERE m.id = pair.movement_id AND i.id = pair.instruction_id
                      AND m.leg_id IS NULL AND i.status IN (%s, %s)
                    RETURNING pair.instruction_id
                )
                UPDATE {INSTRUCTION_T} i SET status = %s, closed_at = %s
                FROM linked WHERE i.id = linked.instruction_id
                RETURNING i.id, i.status
                """,
                [
                    [i for i, _, _ in rows],
                    [leg for _, leg, _ in rows],
                    [m for _, _, m in rows],
                    as_of,
                    *Instruction.OPEN,
                    Instruction.Status.DONE,
                    as_of,
                ],
            )
            done = [instruction_id for instruction_id, _ in cursor.fetchall()]
        movement_of = {i: m for i, _, m in rows}
        audit_record_many(
            [
                {
                    "actor": actor,
                    "action": "instruction.done",
                    "object_type": "Instruction",
                    "object_id": instruction_id,
                    "after": {"status": Instruction.Status.DONE, "movement": movement_of[instruction_id]},
                    "at": as_of,
                }
                for instruction_id in done
            ]
        )
    return done
