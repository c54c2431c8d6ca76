"""Prefunding reads (DESIGN section 6a): balances and holds as the API shows
them, with expiry applied on every read (an expired hold never counts, swept
or not); cover per operator and asset from one set-based query; a full
recompute of the balances from the append-only events; and the comparison
of open holds with the engine's open orders."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection

from controls.money import quantum
from settlement.models import OpenOrdersSnapshot, PrefundingCover, PrefundingHold

OPEN = [str(s) for s in PrefundingHold.OPEN]
ZERO = Decimal(0)


def amount_text(amount: Decimal, scale: int) -> str:
    """An amount as the API shows it: a string at the asset's scale."""
    return format(amount.quantize(quantum(scale)), "f")


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


# --- holds ---------------------------------------------------------------------------------------


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


# --- cover ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class CoverFigures:
    operator_id: int
    operator: str
    asset_id: int
    asset: str
    scale: int
    rail_kind: str
    attested: Decimal | None
    attested_at: datetime | None
    funded: Decimal
    held: Decimal
    committed: Decimal
    unsettled_outbound: Decimal
    state: str = ""
    reason: str = ""
    since: datetime | None = None  # in this state since (kept by cover_evaluate)

    @property
    def required(self) -> Decimal:
        """What the attestation must cover: the larger of the two sums."""
        return max(self.funded, self.held + self.committed + self.unsettled_outbound)

    @property
    def headroom(self) -> Decimal | None:
        return None if self.attested is None else self.attested - self.required

    def as_json(self) -> dict:
        def text(amount: Decimal | None) -> str | None:
            return None if amount is None else amount_text(amount, self.scale)

        return {
            "operator": self.operator,
            "asset": self.asset,
            "attested": text(self.attested),
            "attested_at": instant_text(self.attested_at),
            "funded": text(self.funded),
            "held": text(self.held),
            "committed": text(self.committed),
            "unsettled_outbound": text(self.unsettled_outbound),
            "headroom": text(self.headroom),
            "state": self.state,
            "reason": self.reason or None,
        }


def attestation_max_age(rail_kind: str) -> timedelta:
    ages = settings.PREFUNDING_ATTESTATION_MAX_AGE_SECONDS
    return timedelta(seconds=int(ages.get(rail_kind, min(ages.values()))))


def cover_state(figures: CoverFigures, *, as_of: datetime) -> tuple[str, str]:
    """Fail closed: no attestation or an old one is ``stale`` (unless there
    is nothing to cover yet), a shortfall is ``breach``."""
    State = PrefundingCover.State
    required = figures.required
    if figures.attested_at is None:
        if required == 0:
            return State.UNATTESTED, "no attestation yet, and nothing to cover"
        return State.STALE, "no attestation from a designated custodian account"
    age = as_of - figures.attested_at
    limit = attestation_max_age(figures.rail_kind)
    if age > limit:
        return State.STALE, (
            f"the attestation is {int(age.total_seconds())} s old; {figures.rail_kind} rails allow "
            f"{int(limit.total_seconds())} s"
        )
    assert figures.attested is not None  # attested_at comes with it
    if figures.attested < figures.funded:
        return State.BREACH, (
            f"attested {amount_text(figures.attested, figures.scale)} is less than funded "
            f"{amount_text(figures.funded, figures.scale)}"
        )
    if figures.attested < required:
        return State.BREACH, (
            f"attested {amount_text(figures.attested, figures.scale)} is less than held + committed + unsettled "
            f"outbound {amount_text(required, figures.scale)}"
        )
    return State.COVERED, ""


