"""Cover by the designated custodians (DESIGN section 6a).

Custody records what a designated wallet or account held (from a
custodian's balance report or the chain watcher's read) through
``attestations_record``; the cover of each (operator, asset) is the sum of
the latest attestation of each of its designated holders, and must cover
both ``sum(funded)`` and ``sum(held) + sum(committed) + unsettled outbound``.

``cover_evaluate`` computes it set-based (``selectors.prefunding.cover_compute``)
and keeps the result in ``PrefundingCover``, which new holds read. A change
into ``breach`` or ``stale`` raises one alert (edge-triggered); custody turns
the bad states into breaks. Existing holds are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import connection, transaction

from controls.exceptions import InvalidInput
from controls.money import as_str
from controls.services.alerts import alert_raise
from controls.services.audit import audit_record
from settlement.models import CustodianAttestation, PrefundingCover
from settlement.selectors.prefunding import CoverFigures, cover_compute, exact_decimals

State = PrefundingCover.State


@dataclass(frozen=True, slots=True)
class AttestationLine:
    """One designated holder's balance of one asset (a wallet or a bank account)."""

    operator_id: int
    asset_id: int
    amount: Decimal
    wallet_id: int | None = None
    bank_account_id: int | None = None


def attestations_record(
    *, lines: list[AttestationLine], source: str, reference: str, as_of: datetime, actor: str, now: datetime
) -> list[CoverFigures]:
    """Record what designated holders held at ``as_of`` (a replay of the
    same source and reference changes nothing) and evaluate the cover of
    every (operator, asset) they touch. Runs in the caller's transaction
    when there is one."""
    if source not in CustodianAttestation.Source.values:
        raise InvalidInput("invalid_field", f"source must be one of {', '.join(CustodianAttestation.Source.values)}")
    if not lines:
        return []
    with transaction.atomic():
        CustodianAttestation.objects.bulk_create(
            [
                CustodianAttestation(
                    operator_id=line.operator_id,
                    asset_id=line.asset_id,
                    wallet_id=line.wallet_id,
                    bank_account_id=line.bank_account_id,
                    amount=line.amount,
                    as_of=as_of,
                    source=source,
                    reference=reference[:140],
                    recorded_at=now,
                    recorded_by=actor,
                )
                for line in lines
            ],
            ignore_conflicts=True,
        )
        audit_record(
            actor=actor,
            action="prefunding.attested",
            object_type="CustodianAttestation",
            object_id=reference[:100],
            after={
                "source": source,
                "as_of": as_of.isoformat(),
                "lines": [
                    {
                        "operator_id": line.operator_id,
                        "asset_id": line.asset_id,
                        "wallet_id": line.wallet_id,
                        "bank_account_id": line.bank_account_id,
                        "amount": as_str(line.amount),
                    }
                    for line in lines
                ],
            },
            at=now,
        )
        pairs = sorted({(line.operator_id, line.asset_id) for line in lines})
        return cover_evaluate(as_of=now, pairs=pairs, actor=actor)


@exact_decimals
def cover_evaluate(*, as_of: datetime, actor: str, pairs: list[tuple[int, int]] | None = None) -> list[CoverFigures]:
    """Evaluate the cover of ``pairs`` (every pair when None) and keep it.
    A pair that goes into ``breach`` or ``stale`` raises an alert once."""
    with transaction.atomic():
        covers = cover_compute(as_of=as_of, pairs=pairs)
        if not covers:
            return []
        keys = [(c.operator_id, c.asset_id) for c in covers]
        # first sight of a pair: its row, so that every pair is locked below
        PrefundingCover.objects.bulk_create(
            [
                PrefundingCover(
                    operator_id=c.operator_id, asset_id=c.asset_id, state="", state_since=as_of, checked_at=as_of
                )
                for c in covers
            ],
            ignore_conflicts=True,
        )
        with connection.cursor() as cursor:  # in a fixed order
            cursor.execute(
                "SELECT operator_id, asset_id, state, state_since FROM settlement_prefundingcover "
                "WHERE (operator_id, asset_id) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) "
                "ORDER BY operator_id, asset_id FOR UPDATE",
                [[k[0] for k in keys], [k[1] for k in keys]],
            )
            before = {(r[0], r[1]): (r[2] or None, r[3]) for r in cursor.fetchall()}
        for cover in covers:
            key = (cover.operator_id, cover.asset_id)
            previous, since = before.get(key, (None, as_of))
            changed = previous != cover.state
            cover.since = as_of if changed else since
            values = {
                "attested": cover.attested,
                "attested_at": cover.attested_at,
                "funded": cover.funded,
                "held": cover.held,
                "committed": cover.committed,
                "unsettled_outbound": cover.unsettled_outbound,
                "headroom": cover.headroom,
                "state": cover.state,
                "reason": cover.reason[:300],
                "checked_at": as_of,
            }
            if changed:
                values["state_since"] = as_of
            PrefundingCover.objects.filter(operator_id=cover.operator_id, asset_id=cover.asset_id).update(**values)
            if changed:
                _changed(cover, previous=previous, actor=actor, at=as_of)
        return covers


def _changed(cover: CoverFigures, *, previous: str | None, actor: str, at: datetime) -> None:
    audit_record(
        actor=actor,
        action="prefunding.cover_state",
        object_type="PrefundingCover",
        object_id=f"{cover.operator}/{cover.asset}",
        before={"state": previous},
        after=cover.as_json(),
        at=at,
    )
    if cover.state in PrefundingCover.BAD:
        kind = "prefunding_cover_breach" if cover.state == State.BREACH else "prefunding_attestation_stale"
        alert_raise(
            kind=kind,
            message=f"prefunding cover of {cover.operator} in {cover.asset} is {cover.state}: {cover.reason}; "
            "new holds are refused",
            details=cover.as_json(),
            operator_code=cover.operator,
            at=at,
        )
