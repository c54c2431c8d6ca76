"""Placing holds: one, or a batch of up to 1,000 with each item judged on
its own (DESIGN section 6a).

A hold is a pending debit on its client's balance: ``held`` grows by its
amount in the transaction that checks ``available`` on the locked balance
row, so two holds near the limit can never both pass (pending holds count
against available: Blnk's bug #181 is the lesson). Idempotent by (operator,
order_id) with a content hash: the same content again answers the hold's
current state, other content is a conflict. Set-based: a batch is a
handful of statements whatever its size (the existing orders, the checks of
``checks``, the balances locked, one statement that inserts the holds,
their events and the new held).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection, transaction

from controls.exceptions import InvalidInput
from controls.money import as_str
from controls.services.audit import audit_record
from registry.selectors import registry_load
from settlement.models import HoldEvent, PrefundingHold
from settlement.selectors.prefunding import amount_text, availables, hold_as_json, instant_text

from .checks import HoldResult, conflict_for, holds_judge, refused
from .ledger import balances_lock, holds_close
from .parsing import HoldRequest, hold_parse, order_id_of

CREATED, DUPLICATE = "created", "duplicate"


def holds_place(*, items: list, actor: str, now: datetime) -> list[HoldResult]:
    """Place each item's hold, or say why not. One transaction for all."""
    registry = registry_load()
    results: dict[int, HoldResult] = {}
    requests: list[HoldRequest] = []
    for index, item in enumerate(items):
        try:
            requests.append(hold_parse(item, index=index, registry=registry))
        except InvalidInput as error:
            results[index] = refused(index, order_id_of(item), error)
    twins: list[tuple[HoldRequest, HoldRequest]] = []
    with transaction.atomic():
        fresh = _replays(requests, results, twins, now=now)
        fresh = _within_available(holds_judge(fresh, results, now=now), results, now=now)
        created = _insert(fresh, results, actor=actor, now=now)
        for twin, first in twins:
            answer = results[first.index]
            if answer.outcome == "refused":
                results[twin.index] = HoldResult(twin.index, twin.order_id, "refused", answer.status_code, answer.body)
            else:
                results[twin.index] = HoldResult(twin.index, twin.order_id, DUPLICATE, 200, answer.body)
        if created or any(r.outcome == "refused" for r in results.values()):
            audit_record(
                actor=actor,
                action="prefunding.holds_placed",
                object_type="PrefundingHold",
                object_id=created[0] if len(created) == 1 else "",
                after={
                    "items": len(items),
                    "created": created,
                    "refused": [[r.index, r.body.get("code")] for r in results.values() if r.outcome == "refused"],
                },
                at=now,
            )
    return [results[i] for i in range(len(items))]


_EXISTING_SQL = """
SELECT h.id, h.order_id, h.account, h.amount, h.consumed, h.remaining, h.status, h.expires_at, h.created_at,
       h.operator_id, h.asset_id, h.balance_id, h.content_hash
FROM settlement_prefundinghold h
JOIN unnest(%s::bigint[], %s::text[]) AS k(operator_id, order_id)
  ON h.operator_id = k.operator_id AND h.order_id = k.order_id
"""


def _existing(pairs: list[tuple[int, str]]) -> dict[tuple[int, str], PrefundingHold]:
    if not pairs:
        return {}
    holds = PrefundingHold.objects.raw(_EXISTING_SQL, [[p[0] for p in pairs], [p[1] for p in pairs]])
    return {(h.operator_id, h.order_id): h for h in holds}


def _replays(
    requests: list[HoldRequest], results: dict[int, HoldResult], twins: list[tuple[HoldRequest, HoldRequest]], *, now
) -> list[HoldRequest]:
    """Answer the orders already held (the same content: its current state;
    other content: a conflict). Returns the requests for new holds, the
    first of each order in this batch; a later twin with the same content
    goes to ``twins`` to get the first's answer."""
    existing = _existing(sorted({(r.operator.id, r.order_id) for r in requests}))
    fresh: list[HoldRequest] = []
    first: dict[tuple[int, str], HoldRequest] = {}
    known = []
    for request in requests:
        pair = (request.operator.id, request.order_id)
        hold = existing.get(pair)
        if hold is not None:
            known.append((request, hold))
        elif pair in first:
            if first[pair].content_hash != request.content_hash:
                results[request.index] = conflict_for(
                    request,
                    "conflict",
                    f"order {request.order_id} appears earlier in this request (item {first[pair].index}) "
                    "with other content",
                )
            else:
                twins.append((request, first[pair]))
        else:
            first[pair] = request
            fresh.append(request)
    _answer_known(known, results, now=now)
    return fresh


def _answer_known(known: list[tuple[HoldRequest, PrefundingHold]], results: dict[int, HoldResult], *, now) -> None:
    available = availables(sorted({hold.balance_id for _, hold in known}), now=now)
    for request, hold in known:
        if hold.content_hash != request.content_hash:
            results[request.index] = conflict_for(
                request,
                "conflict",
                f"order {request.order_id} of {request.operator.code} is already held with other content",
            )
            continue
        body = hold_as_json(
            hold,
            operator=request.operator.code,
            asset=request.asset.code,
            scale=request.asset.scale,
            available=available.get(hold.balance_id),
            now=now,
        )
        results[request.index] = HoldResult(request.index, request.order_id, DUPLICATE, 200, body)


