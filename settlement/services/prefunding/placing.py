"""Placing holds: one, or a batch of up to 1,000 with each item judged on
its own (DESIGN section 6a).

A hold is a pending debit on its client's balance: ``held`` grows by its
amount in the transaction that checks ``available`` on the locked balance
row, so two holds near the limit can never both pass (pending holds count
against available: Blnk's bug #181 is the lesson). Idempotent by (operator,
order_id) with a content hash: the same content again answers the hold's
current state, other content is a conflict. Set-based: a batch is a
handful of statements whatever its size: one that locks the balances and
reads the orders' existing holds and what stands in their way (``checks``
judges it), one that inserts the holds, their events and the new held, and
the audit event.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from controls.exceptions import InvalidInput
from controls.money import as_str
from controls.services.audit import audit_record
from registry.selectors import registry_load
from settlement.models import HoldEvent, PrefundingHold
from settlement.selectors.prefunding import amount_text, availables, exact_decimals, hold_as_json, instant_text

from .checks import HoldResult, Standing, conflict_for, holds_judge, refused
from .ledger import ZERO, Balance, Key, balances_lock, holds_close, json_rows
from .parsing import HoldRequest, hold_parse, order_id_of

CREATED, DUPLICATE = "created", "duplicate"


@exact_decimals
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
        existing, standings, balances = _snapshot(requests)
        fresh = _replays(requests, results, twins, existing=existing, now=now)
        fresh = holds_judge(fresh, results, standings=standings, now=now)
        fresh = _within_available(fresh, results, balances=balances, now=now)
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


_SNAPSHOT_SQL = """
WITH k AS MATERIALIZED (
    SELECT * FROM json_to_recordset(%s::json)
             AS k(i int, operator_id bigint, order_id text, account text, asset_id bigint)
),
locked AS MATERIALIZED (
    -- the balances, locked in id order (a LATERAL probe per key: LIMIT 1 keeps
    -- the planner from scanning the table for a handful of keys)
    SELECT b.id, b.operator_id, b.account, b.asset_id, b.funded, b.held, b.committed
    FROM settlement_prefundingbalance b
    WHERE b.id = ANY(ARRAY(
        SELECT x.id FROM k CROSS JOIN LATERAL (
            SELECT y.id FROM settlement_prefundingbalance y
            WHERE y.operator_id = k.operator_id AND y.account = k.account AND y.asset_id = k.asset_id LIMIT 1) x))
    ORDER BY b.id FOR UPDATE
)
SELECT k.i, k.operator_id, k.account, k.asset_id,
       h.id, h.order_id, h.account, h.amount, h.consumed, h.remaining, h.status, h.expires_at, h.created_at,
       h.asset_id, h.balance_id, h.content_hash,
       (SELECT min(f.id) FROM settlement_prefundingfreeze f
        WHERE f.status = 'active' AND f.operator_id = k.operator_id AND f.account IN ('', k.account)
          AND (f.asset_id IS NULL OR f.asset_id = k.asset_id)),
       c.state, c.attested_at, c.reason, r.kind,
       l.id, l.funded, l.held, l.committed
