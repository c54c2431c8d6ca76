"""One hold after it is placed: reading it, amending it (down, or later),
releasing it, and the sweep that expires holds past their time (DESIGN
section 6a). Expiry is also applied on every read and every change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.money import amount_in_range, as_str, parse_decimal
from controls.services.audit import audit_record
from controls.timestamps import parse_instant
from settlement.models import HoldEvent, PrefundingHold
from settlement.selectors.prefunding import amount_text, availables, exact_decimals, hold_as_json

from .ledger import OPEN, balances_apply, balances_lock_ids, deltas, events_insert, holds_close


@dataclass(slots=True)
class _Located:
    hold: PrefundingHold
    operator: str
    asset: str
    scale: int


def _locate(*, operator: str, order_id: str, lock: bool) -> _Located:
    queryset = PrefundingHold.objects.select_related("operator", "asset")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    hold = queryset.filter(operator__code=operator, order_id=order_id).first()
    if hold is None:
        raise NotFound("not_found", f"no hold for order {order_id!r} of operator {operator!r}")
    return _Located(hold, hold.operator.code, hold.asset.code, hold.asset.scale)


def _as_json(found: _Located, *, now: datetime) -> dict:
    available = availables([found.hold.balance_id], now=now).get(found.hold.balance_id)
    return hold_as_json(
        found.hold, operator=found.operator, asset=found.asset, scale=found.scale, available=available, now=now
    )


@exact_decimals
def hold_get(*, operator: str, order_id: str, now: datetime) -> dict:
    """A hold's state, with expiry applied."""
    return _as_json(_locate(operator=operator, order_id=order_id, lock=False), now=now)


def _expire_if_due(found: _Located, *, now: datetime) -> bool:
    """Expiry is applied on every change: a hold past its time is expired
    first (its event, its balance), whatever the change was."""
    hold = found.hold
    if hold.status not in OPEN or hold.expires_at > now:
        return False
    holds_close(where="id = %s", params=[hold.id], kind=HoldEvent.Kind.EXPIRED, as_of=now, actor="prefunding:expiry")
    hold.refresh_from_db()
    return True


@exact_decimals
def hold_release(*, operator: str, order_id: str, actor: str, now: datetime) -> dict:
    """Release what remains. Releasing a closed hold changes nothing and
    answers its final state, however often it is called."""
    with transaction.atomic():
        found = _locate(operator=operator, order_id=order_id, lock=True)
        hold = found.hold
        if not _expire_if_due(found, now=now) and hold.status in OPEN:
            before = {"status": hold.status, "remaining": as_str(hold.remaining)}
            holds_close(where="id = %s", params=[hold.id], kind=HoldEvent.Kind.RELEASED, as_of=now, actor=actor)
            hold.refresh_from_db()
            audit_record(
                actor=actor,
                action="prefunding.hold_released",
                object_type="PrefundingHold",
                object_id=hold.id,
                before=before,
                after={"status": hold.status, "remaining": as_str(hold.remaining)},
                at=now,
            )
        return _as_json(found, now=now)


@exact_decimals
def hold_amend(
    *, operator: str, order_id: str, amount: object = None, expires_at: object = None, actor: str, now: datetime
) -> dict:
    """Amend an open hold: ``amount`` down only (the order got smaller; what
    it no longer needs goes back to available, and it may not go below what
    trades consumed), ``expires_at`` later only (up to the maximum time to
    live from its creation). The same values again change nothing."""
    if amount is None and expires_at is None:
        raise InvalidInput("missing_field", "give amount (down only) or expires_at (later only)", field="amount")
    with transaction.atomic():
        found = _locate(operator=operator, order_id=order_id, lock=True)
        hold = found.hold
        new_amount = hold.amount
        if amount is not None:
            new_amount = amount_in_range(
                parse_decimal(amount, field="amount", scale=found.scale), scale=found.scale, field="amount"
            )
            if new_amount > hold.amount:
                raise InvalidInput(
                    "invalid_field",
                    f"amount may only go down: the hold is {amount_text(hold.amount, found.scale)}",
                    field="amount",
                )
            if new_amount < hold.consumed:
                raise InvalidInput(
                    "invalid_field",
                    f"amount may not go below what trades consumed ({amount_text(hold.consumed, found.scale)})",
                    field="amount",
                )
        new_expiry = hold.expires_at
        if expires_at is not None:
            new_expiry = parse_instant(expires_at, field="expires_at")
            longest = hold.created_at + timedelta(seconds=settings.PREFUNDING_HOLD_MAX_TTL_SECONDS)
            if new_expiry < hold.expires_at:
                raise InvalidInput("invalid_field", "expires_at may only move later", field="expires_at")
            if new_expiry > longest:
                raise InvalidInput(
                    "invalid_field",
                    f"expires_at may be at most {longest.isoformat()} (the maximum time to live from the hold's creation)",
                    field="expires_at",
                )
        if new_amount == hold.amount and new_expiry == hold.expires_at:
            return _as_json(found, now=now)  # nothing to change: a replay
        if _expire_if_due(found, now=now) or hold.status not in OPEN:
            raise Conflict("hold_closed", f"the hold of order {order_id} is {hold.status}: it cannot be amended")
        released = hold.amount - new_amount
        before = {
            "amount": as_str(hold.amount),
            "remaining": as_str(hold.remaining),
            "expires_at": hold.expires_at.isoformat(),
        }
        hold.amount, hold.remaining, hold.expires_at, hold.updated_at = (
            new_amount,
            hold.remaining - released,
            new_expiry,
            now,
        )
        fields = ["amount", "remaining", "expires_at", "updated_at"]
        if hold.remaining == 0:  # amended down to what trades already took
            hold.status, hold.closed_at = PrefundingHold.Status.CONSUMED, now
            fields += ["status", "closed_at"]
        hold.save(update_fields=fields)
        events_insert([(hold.id, HoldEvent.Kind.AMENDED, released, hold.remaining, new_expiry, None, now, actor)])
        if released:
            moved = deltas()
            moved[hold.balance_id][1] -= released
            balances_lock_ids([hold.balance_id])
            balances_apply(moved, now=now)
        audit_record(
            actor=actor,
            action="prefunding.hold_amended",
            object_type="PrefundingHold",
            object_id=hold.id,
            before=before,
            after={
                "amount": as_str(hold.amount),
                "remaining": as_str(hold.remaining),
                "expires_at": new_expiry.isoformat(),
            },
            at=now,
        )
        return _as_json(found, now=now)


# --- expiry --------------------------------------------------------------------------------------

SWEEP_LIMIT = 10_000


@exact_decimals
def holds_expire(*, as_of: datetime, actor: str, limit: int = SWEEP_LIMIT) -> int:
    """Expire the open holds past their time (at most ``limit`` a run; the
    next run takes the rest). Holds another transaction is changing are
    skipped, not waited for: expiry is applied on every read anyway."""
    with transaction.atomic():
        closed = holds_close(
            where="id IN (SELECT id FROM settlement_prefundinghold WHERE status = ANY(%s) AND expires_at <= %s "
            "ORDER BY id LIMIT %s)",
            params=[OPEN, as_of, limit],
            kind=HoldEvent.Kind.EXPIRED,
            as_of=as_of,
            actor=actor,
            skip_locked=True,
        )
        if closed:
            audit_record(
                actor=actor,
                action="prefunding.holds_expired",
                object_type="PrefundingHold",
                after={"holds": [hold_id for hold_id, _, _ in closed]},
                at=as_of,
            )
    return len(closed)