def _within_available(
    requests: list[HoldRequest], results: dict[int, HoldResult], *, now: datetime
) -> list[HoldRequest]:
    """Lock the balances and take each request, in item order, while its
    balance's available covers it. Expired holds in the way are swept first
    (only when something is short: an expired hold matters only then)."""
    if not requests:
        return []
    balances = balances_lock({r.key for r in requests})

    def take() -> tuple[list[HoldRequest], list[HoldRequest]]:
        left = {key: balance.available for key, balance in balances.items()}
        taken, short = [], []
        for request in requests:
            available = left.get(request.key)
            if available is None or available < request.amount:
                request.available_after = available or Decimal(0)  # what it found: the refusal says so
                short.append(request)
                continue
            left[request.key] = available - request.amount
            request.available_after = left[request.key]
            taken.append(request)
        return taken, short

    taken, short = take()
    if short:
        lapsed = [balances[r.key].id for r in short if r.key in balances]
        if lapsed:
            closed = holds_close(
                where="balance_id = ANY(%s) AND expires_at <= %s",
                params=[sorted(set(lapsed)), now],
                kind=HoldEvent.Kind.EXPIRED,
                as_of=now,
                actor="prefunding:expiry",
                skip_locked=True,
            )
            if closed:
                balances = balances_lock({r.key for r in requests})  # re-read what the expiry gave back
                taken, short = take()
    for request in short:
        available = request.available_after
        results[request.index] = conflict_for(
            request,
            "insufficient_prefunding",
            f"{request.operator.code} {request.account} has {amount_text(available, request.asset.scale)} "
            f"{request.asset.code} available; the order needs {amount_text(request.amount, request.asset.scale)}",
            available=amount_text(available, request.asset.scale),
        )
    for request in taken:
        request.balance_id = balances[request.key].id
    return taken


_INSERT_SQL = """
WITH input AS (
    SELECT * FROM unnest(%(operators)s::bigint[], %(orders)s::text[], %(accounts)s::text[], %(assets)s::bigint[],
                         %(balances)s::bigint[], %(amounts)s::numeric[], %(expiries)s::timestamptz[], %(hashes)s::text[])
             AS t(operator_id, order_id, account, asset_id, balance_id, amount, expires_at, content_hash)
),
ins AS (
    INSERT INTO settlement_prefundinghold (operator_id, order_id, account, asset_id, balance_id, amount, consumed,
                                           remaining, status, expires_at, created_at, updated_at, content_hash, created_by)
    SELECT operator_id, order_id, account, asset_id, balance_id, amount, 0, amount, 'held', expires_at,
           %(now)s, %(now)s, content_hash, %(actor)s
    FROM input ORDER BY operator_id, order_id
    ON CONFLICT (operator_id, order_id) DO NOTHING
    RETURNING id, operator_id, order_id, balance_id, amount, expires_at
),
events AS (
    INSERT INTO settlement_holdevent (hold_id, kind, amount, remaining, expires_at, trade_id, at, actor)
    SELECT id, 'created', amount, amount, expires_at, NULL, %(now)s, %(actor)s FROM ins
),
moved AS (
    UPDATE settlement_prefundingbalance b SET held = b.held + s.amount, updated_at = %(now)s
    FROM (SELECT balance_id, sum(amount) AS amount FROM ins GROUP BY balance_id) s
    WHERE b.id = s.balance_id
)
SELECT id, operator_id, order_id FROM ins
"""


def _insert(fresh: list[HoldRequest], results: dict[int, HoldResult], *, actor: str, now: datetime) -> list:
    """Insert the holds, their events and the balances' new held in one
    statement. An order another request stored meanwhile is answered as a
    replay or a conflict, and moves nothing here."""
    if fresh:
        params: dict[str, Any] = {
            "operators": [r.operator.id for r in fresh],
            "orders": [r.order_id for r in fresh],
            "accounts": [r.account for r in fresh],
            "assets": [r.asset.id for r in fresh],
            "balances": [r.balance_id for r in fresh],
            "amounts": [r.amount for r in fresh],
            "expiries": [r.expires_given for r in fresh],
            "hashes": [r.content_hash for r in fresh],
            "now": now,
            "actor": actor,
        }
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, params)
            ids = {(operator_id, order_id): hold_id for hold_id, operator_id, order_id in cursor.fetchall()}
    else:
        ids = {}
    created, lost = [], []
    for request in fresh:
        hold_id = ids.get((request.operator.id, request.order_id))
        if hold_id is None:
            lost.append(request)
            continue
        amount = amount_text(request.amount, request.asset.scale)
        body = {
            "hold_id": hold_id,
            "order_id": request.order_id,
            "operator": request.operator.code,
            "account": request.account,
            "asset": request.asset.code,
            "amount": amount,
            "consumed": amount_text(Decimal(0), request.asset.scale),
            "remaining": amount,
            "status": PrefundingHold.Status.HELD.value,
            "available_after": amount_text(request.available_after, request.asset.scale),
            "expires_at": instant_text(request.expires_given),
            "created_at": instant_text(now),
        }
        results[request.index] = HoldResult(request.index, request.order_id, CREATED, 201, body)
        created.append([hold_id, request.operator.code, request.order_id, as_str(request.amount)])
    if lost:  # a concurrent request stored these orders first
        _answer_known(
            [(r, h) for r in lost if (h := _existing([(r.operator.id, r.order_id)]).get((r.operator.id, r.order_id)))],
            results,
            now=now,
        )
    return created
