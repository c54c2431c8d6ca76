"""Breaks: reconciliation differences that a person owns until resolved.

The reconciliation services open breaks (one per cause, by ``key``), change
their amount while the cause changes, and close them when the cause goes
away on its own (a short delivery topped up). Operations take a break
(``investigating``, with an owner) and resolve it with a note. Every change
is a ``BreakEvent`` and an audit event; a resolved break keeps its history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import IntegrityError, transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import AuditEvent
from controls.money import as_str
from controls.services.audit import audit_record
from custody.models import Break, BreakEvent, Movement
from settlement.models import Batch

MAX_NOTE = 2000


def _event(*, brk: Break, actor: str, action: str, at: datetime, note: str = "") -> None:
    BreakEvent.objects.create(
        brk=brk, at=at, actor=actor, action=action, status=brk.status, amount=brk.amount, note=note
    )
    audit_record(
        actor=actor,
        action=f"break.{action}",
        object_type="Break",
        object_id=brk.id,
        after={
            "key": brk.key,
            "kind": brk.kind,
            "status": brk.status,
            "amount": as_str(brk.amount),
            "owner": brk.owner,
            "note": note,
        },
        at=at,
    )


@dataclass(frozen=True, slots=True)
class NewBreak:
    key: str
    kind: str
    asset_id: int
    amount: Decimal
    description: str
    counterparty_id: int | None
    movement_id: int


def breaks_open(*, items: list[NewBreak], actor: str, at: datetime) -> list[Break]:
    """Open a break for each cause that has none yet, set-based: a handful
    of statements however many there are (a 500-statement bank file makes
    hundreds of unmatched receipts at once). A cause with a break already,
    or one another worker opens meanwhile, goes through ``break_raise``."""
    if not items:
        return []
    existing = set(Break.objects.filter(key__in=[i.key for i in items]).values_list("key", flat=True))
    fresh = [i for i in items if i.key not in existing]
    opened: list[Break] = []
    if fresh:
        try:
            with transaction.atomic():
                opened = Break.objects.bulk_create(
                    [
                        Break(
                            key=i.key,
                            kind=i.kind,
                            asset_id=i.asset_id,
                            amount=abs(i.amount),
                            counterparty_id=i.counterparty_id,
                            description=i.description,
                            opened_at=at,
                            updated_at=at,
                        )
                        for i in fresh
                    ]
                )
                Break.movements.through.objects.bulk_create(
                    [
                        Break.movements.through(break_id=b.id, movement_id=i.movement_id)
                        for b, i in zip(opened, fresh, strict=True)
                    ]
                )
                BreakEvent.objects.bulk_create(
                    [
                        BreakEvent(
                            brk=b,
                            at=at,
                            actor=actor,
                            action="opened",
                            status=b.status,
                            amount=b.amount,
                            note=b.description,
                        )
                        for b in opened
                    ]
                )
                AuditEvent.objects.bulk_create(
                    [
                        AuditEvent(
                            at=at,
                            actor=actor,
                            action="break.opened",
                            object_type="Break",
                            object_id=str(b.id),
                            after={
                                "key": b.key,
                                "kind": b.kind,
                                "status": b.status,
                                "amount": as_str(b.amount),
                                "owner": "",
                                "note": b.description,
                            },
                        )
                        for b in opened
                    ]
                )
        except IntegrityError:
            opened = []  # a concurrent run opened some: one by one below
    done = {b.key for b in opened}
    for item in items:
        if item.key in done:
            continue
        brk, changed = break_raise(
            key=item.key,
            kind=item.kind,
            asset_id=item.asset_id,
            amount=item.amount,
            description=item.description,
            actor=actor,
            at=at,
            counterparty_id=item.counterparty_id,
            movements=Movement.objects.filter(pk=item.movement_id),
        )
        if changed:
            opened.append(brk)
    return opened


def break_raise(
    *,
    key: str,
    kind: str,
    asset_id: int | None,
    amount: Decimal,
    description: str,
    actor: str,
    at: datetime,
    counterparty_id: int | None = None,
    leg_id: int | None = None,
    balance_line_id: int | None = None,
    movements: Iterable[Movement] = (),
) -> tuple[Break, bool]:
    """Open the break for ``key``, or bring an unresolved one up to date
    (amount, description, movements). A resolved break is left alone: the
    same cause is not raised twice. Runs inside the caller's transaction.
    Returns (break, changed)."""
    if kind not in Break.Kind.values:
        raise InvalidInput("invalid_field", f"kind must be one of {', '.join(Break.Kind.values)}", field="kind")
    amount = abs(amount)
    brk = Break.objects.select_for_update().filter(key=key).first()
    if brk is None:
        brk = Break.objects.create(
            key=key,
            kind=kind,
            asset_id=asset_id,
            amount=amount,
            counterparty_id=counterparty_id,
            leg_id=leg_id,
            balance_line_id=balance_line_id,
            description=description,
            opened_at=at,
            updated_at=at,
        )
        brk.movements.set(list(movements))
        _event(brk=brk, actor=actor, action="opened", at=at, note=description)
        return brk, True
    if brk.status == Break.Status.RESOLVED:
        return brk, False
    ids = sorted(m.id for m in movements)
    if (
        brk.amount == amount
        and brk.description == description
        and sorted(brk.movements.values_list("id", flat=True)) == ids
    ):
        return brk, False
    brk.amount, brk.description, brk.updated_at = amount, description, at
    brk.save(update_fields=["amount", "description", "updated_at"])
    brk.movements.set(ids)
    _event(brk=brk, actor=actor, action="updated", at=at, note=description)
    return brk, True


def break_close_if_open(*, key: str, note: str, actor: str, at: datetime) -> Break | None:
    """The cause went away by itself (e.g. the rest of a delivery arrived):
    resolve the break with a note saying so. Inside the caller's transaction."""
    brk = Break.objects.select_for_update().filter(key=key, status__in=Break.UNRESOLVED).first()
    if brk is None:
        return None
    brk.status, brk.resolution, brk.resolved_by, brk.resolved_at, brk.updated_at = (
        Break.Status.RESOLVED,
        note,
        actor,
        at,
        at,
    )
    brk.save(update_fields=["status", "resolution", "resolved_by", "resolved_at", "updated_at"])
    _event(brk=brk, actor=actor, action="resolved", at=at, note=note)
    return brk