_COVER_SQL = """
WITH holders AS (
    SELECT w.operator_id, a.id AS asset_id, w.id AS wallet_id, NULL::bigint AS bank_account_id
    FROM registry_wallet w JOIN registry_asset a ON a.rail_id = w.rail_id WHERE w.designated
    UNION ALL
    SELECT ba.operator_id, a.id, NULL::bigint, ba.id
    FROM registry_bankaccount ba JOIN registry_asset a ON a.rail_id = ba.rail_id WHERE ba.designated
),
latest AS (
    SELECT DISTINCT ON (h.wallet_id, h.bank_account_id, h.asset_id) h.operator_id, h.asset_id, c.amount, c.as_of
    FROM holders h JOIN settlement_custodianattestation c
      ON c.asset_id = h.asset_id AND c.operator_id = h.operator_id
     AND (c.wallet_id = h.wallet_id OR c.bank_account_id = h.bank_account_id)
    WHERE c.as_of <= %(as_of)s
    ORDER BY h.wallet_id, h.bank_account_id, h.asset_id, c.as_of DESC, c.id DESC
),
att AS (SELECT operator_id, asset_id, sum(amount) AS attested, min(as_of) AS attested_at FROM latest GROUP BY 1, 2),
bal AS (
    SELECT b.operator_id, b.asset_id, sum(b.funded) AS funded, sum(b.held) AS held, sum(b.committed) AS committed
    FROM settlement_prefundingbalance b GROUP BY 1, 2
),
lapsed AS (
    SELECT operator_id, asset_id, sum(remaining) AS remaining FROM settlement_prefundinghold
    WHERE status = ANY(%(open)s) AND expires_at <= %(as_of)s GROUP BY 1, 2
),
pairs AS (
    SELECT DISTINCT operator_id, asset_id FROM holders
    UNION SELECT operator_id, asset_id FROM bal
),
chosen AS (
    SELECT p.operator_id, p.asset_id FROM pairs p
    WHERE %(all)s OR (p.operator_id, p.asset_id) IN (SELECT * FROM unnest(%(operators)s::bigint[], %(assets)s::bigint[]))
),
outbound AS (
    -- what each operator still owes on unsettled obligations beyond what its
    -- clients' holds already committed to them (counted in committed)
    SELECT o.debtor_id AS operator_id, o.asset_id, sum(GREATEST(o.amount - coalesce((
        SELECT sum(e.amount) FROM settlement_holdevent e JOIN settlement_prefundinghold h ON h.id = e.hold_id
        WHERE e.trade_id = o.trade_id AND e.kind = 'consumed' AND h.operator_id = o.debtor_id AND h.asset_id = o.asset_id
    ), 0), 0)) AS amount
    FROM settlement_obligation o JOIN chosen c ON c.operator_id = o.debtor_id AND c.asset_id = o.asset_id
    WHERE o.status IN ('open', 'in_batch')
    GROUP BY 1, 2
)
SELECT c.operator_id, op.code, c.asset_id, a.code, a.scale, r.kind,
       att.attested, att.attested_at,
       coalesce(bal.funded, 0), coalesce(bal.held, 0) - coalesce(lapsed.remaining, 0), coalesce(bal.committed, 0),
       coalesce(outbound.amount, 0)
FROM chosen c
JOIN registry_operator op ON op.id = c.operator_id
JOIN registry_asset a ON a.id = c.asset_id
JOIN registry_rail r ON r.id = a.rail_id
LEFT JOIN att ON att.operator_id = c.operator_id AND att.asset_id = c.asset_id
LEFT JOIN bal ON bal.operator_id = c.operator_id AND bal.asset_id = c.asset_id
LEFT JOIN lapsed ON lapsed.operator_id = c.operator_id AND lapsed.asset_id = c.asset_id
LEFT JOIN outbound ON outbound.operator_id = c.operator_id AND outbound.asset_id = c.asset_id
ORDER BY op.code, a.code
"""


def cover_compute(
    *, as_of: datetime, pairs: list[tuple[int, int]] | None = None, operator_id: int | None = None
) -> list[CoverFigures]:
    """Cover per (operator, asset) at ``as_of``, in one query: every pair
    with a designated custodian holder or a balance (or only ``pairs``)."""
    params = {
        "as_of": as_of,
        "open": OPEN,
        "all": pairs is None,
        "operators": [p[0] for p in pairs or ()],
        "assets": [p[1] for p in pairs or ()],
    }
    with connection.cursor() as cursor:
        cursor.execute(_COVER_SQL, params)
        rows = cursor.fetchall()
    covers = [CoverFigures(*row) for row in rows if operator_id is None or row[0] == operator_id]
    for cover in covers:
        cover.state, cover.reason = cover_state(cover, as_of=as_of)
    return covers


# --- recompute -----------------------------------------------------------------------------------

_RECOMPUTE_SQL = """
WITH funding AS (
    SELECT balance_id,
           sum(CASE WHEN kind IN ('deposit', 'adjustment') THEN amount
                    WHEN kind = 'withdrawal_commit' THEN -amount ELSE 0 END) AS funded,
           sum(CASE WHEN kind = 'withdrawal_reserve' AND NOT EXISTS (
                        SELECT 1 FROM settlement_fundingevent f WHERE f.reserve_id = e.id) THEN amount
                    ELSE 0 END) AS reserved
    FROM settlement_fundingevent e GROUP BY balance_id
),
holds AS (
    SELECT h.balance_id,
           sum(CASE WHEN e.kind = 'created' THEN e.amount ELSE -e.amount END) AS held,
           sum(CASE WHEN e.kind = 'consumed' THEN e.amount ELSE 0 END) AS consumed
    FROM settlement_holdevent e JOIN settlement_prefundinghold h ON h.id = e.hold_id GROUP BY h.balance_id
),
settled AS (
    SELECT balance_id,
           sum(CASE WHEN kind = 'credit' THEN amount ELSE -amount END) AS funded,
           sum(CASE WHEN kind = 'debit' THEN amount ELSE 0 END) AS debited
    FROM settlement_prefundingsettlement GROUP BY balance_id
)
SELECT b.id, b.funded, b.held, b.committed,
       coalesce(f.funded, 0) + coalesce(s.funded, 0),
       coalesce(f.reserved, 0) + coalesce(h.held, 0),
       coalesce(h.consumed, 0) - coalesce(s.debited, 0)
FROM settlement_prefundingbalance b
LEFT JOIN funding f ON f.balance_id = b.id
LEFT JOIN holds h ON h.balance_id = b.id
LEFT JOIN settled s ON s.balance_id = b.id
"""

