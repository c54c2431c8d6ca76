"""Cover per operator and asset against the designated custodians'
attestations, from one set-based query."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection

from settlement.models import PrefundingCover

from .balances import EXACT, OPEN, amount_text, exact_decimals, instant_text


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
        return max(self.funded, EXACT.add(EXACT.add(self.held, self.committed), self.unsettled_outbound))

    @property
    def headroom(self) -> Decimal | None:
        return None if self.attested is None else EXACT.subtract(self.attested, self.required)

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
    FROM (
        -- the unsettled, as the indexes find them: open ones have no batch,
        -- the others are in an open batch (Obligation.objects.unsettled)
        SELECT trade_id, debtor_id, asset_id, amount FROM settlement_obligation
        WHERE batch_id IS NULL AND status = 'open'
        UNION ALL
        SELECT u.trade_id, u.debtor_id, u.asset_id, u.amount
        FROM settlement_obligation u JOIN settlement_batch b ON b.id = u.batch_id
        WHERE b.status = 'open' AND u.status = 'in_batch'
    ) o JOIN chosen c ON c.operator_id = o.debtor_id AND c.asset_id = o.asset_id
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


@exact_decimals
def cover_compute(
    *, as_of: datetime, pairs: list[tuple[int, int]] | None = None, operator_id: int | None = None
) -> list[CoverFigures]:
    """Cover per (operator, asset) at ``as_of``, in one query: every pair
    with a designated custodian holder or a balance (or only ``pairs``)."""
    params: dict[str, Any] = {
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
