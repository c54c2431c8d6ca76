"""What refuses a new hold before its balance is looked at (DESIGN
section 6a): the operator's status and eligibility, the bounds of its
expiry, a freeze, and the cover of its operator in its asset (fail closed:
no attestation, an old one or a breach refuses it). Each check answers for
one item; a batch reads freezes, cover and rails once for all its items."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection

from controls.exceptions import Conflict, DomainError, InvalidInput
from settlement.models import PrefundingCover
from settlement.selectors.prefunding import attestation_max_age

from .parsing import HoldRequest


@dataclass(slots=True)
class HoldResult:
    index: int
    order_id: str
    outcome: str  # created | duplicate | refused
    status_code: int
    body: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        head = {"index": self.index, "order_id": self.order_id}
        if self.outcome == "refused":
            return {**head, **self.body}
        return {**head, "result": self.outcome, **self.body}


def refused(index: int, order_id: str, error: DomainError, **extra) -> HoldResult:
    body = {"code": error.code, "message": error.message}
    if error.field:
        body["field"] = error.field
    body.update(extra)
    return HoldResult(index, order_id, "refused", error.status, body)


def conflict_for(request: HoldRequest, code: str, message: str, **extra) -> HoldResult:
    return refused(request.index, request.order_id, Conflict(code, message), **extra)


def _operator_refusal(request: HoldRequest) -> HoldResult | None:
    operator = request.operator
    if operator.status != "active":
        return conflict_for(
            request, f"counterparty_{operator.status}", f"operator {operator.code} is {operator.status}"
        )
    if operator.problems:
        return conflict_for(
            request,
            "counterparty_ineligible",
            f"operator {operator.code} is not eligible: " + "; ".join(operator.problems),
        )
    return None


def _expiry(request: HoldRequest, *, now: datetime) -> datetime:
    longest = now + timedelta(seconds=settings.PREFUNDING_HOLD_MAX_TTL_SECONDS)
    if request.expires_given is None:
        return min(now + timedelta(seconds=settings.PREFUNDING_HOLD_DEFAULT_TTL_SECONDS), longest)
    if request.expires_given <= now:
        raise InvalidInput("invalid_field", "expires_at must be in the future", field="expires_at")
    if request.expires_given > longest:
        raise InvalidInput(
            "invalid_field",
            f"expires_at may be at most {settings.PREFUNDING_HOLD_MAX_TTL_SECONDS} s from now ({longest.isoformat()})",
            field="expires_at",
        )
    return request.expires_given


def _freezes(operator_ids: list[int]) -> list[tuple[int, int, str, int | None]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, operator_id, account, asset_id FROM settlement_prefundingfreeze "
            "WHERE status = 'active' AND operator_id = ANY(%s) ORDER BY id",
            [operator_ids],
        )
        return cursor.fetchall()


def _covers(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], tuple[str, datetime | None, str]]:
    """(state, attested_at, rail kind) per (operator, asset) as last evaluated."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.operator_id, c.asset_id, c.state, c.attested_at, c.reason FROM settlement_prefundingcover c "
            "JOIN unnest(%s::bigint[], %s::bigint[]) AS k(operator_id, asset_id) "
            "ON c.operator_id = k.operator_id AND c.asset_id = k.asset_id",
            [[p[0] for p in pairs], [p[1] for p in pairs]],
        )
        return {(r[0], r[1]): (r[2], r[3], r[4]) for r in cursor.fetchall()}


def _rail_kinds(asset_ids: list[int]) -> dict[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.id, r.kind FROM registry_asset a JOIN registry_rail r ON r.id = a.rail_id WHERE a.id = ANY(%s)",
            [asset_ids],
        )
        return dict(cursor.fetchall())


def _cover_refusal(request: HoldRequest, cover, rail_kind: str, *, now: datetime) -> HoldResult | None:
    """Fail closed: no attestation, an old one, or a breach refuses the hold."""
    where = f"{request.operator.code} {request.asset.code}"
    if cover is None or cover[1] is None:
        return conflict_for(
            request, "attestation_stale", f"no designated custodian has attested {where} (prefunding cover unverified)"
        )
    state, attested_at, reason = cover
    age, limit = now - attested_at, attestation_max_age(rail_kind)
    if age > limit:
        return conflict_for(
            request,
            "attestation_stale",
            f"the custodian attestation of {where} is {int(age.total_seconds())} s old; at most "
            f"{int(limit.total_seconds())} s allowed",
        )
    if state == PrefundingCover.State.BREACH:
        return conflict_for(request, "cover_breach", f"the designated custodian does not cover {where}: {reason}")
    return None


def holds_judge(fresh: list[HoldRequest], results: dict[int, HoldResult], *, now: datetime) -> list[HoldRequest]:
    """Everything but the balance: operator status, expiry bounds, freezes,
    cover. Returns the requests that passed; the others get their refusal."""
    if not fresh:
        return []
    freezes = _freezes(sorted({r.operator.id for r in fresh}))
    pairs = sorted({(r.operator.id, r.asset.id) for r in fresh})
    covers = _covers(pairs)
    kinds = _rail_kinds(sorted({p[1] for p in pairs}))
    passed = []
    for request in fresh:
        refusal = _operator_refusal(request)
        if refusal is None:
            try:
                request.expires_given = _expiry(request, now=now)
            except InvalidInput as error:
                refusal = refused(request.index, request.order_id, error)
        if refusal is None:
            freeze = next(
                (
                    f
                    for f in freezes
                    if f[1] == request.operator.id
                    and f[2] in ("", request.account)
                    and f[3] in (None, request.asset.id)
                ),
                None,
            )
            if freeze is not None:
                refusal = conflict_for(
                    request,
                    "account_frozen",
                    f"prefunding for {request.operator.code} {request.account} {request.asset.code} is frozen "
                    f"(freeze {freeze[0]})",
                )
        if refusal is None:
            refusal = _cover_refusal(
                request, covers.get((request.operator.id, request.asset.id)), kinds[request.asset.id], now=now
            )
        if refusal is not None:
            results[request.index] = refusal
        else:
            passed.append(request)
    return passed