_HOLDS_RECOMPUTE_SQL = """
SELECT h.id, h.amount, h.consumed, h.remaining,
       sum(CASE WHEN e.kind = 'created' THEN e.amount WHEN e.kind = 'amended' THEN -e.amount ELSE 0 END),
       sum(CASE WHEN e.kind = 'consumed' THEN e.amount ELSE 0 END),
       sum(CASE WHEN e.kind = 'created' THEN e.amount ELSE -e.amount END)
FROM settlement_prefundinghold h JOIN settlement_holdevent e ON e.hold_id = h.id
GROUP BY h.id
"""


@dataclass(frozen=True, slots=True)
class Difference:
    what: str  # "balance" or "hold"
    id: int
    field: str
    stored: Decimal
    recomputed: Decimal

    def as_json(self) -> dict:
        return {
            "what": self.what,
            "id": self.id,
            "field": self.field,
            "stored": format(self.stored, "f"),
            "recomputed": format(self.recomputed, "f"),
        }


def prefunding_recompute() -> list[Difference]:
    """Every balance and hold against a recompute from the append-only
    records (funding events, hold events, settlement entries). Empty when
    the cached figures are right."""
    differences = []
    with connection.cursor() as cursor:
        cursor.execute(_RECOMPUTE_SQL)
        for balance_id, *pairs in cursor.fetchall():
            stored, recomputed = pairs[:3], pairs[3:]
            for name, a, b in zip(("funded", "held", "committed"), stored, recomputed, strict=True):
                if a != b:
                    differences.append(Difference("balance", balance_id, name, a, b))
        cursor.execute(_HOLDS_RECOMPUTE_SQL)
        for hold_id, *pairs in cursor.fetchall():
            stored, recomputed = pairs[:3], pairs[3:]
            for name, a, b in zip(("amount", "consumed", "remaining"), stored, recomputed, strict=True):
                if a != b:
                    differences.append(Difference("hold", hold_id, name, a, b))
    return differences


# --- open orders ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenOrdersDifferences:
    # (hold id, operator id, operator code, order id, asset id, remaining)
    holds_without_order: list[tuple[int, int, str, str, int, Decimal]]
    # (operator code or "", order id)
    orders_without_hold: list[tuple[str, str]]


_OPEN_AT = """
    h.created_at <= %(as_of)s AND h.expires_at > %(as_of)s
    AND (h.closed_at IS NULL OR h.closed_at > %(as_of)s)
"""


def open_orders_compare(snapshot: OpenOrdersSnapshot) -> OpenOrdersDifferences:
    """Holds open at the snapshot's ``as_of`` (placed by then, not yet
    consumed, released or expired) against the orders the engine listed as
    open then, set-based. An order named without an operator matches any
    operator's hold with that order id."""
    operators = [pair[0] for pair in snapshot.orders]
    orders = [pair[1] for pair in snapshot.orders]
    params = {"as_of": snapshot.as_of, "operators": operators, "orders": orders}
    listed = "SELECT * FROM unnest(%(operators)s::text[], %(orders)s::text[]) AS l(operator, order_id)"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT h.id, h.operator_id, op.code, h.order_id, h.asset_id,
                   h.remaining + coalesce((SELECT sum(e.amount) FROM settlement_holdevent e
                       WHERE e.hold_id = h.id AND e.at > %(as_of)s AND e.kind <> 'created'), 0)
            FROM settlement_prefundinghold h JOIN registry_operator op ON op.id = h.operator_id
            WHERE {_OPEN_AT}
              AND NOT EXISTS (SELECT 1 FROM ({listed}) l
                              WHERE l.order_id = h.order_id AND (l.operator = '' OR l.operator = op.code))
            ORDER BY h.id
            """,
            params,
        )
        holds_without_order = [tuple(row) for row in cursor.fetchall()]
        cursor.execute(
            f"""
            SELECT DISTINCT l.operator, l.order_id FROM ({listed}) l
            WHERE NOT EXISTS (
                SELECT 1 FROM settlement_prefundinghold h JOIN registry_operator op ON op.id = h.operator_id
                WHERE h.order_id = l.order_id AND (l.operator = '' OR l.operator = op.code) AND {_OPEN_AT})
            ORDER BY l.operator, l.order_id
            """,
            params,
        )
        orders_without_hold = [tuple(row) for row in cursor.fetchall()]
    return OpenOrdersDifferences(holds_without_order, orders_without_hold)  # type: ignore[arg-type]