FROM k
JOIN registry_asset a ON a.id = k.asset_id
JOIN registry_rail r ON r.id = a.rail_id
LEFT JOIN LATERAL (
    SELECT * FROM settlement_prefundinghold x WHERE x.operator_id = k.operator_id AND x.order_id = k.order_id LIMIT 1
) h ON true
LEFT JOIN settlement_prefundingcover c ON c.operator_id = k.operator_id AND c.asset_id = k.asset_id
LEFT JOIN locked l ON l.operator_id = k.operator_id AND l.account = k.account AND l.asset_id = k.asset_id
"""

Existing = dict[tuple[int, str], PrefundingHold]


def _snapshot(requests: list[HoldRequest]) -> tuple[Existing, dict[Key, Standing], dict[Key, Balance]]:
    """Everything placing needs from the database, in one statement: the
    holds the orders already have, what stands in the way of new ones, and
    the balances, locked (in id order) for the rest of the transaction."""
    if not requests:
        return {}, {}, {}
    rows = json_rows(
        ("i", "operator_id", "order_id", "account", "asset_id"),
        ((r.index, r.operator.id, r.order_id, r.account, r.asset.id) for r in requests),
    )
    existing: Existing = {}
    standings: dict[Key, Standing] = {}
    balances: dict[Key, Balance] = {}
    with connection.cursor() as cursor:
        cursor.execute(_SNAPSHOT_SQL, [rows])
        for row in cursor.fetchall():
            key: Key = (row[1], row[2], row[3])
            if row[4] is not None:
                existing[(row[1], row[5])] = PrefundingHold(
                    id=row[4],
                    operator_id=row[1],
                    order_id=row[5],
                    account=row[6],
                    amount=row[7],
                    consumed=row[8],
                    remaining=row[9],
                    status=row[10],
                    expires_at=row[11],
                    created_at=row[12],
                    asset_id=row[13],
                    balance_id=row[14],
                    content_hash=row[15],
                )
            standings[key] = Standing(*row[16:21])
            if row[21] is not None:
                balances[key] = Balance(*row[21:25])
    return existing, standings, balances


def _replays(
    requests: list[HoldRequest],
    results: dict[int, HoldResult],
    twins: list[tuple[HoldRequest, HoldRequest]],
    *,
    existing: Existing,
    now: datetime,
) -> list[HoldRequest]:
    """Answer the orders already held (the same content: its current state;
    other content: a conflict). Returns the requests for new holds, the
    first of each order in this batch; a later twin with the same content
    goes to ``twins`` to get the first's answer."""
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
    requests: list[HoldRequest], results: dict[int, HoldResult], *, balances: dict[Key, Balance], now: datetime
) -> list[HoldRequest]:
    """Take each request, in item order, while its (locked) balance's
    available covers it. Expired holds in the way are swept first
    (only when something is short: an expired hold matters only then)."""
    if not requests:
        return []

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
    SELECT * FROM json_to_recordset(%(rows)s::json)
             AS t(operator_id bigint, order_id text, account text, asset_id bigint, balance_id bigint, amount numeric,
                  expires_at timestamptz, content_hash text)
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
    ids: dict[tuple[int, str], int] = {}
    if fresh:
        rows = json_rows(
            ("operator_id", "order_id", "account", "asset_id", "balance_id", "amount", "expires_at", "content_hash"),
            (
                (
                    r.operator.id,
                    r.order_id,
                    r.account,
                    r.asset.id,
                    r.balance_id,
                    r.amount,
                    r.expires_given,
                    r.content_hash,
                )
                for r in fresh
            ),
        )
        with connection.cursor() as cursor:
            cursor.execute(_INSERT_SQL, {"rows": rows, "now": now, "actor": actor})
            ids = {(operator_id, order_id): hold_id for hold_id, operator_id, order_id in cursor.fetchall()}
    created, lost = [], []
    created_at, held = instant_text(now), PrefundingHold.Status.HELD.value
    texts: dict[tuple[Decimal, int], str] = {}  # most amounts and every zero repeat within a batch
    expiries: dict[datetime | None, str | None] = {}

    def text(amount: Decimal, scale: int) -> str:
        key = (amount, scale)
        if key not in texts:
            texts[key] = amount_text(amount, scale)
        return texts[key]

    for request in fresh:
        hold_id = ids.get((request.operator.id, request.order_id))
        if hold_id is None:
            lost.append(request)
            continue
        scale = request.asset.scale
        amount = text(request.amount, scale)
        if request.expires_given not in expiries:
            expiries[request.expires_given] = instant_text(request.expires_given)
        body = {
            "hold_id": hold_id,
            "order_id": request.order_id,
            "operator": request.operator.code,
            "account": request.account,
            "asset": request.asset.code,
            "amount": amount,
            "consumed": text(ZERO, scale),
            "remaining": amount,
            "status": held,
            "available_after": text(request.available_after, scale),
            "expires_at": expiries[request.expires_given],
            "created_at": created_at,
        }
        results[request.index] = HoldResult(request.index, request.order_id, CREATED, 201, body)
        created.append([hold_id, request.operator.code, request.order_id, as_str(request.amount)])
    if lost:  # a concurrent request stored these orders first
        _answer_known(
            [
                (r, h)
                for r in lost
                if (h := PrefundingHold.objects.filter(operator_id=r.operator.id, order_id=r.order_id).first())
            ],
            results,
            now=now,
        )
    return created
