"""Trades consume holds; settlement clears what they committed (DESIGN 6a).

``prefunding_consume`` runs inside the trade intake's transaction, for the
trades that request stored: the buyer's hold (``buy.order_id``) in the quote
asset by the quote amount, the seller's (``sell.order_id``) in the base
asset by the quantity, moving them from ``held`` to ``committed``; partial
fills consume again until nothing remains. A (hold, trade) pair consumes
once: a trade is stored once (its unique trade_id decides which request
stores it, replays and concurrent requests included), and a unique
constraint on consumed events backs it. A trade is never refused for
prefunding: a side with no order, no hold, an expired or released hold, or
one that needs more than remains is kept and flagged (``prefunding_missing``,
``prefunding_shortfall`` compliance exceptions and an alert). Set-based: a
few statements per request, none per trade.

``prefunding_settle`` runs when obligations settle: the payer's committed
and funded go down by what its hold committed to the trade, the receiver's
funded goes up by what it received. A trade between two clients of one
operator has no obligation: it settles on that operator's books at once,
in the intake's transaction.

Sides are checked for operators under prefunding (with a designated
custodian account) and wherever the engine names an order.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection

from controls.services.alerts import alert_raise
from registry.selectors import AssetInfo, OperatorInfo
from settlement.models import ComplianceException, HoldEvent, PrefundingHold, PrefundingSettlement
from settlement.selectors.prefunding import amount_text, exact_decimals, prefunding_operator_ids
from settlement.services.trade_parsing import ParsedTrade

from .ledger import (
    OPEN,
    ZERO,
    Key,
    balance_ids,
    balances_apply,
    balances_ensure,
    balances_lock_ids,
    deltas,
    events_insert,
    json_rows,
)

Status = PrefundingHold.Status
MISSING, SHORTFALL = "prefunding_missing", "prefunding_shortfall"


@dataclass(slots=True)
class _Side:
    trade: ParsedTrade
    name: str  # buy | sell
    operator: OperatorInfo
    account: str
    order_id: str
    asset: AssetInfo
    need: Decimal
    consumed: Decimal = ZERO


@dataclass(slots=True)
class _Hold:
    id: int
    account: str
    asset_id: int
    balance_id: int
    amount: Decimal
    consumed: Decimal
    remaining: Decimal
    status: str
    expires_at: datetime
    touched: bool = False


@dataclass(slots=True)
class ConsumeResult:
    consumed: int = 0
    exceptions: list[dict] | None = None

    def as_json(self) -> dict:
        return {"holds_consumed": self.consumed, "exceptions": self.exceptions or []}


def _sides(trades: list[ParsedTrade], under: set[int]) -> list[_Side]:
    sides = []
    for t in trades:
        for side in (
            _Side(t, "buy", t.buy, t.buy_account, t.buy_order_id, t.quote, t.quote_amount),
            _Side(t, "sell", t.sell, t.sell_account, t.sell_order_id, t.base, t.quantity),
        ):
            if side.order_id or side.operator.id in under:
                sides.append(side)
    return sides


def _holds_lock(sides: list[_Side]) -> dict[tuple[int, str], _Hold]:
    pairs = sorted({(s.operator.id, s.order_id) for s in sides if s.order_id})
    if not pairs:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT h.operator_id, h.order_id, h.id, h.account, h.asset_id, h.balance_id, h.amount, h.consumed, "
            "h.remaining, h.status, h.expires_at FROM settlement_prefundinghold h WHERE h.id = ANY(ARRAY("
            "SELECT x.id FROM json_to_recordset(%s::json) AS k(operator_id bigint, order_id text) CROSS JOIN LATERAL "
            "(SELECT id FROM settlement_prefundinghold y WHERE y.operator_id = k.operator_id AND y.order_id = k.order_id LIMIT 1) x"
            ")) ORDER BY h.id FOR UPDATE",
            [json_rows(("operator_id", "order_id"), pairs)],
        )
        return {(r[0], r[1]): _Hold(*r[2:]) for r in cursor.fetchall()}


@exact_decimals
def prefunding_consume(*, trades: list[ParsedTrade], ids: dict[str, int], actor: str, now: datetime) -> ConsumeResult:
    """Consume the holds of the trades this request stored (see the module doc)."""
    if not trades:
        return ConsumeResult()
    under = prefunding_operator_ids()
    if not under and not any(t.buy_order_id or t.sell_order_id for t in trades):
        return ConsumeResult()
    sides = _sides(trades, under)
    if not sides:
        return ConsumeResult()
    holds = _holds_lock(sides)
    events: list[tuple] = []
    moved = deltas()
    flagged: list[tuple[_Side, str, str]] = []
    for side in sides:
        hold = holds.get((side.operator.id, side.order_id))
        problem = _consume(side, hold, events, moved, trade_pk=ids[side.trade.trade_id], actor=actor, now=now)
        if problem is not None:
            flagged.append((side, *problem))
    _holds_update([h for h in holds.values() if h.touched], now=now)
    events_insert(events)
    settlements_post(_settle_internal([t for t in trades if not t.is_cross], sides, ids, under), moved, now=now)
    exceptions = _flag(flagged, ids, actor=actor, now=now)
    return ConsumeResult(consumed=sum(1 for e in events if e[1] == HoldEvent.Kind.CONSUMED), exceptions=exceptions)


def _consume(side: _Side, hold: _Hold | None, events: list, moved, *, trade_pk: int, actor: str, now: datetime):
    """Take what the side needs from its hold; returns (code, message) when
    the side is not fully prefunded."""
    where = f"{side.name} side ({side.operator.code} {side.account})"
    scale = side.asset.scale
    if not side.order_id:
        return MISSING, f"the {where} names no order_id: its prefunding cannot be verified"
    if hold is None:
        return MISSING, f"no prefunding hold for order {side.order_id} on the {where}"
    if hold.account != side.account or hold.asset_id != side.asset.id:
        return MISSING, (
            f"the hold of order {side.order_id} is for another account or asset than the {where} "
            f"(needs {side.asset.code})"
        )
    if hold.status in OPEN and hold.expires_at <= now:  # applied on every read: expire it here and now
        moved[hold.balance_id][1] -= hold.remaining
        events.append((hold.id, HoldEvent.Kind.EXPIRED, hold.remaining, ZERO, hold.expires_at, None, now, actor))
        hold.remaining, hold.status, hold.touched = ZERO, Status.EXPIRED, True
        return MISSING, f"the hold of order {side.order_id} on the {where} expired at {hold.expires_at.isoformat()}"
    if hold.status in (Status.RELEASED, Status.EXPIRED):
        return MISSING, f"the hold of order {side.order_id} on the {where} was {hold.status}"
    take = min(side.need, hold.remaining)
    if take > 0:
        hold.remaining -= take
        hold.consumed += take
        hold.status = Status.CONSUMED if hold.remaining == 0 else Status.PARTIALLY_CONSUMED
        hold.touched = True
        side.consumed = take
        moved[hold.balance_id][1] -= take
        moved[hold.balance_id][2] += take
        events.append((hold.id, HoldEvent.Kind.CONSUMED, take, hold.remaining, hold.expires_at, trade_pk, now, actor))
    if take < side.need:
        return SHORTFALL, (
            f"the {where} needs {amount_text(side.need, scale)} {side.asset.code}; the hold of order "
            f"{side.order_id} had {amount_text(take, scale)} left"
        )
    return None


def _holds_update(holds: list[_Hold], *, now: datetime) -> None:
    if not holds:
        return
    rows = [(h.id, h.remaining, h.consumed, str(h.status), now if h.status not in OPEN else None) for h in holds]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE settlement_prefundinghold h SET remaining = v.remaining, consumed = v.consumed, status = v.status, "
            "closed_at = coalesce(h.closed_at, v.closed_at), updated_at = %s "
            "FROM json_to_recordset(%s::json) "
            "AS v(id bigint, remaining numeric, consumed numeric, status text, closed_at timestamptz) WHERE h.id = v.id",
            [now, json_rows(("id", "remaining", "consumed", "status", "closed_at"), rows)],
        )


# --- settlement ----------------------------------------------------------------------------------

# (trade pk, obligation pk or None, asset id, kind, balance key, amount, committed):
# a debit is what the payer paid and, of that, what its hold had committed;
# a credit is what the receiver received (committed 0)
SettlementRow = tuple[int, int | None, int, str, Key, Decimal, Decimal]


def _settle_internal(
    trades: list[ParsedTrade], sides: list[_Side], ids: dict[str, int], under: set[int]
) -> list[SettlementRow]:
    """A trade between two clients of one operator settles on its books at
    once: each payer pays, each receiver under prefunding is credited."""
    consumed = {(s.trade.trade_id, s.name): s.consumed for s in sides}
    rows: list[SettlementRow] = []
    for t in trades:
        pk = ids[t.trade_id]
        legs = (
            # asset, payer (side name, operator, account), receiver (operator, account), amount paid and received
            (t.base, ("sell", t.sell, t.sell_account), (t.buy, t.buy_account), t.quantity),
            (t.quote, ("buy", t.buy, t.buy_account), (t.sell, t.sell_account), t.quote_amount),
        )
        for asset, (name, payer, payer_account), (receiver, receiver_account), amount in legs:
            committed = consumed.get((t.trade_id, name), ZERO)
            if committed or payer.id in under:
                rows.append((pk, None, asset.id, "debit", (payer.id, payer_account, asset.id), amount, committed))
            if receiver.id in under:
                rows.append((pk, None, asset.id, "credit", (receiver.id, receiver_account, asset.id), amount, ZERO))
    return rows


def settlements_post(rows: list[SettlementRow], moved, *, now: datetime) -> int:
    """Apply ``moved`` and the settlement ``rows`` to the balances, in the
    caller's transaction. Every balance involved is locked in id order first
    (a receiver's is created if missing). A debit takes what the payer's hold
    committed out of committed and funded, and the rest of what it paid out
    of its available, as far as that goes (never below zero: a shortfall was
    flagged when the trade arrived). A credit puts what the receiver received
    on its funded. Each (trade, asset, kind) is entered once: a replay
    enters nothing. Returns the number of entries made."""
    credits = {row[4] for row in rows if row[3] == PrefundingSettlement.Kind.CREDIT}
    balances_ensure(credits, now=now)
    ids = balance_ids({row[4] for row in rows})
    balances_lock_ids(sorted(set(moved) | set(ids.values())))
    current = _figures(sorted(ids.values()))
    entries = []
    for trade_pk, obligation_pk, asset_id, kind, key, amount, committed in rows:
        balance_id = ids.get(key)
        if balance_id is None:
            continue  # a payer with no prefunded balance: nothing to take (flagged at intake)
        change = moved[balance_id]
        if kind == PrefundingSettlement.Kind.DEBIT:
            funded, held, taken = (current[balance_id][i] + change[i] for i in range(3))
            available = funded - held - taken  # clearing committed leaves it as it is
            amount = committed + max(ZERO, min(amount - committed, available))
        if amount > 0:
            entries.append((trade_pk, obligation_pk, asset_id, kind, balance_id, amount, committed))
            if kind == PrefundingSettlement.Kind.DEBIT:
                change[0] -= amount
                change[2] -= committed
            else:
                change[0] += amount
    entered = _entries_insert(entries, now=now)
    for trade_pk, _, asset_id, kind, balance_id, amount, committed in entries:
        if (trade_pk, asset_id, kind) not in entered:  # entered before: take the change back
            change = moved[balance_id]
            if kind == PrefundingSettlement.Kind.DEBIT:
                change[0] += amount
                change[2] += committed
            else:
                change[0] -= amount
    balances_apply(moved, now=now)
    return len(entered)


def _figures(balance_ids_: list[int]) -> dict[int, tuple[Decimal, Decimal, Decimal]]:
    if not balance_ids_:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, funded, held, committed FROM settlement_prefundingbalance WHERE id = ANY(%s)", [balance_ids_]
        )
        return {r[0]: (r[1], r[2], r[3]) for r in cursor.fetchall()}


def _entries_insert(entries: list[tuple], *, now: datetime) -> set[tuple[int, int, str]]:
    if not entries:
        return set()
    columns = ("trade_id", "obligation_id", "asset_id", "kind", "balance_id", "amount", "committed")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO settlement_prefundingsettlement ({', '.join(columns)}, at) "
            "SELECT t.*, %s FROM json_to_recordset(%s::json) AS t(trade_id bigint, obligation_id bigint, "
            "asset_id bigint, kind text, balance_id bigint, amount numeric, committed numeric) ORDER BY 1, 3, 4 "
            "ON CONFLICT (trade_id, asset_id, kind) DO NOTHING RETURNING trade_id, asset_id, kind",
            [now, json_rows(columns, entries)],
        )
        return {(r[0], r[1], r[2]) for r in cursor.fetchall()}


_SETTLE_SQL = """
WITH ob AS MATERIALIZED (
    SELECT o.id, o.trade_id, o.asset_id, o.debtor_id, o.creditor_id, o.amount
    FROM settlement_obligation o WHERE o.batch_id = ANY(%(batches)s) AND o.status = 'in_batch'
),
committed AS (
    -- what each trade's holds committed, per operator and asset
    SELECT e.trade_id, h.operator_id, h.asset_id, sum(e.amount) AS amount
    FROM settlement_holdevent e JOIN settlement_prefundinghold h ON h.id = e.hold_id
    WHERE e.kind = 'consumed' AND e.trade_id IN (SELECT trade_id FROM ob)
    GROUP BY 1, 2, 3
)
SELECT ob.trade_id, ob.id, ob.asset_id, 'debit', ob.debtor_id,
       CASE WHEN ob.asset_id = t.base_asset_id THEN t.sell_account ELSE t.buy_account END, ob.amount,
       coalesce(c.amount, 0)
FROM ob
JOIN settlement_trade t ON t.id = ob.trade_id
LEFT JOIN committed c ON c.trade_id = ob.trade_id AND c.operator_id = ob.debtor_id AND c.asset_id = ob.asset_id
WHERE ob.debtor_id = ANY(%(under)s) OR c.amount IS NOT NULL
UNION ALL
SELECT ob.trade_id, ob.id, ob.asset_id, 'credit', ob.creditor_id,
       CASE WHEN ob.asset_id = t.base_asset_id THEN t.buy_account ELSE t.sell_account END, ob.amount, 0
FROM ob JOIN settlement_trade t ON t.id = ob.trade_id
WHERE ob.creditor_id = ANY(%(under)s)
"""
# any hold consumed by a trade at all (the partial index on trade answers at once),
# then by a trade of this batch
_ANY_CONSUMED_SQL = """
SELECT EXISTS (SELECT 1 FROM settlement_holdevent WHERE trade_id IS NOT NULL)
   AND EXISTS (
    SELECT 1 FROM settlement_obligation o JOIN settlement_holdevent e ON e.trade_id = o.trade_id AND e.kind = 'consumed'
    WHERE o.batch_id = ANY(%s) AND o.status = 'in_batch'
)
"""


@exact_decimals
def prefunding_settle(*, batch_ids: list[int], as_of: datetime) -> int:
    """The batches' obligations are settling (call before their status
    changes, in that transaction): each payer pays out of what its hold
    committed to the trade (and the rest out of its available), each receiver
    under prefunding is credited with what it received; set-based. A payer
    counts when its hold committed something or its operator is under
    prefunding. Returns the entries made."""
    under = sorted(prefunding_operator_ids())
    with connection.cursor() as cursor:
        if not under:  # nobody under prefunding: only holds named by orders can have committed anything
            cursor.execute(_ANY_CONSUMED_SQL, [batch_ids])
            if not cursor.fetchone()[0]:
                return 0
        cursor.execute(_SETTLE_SQL, {"batches": batch_ids, "under": under})
        rows: list[SettlementRow] = [
            (trade_pk, obligation_pk, asset_id, kind, (operator_id, account, asset_id), amount, committed)
            for trade_pk, obligation_pk, asset_id, kind, operator_id, account, amount, committed in cursor.fetchall()
        ]
    if not rows:
        return 0
    return settlements_post(rows, deltas(), now=as_of)


def _flag(flagged: list[tuple[_Side, str, str]], ids: dict[str, int], *, actor: str, now: datetime) -> list[dict]:
    if not flagged:
        return []
    ComplianceException.objects.bulk_create(
        [
            ComplianceException(
                trade_id=ids[side.trade.trade_id],
                operator_id=side.operator.id,
                account_ref=side.account,
                code=code,
                message=message,
                created_at=now,
            )
            for side, code, message in flagged
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    counts: dict[str, int] = {}
    for _, code, _ in flagged:
        counts[code] = counts.get(code, 0) + 1
    sample = [
        {"trade_id": side.trade.trade_id, "side": side.name, "operator": side.operator.code, "code": code}
        for side, code, _ in flagged
    ]
    alert_raise(
        kind="prefunding_exception",
        message=f"{len(flagged)} trade side(s) accepted without full prefunding ("
        + ", ".join(f"{code}: {n}" for code, n in sorted(counts.items()))
        + "); see the compliance exceptions",
        details={"counts": counts, "sides": sample[:100], "actor": actor},
        at=now,
    )
    return sample
