"""Balances and holds as the API shows them, with expiry applied on every
read: an expired hold never counts, swept or not."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Context, Decimal, localcontext
from functools import wraps
from typing import Any, TypeVar, cast

from django.db import connection

from controls.money import MAX_INTEGER_DIGITS, MAX_SCALE, quantum
from settlement.models import PrefundingHold

OPEN = [str(s) for s in PrefundingHold.OPEN]
ZERO = Decimal(0)


# Storage is NUMERIC(38, 18): an amount may have 38 significant digits, more
# than the default decimal context's 28, which would round a sum or refuse
# to quantize it. Prefunding arithmetic runs in this context.
EXACT = Context(prec=2 * (MAX_INTEGER_DIGITS + MAX_SCALE))

F = TypeVar("F", bound=Callable[..., Any])


def exact_decimals(function: F) -> F:
    """Run ``function`` with exact decimal arithmetic for any stored amount."""

    @wraps(function)
    def wrapper(*args, **kwargs):
        with localcontext(EXACT):
            return function(*args, **kwargs)

    return cast(F, wrapper)


def amount_text(amount: Decimal, scale: int) -> str:
    """An amount as the API shows it: a string at the asset's scale."""
    return format(amount.quantize(quantum(scale), context=EXACT), "f")


def instant_text(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def prefunding_operator_ids() -> set[int]:
    """Operators under prefunding: those with a designated custodian wallet
    or account. Their trade sides must consume holds; receivers among them
    are credited when a trade settles."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT operator_id FROM registry_wallet WHERE designated "
            "UNION SELECT operator_id FROM registry_bankaccount WHERE designated"
        )
        return {row[0] for row in cursor.fetchall()}


def hold_effective(hold: PrefundingHold, *, now: datetime) -> tuple[str, Decimal]:
    """(status, remaining) with expiry applied: an open hold past its
    expiry is expired, whether the sweep has reached it or not."""
    if hold.status in OPEN and hold.expires_at <= now:
        return PrefundingHold.Status.EXPIRED, ZERO
    return hold.status, hold.remaining


def hold_as_json(
    hold: PrefundingHold, *, operator: str, asset: str, scale: int, available: Decimal | None, now: datetime
) -> dict:
    status, remaining = hold_effective(hold, now=now)
    return {
        "hold_id": hold.id,
        "order_id": hold.order_id,
        "operator": operator,
        "account": hold.account,
        "asset": asset,
        "amount": amount_text(hold.amount, scale),
        "consumed": amount_text(hold.consumed, scale),
        "remaining": amount_text(remaining, scale),
        "status": status,
        "available_after": amount_text(available, scale) if available is not None else None,
        "expires_at": instant_text(hold.expires_at),
        "created_at": instant_text(hold.created_at),
    }


def expired_unswept(balance_ids: list[int], *, now: datetime) -> dict[int, Decimal]:
    """What open holds past their expiry still hold, per balance: a read
    takes it off ``held`` so an expired hold never counts."""
    if not balance_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT balance_id, sum(remaining) FROM settlement_prefundinghold "
            "WHERE balance_id = ANY(%s) AND status = ANY(%s) AND expires_at <= %s GROUP BY balance_id",
            [balance_ids, OPEN, now],
        )
        return dict(cursor.fetchall())


def availables(balance_ids: list[int], *, now: datetime) -> dict[int, Decimal]:
    """Each balance's available, with expiry applied."""
    if not balance_ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.id, b.funded - b.held - b.committed + coalesce(("
            "  SELECT sum(h.remaining) FROM settlement_prefundinghold h"
            "  WHERE h.balance_id = b.id AND h.status = ANY(%s) AND h.expires_at <= %s), 0) "
            "FROM settlement_prefundingbalance b WHERE b.id = ANY(%s)",
            [OPEN, now, balance_ids],
        )
        return dict(cursor.fetchall())


@exact_decimals
def account_balances(*, operator_id: int, account: str, now: datetime) -> list[dict]:
    """Per asset ``{"asset", "funded", "held", "committed", "available"}``,
    with expiry applied."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT b.id, a.code, a.scale, b.funded, b.held, b.committed FROM settlement_prefundingbalance b "
            "JOIN registry_asset a ON a.id = b.asset_id WHERE b.operator_id = %s AND b.account = %s ORDER BY a.code",
            [operator_id, account],
        )
        rows = cursor.fetchall()
    expired = expired_unswept([r[0] for r in rows], now=now)
    out = []
    for balance_id, code, scale, funded, held, committed in rows:
        held -= expired.get(balance_id, ZERO)
        out.append(
            {
                "asset": code,
                "funded": amount_text(funded, scale),
                "held": amount_text(held, scale),
                "committed": amount_text(committed, scale),
                "available": amount_text(funded - held - committed, scale),
            }
        )
    return out