def _note(note: object, *, required: bool) -> str:
    if note is None and not required:
        return ""
    if not isinstance(note, str) or (required and not note.strip()):
        raise InvalidInput("invalid_field", "note must say how the break was resolved", field="note")
    if len(note) > MAX_NOTE:
        raise InvalidInput("invalid_field", f"note is longer than {MAX_NOTE} characters", field="note")
    return note.strip()


def break_take(*, break_id: int, owner: str, note: str | None, actor: str, now: datetime) -> Break:
    """A person takes a break: it is theirs and ``investigating``."""
    note = _note(note, required=False)
    if not isinstance(owner, str) or not owner.strip() or len(owner) > 150:
        raise InvalidInput("invalid_field", "owner must be a user name of 1 to 150 characters", field="owner")
    with transaction.atomic():
        brk = Break.objects.select_for_update().filter(pk=break_id).first()
        if brk is None:
            raise NotFound("not_found", f"no break {break_id}")
        if brk.status == Break.Status.RESOLVED:
            raise Conflict("break_resolved", f"break {brk.id} is resolved already")
        if brk.status == Break.Status.INVESTIGATING and brk.owner == owner.strip() and not note:
            return brk
        brk.status, brk.owner, brk.updated_at = Break.Status.INVESTIGATING, owner.strip(), now
        brk.save(update_fields=["status", "owner", "updated_at"])
        _event(brk=brk, actor=actor, action="taken", at=now, note=note)
        return brk


def break_resolve(*, break_id: int, note: str, actor: str, now: datetime) -> Break:
    """Resolve a break with a note (what was done: returned, applied,
    confirmed by hand...). Resolving a resolved break is a conflict."""
    note = _note(note, required=True)
    with transaction.atomic():
        brk = Break.objects.select_for_update().filter(pk=break_id).first()
        if brk is None:
            raise NotFound("not_found", f"no break {break_id}")
        if brk.status == Break.Status.RESOLVED:
            raise Conflict("break_resolved", f"break {brk.id} was resolved already by {brk.resolved_by}")
        if not brk.owner:
            brk.owner = actor
        brk.status, brk.resolution, brk.resolved_by, brk.resolved_at, brk.updated_at = (
            Break.Status.RESOLVED,
            note,
            actor,
            now,
            now,
        )
        brk.save(update_fields=["status", "owner", "resolution", "resolved_by", "resolved_at", "updated_at"])
        _event(brk=brk, actor=actor, action="resolved", at=now, note=note)
        return brk


def batch_dispute_break(*, batch_id: int, reason: str, as_of: datetime, actor: str) -> Break:
    """A counterparty disputed a batch (settlement's hooks.batch_disputed):
    a break that operations own until they resolve it, in the dispute's
    transaction. The batch is held meanwhile."""
    batch = Batch.objects.select_related("counterparty").get(pk=batch_id)
    brk, _ = break_raise(
        key=f"{Break.Kind.BATCH_DISPUTED}:batch:{batch.id}",
        kind=Break.Kind.BATCH_DISPUTED,
        asset_id=None,
        amount=Decimal(0),
        description=f"batch {batch.id}: {batch.counterparty.code} disputes it: {reason}",
        actor=actor,
        at=as_of,
        counterparty_id=batch.counterparty_id,
    )
    return brk
