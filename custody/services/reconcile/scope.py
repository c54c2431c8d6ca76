"""Bank accounts that leg matching leaves alone.

Some of home's registered bank accounts carry no settlement legs: the
reserve fund's account on trust is reconciled against the fund's ledger by
the reserves layer. Their statements import like any other, but their
entries are never linked to a leg, nor raised here as unmatched receipts or
payments (the owner raises its own breaks). The owner registers a function
returning a query of those account ids (never null) when its app is ready;
custody never imports it, and the query runs as a subquery of matching's
own statements, not as a round trip of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db.models import Q, QuerySet

_owners: list[Callable[[], QuerySet[Any, int]]] = []


def accounts_reconciled_elsewhere_register(owner: Callable[[], QuerySet[Any, int]]) -> None:
    if owner not in _owners:
        _owners.append(owner)


def settlement_movements() -> Q:
    """The movements leg matching may look at: not on an account reconciled elsewhere."""
    q = Q()
    for owner in _owners:
        q &= Q(account_id__isnull=True) | ~Q(account_id__in=owner())
    return q


def settlement_movements_sql(alias: str) -> tuple[str, list[Any]]:
    """The same condition for raw SQL over the movement table as ``alias``."""
    parts: list[str] = []
    params: list[Any] = []
    for owner in _owners:
        sql, owner_params = owner().query.sql_with_params()
        parts.append(f"({alias}.account_id IS NULL OR {alias}.account_id NOT IN ({sql}))")
        params.extend(owner_params)
    return (" AND ".join(parts) or "TRUE"), params
