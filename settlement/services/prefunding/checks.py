"""What refuses a new hold before its balance is looked at (DESIGN
section 6a): the operator's status and eligibility, the bounds of its
expiry, a freeze, and the cover of its operator in its asset (fail closed:
no attestation, an old one or a breach refuses it). Each check answers for
one item, from what ``placing`` read for all the items at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings

from controls.exceptions import Conflict, DomainError, InvalidInput
from settlement.models import PrefundingCover
from settlement.selectors.prefunding import attestation_max_age

from .ledger import Key
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


@dataclass(frozen=True, slots=True)
class _Lifetimes:
    """The bounds of a new hold's expiry, read from the settings once per request."""

    default: datetime
    longest: datetime

    @classmethod
    def at(cls, now: datetime) -> _Lifetimes:
        longest = now + timedelta(seconds=settings.PREFUNDING_HOLD_MAX_TTL_SECONDS)
        return cls(min(now + timedelta(seconds=settings.PREFUNDING_HOLD_DEFAULT_TTL_SECONDS), longest), longest)


def _expiry(request: HoldRequest, *, now: datetime, lifetimes: _Lifetimes) -> datetime:
    longest = lifetimes.longest
    if request.expires_given is None:
        return lifetimes.default
    if request.expires_given <= now:
        raise InvalidInput("invalid_field", "expires_at must be in the future", field="expires_at")
    if request.expires_given > longest:
        raise InvalidInput(
            "invalid_field",
            f"expires_at may be at most {settings.PREFUNDING_HOLD_MAX_TTL_SECONDS} s from now ({longest.isoformat()})",
            field="expires_at",
        )
    return request.expires_given


@dataclass(frozen=True, slots=True)
class Standing:
    """What stands in the way of a new hold on one balance (read with the
    balances, see ``placing``): an active freeze, the cover as last
    evaluated, the asset's rail kind (its attestations' maximum age)."""

    freeze_id: int | None
    state: str | None
    attested_at: datetime | None
    reason: str | None
    rail_kind: str


def _cover_refusal(request: HoldRequest, standing: Standing, *, now: datetime) -> HoldResult | None:
    """Fail closed: no attestation, an old one, or a breach refuses the hold."""
    where = f"{request.operator.code} {request.asset.code}"
    attested_at = standing.attested_at
    if attested_at is None:
        return conflict_for(
            request, "attestation_stale", f"no designated custodian has attested {where} (prefunding cover unverified)"
        )
    age, limit = now - attested_at, attestation_max_age(standing.rail_kind)
    if age > limit:
        return conflict_for(
            request,
            "attestation_stale",
            f"the custodian attestation of {where} is {int(age.total_seconds())} s old; at most "
            f"{int(limit.total_seconds())} s allowed",
        )
    if standing.state == PrefundingCover.State.BREACH:
        return conflict_for(
            request, "cover_breach", f"the designated custodian does not cover {where}: {standing.reason}"
        )
    return None


def holds_judge(
    fresh: list[HoldRequest], results: dict[int, HoldResult], *, standings: dict[Key, Standing], now: datetime
) -> list[HoldRequest]:
    """Everything but the balance: operator status, expiry bounds, freezes,
    cover. Returns the requests that passed; the others get their refusal."""
    passed = []
    lifetimes = _Lifetimes.at(now)
    for request in fresh:
        refusal = _operator_refusal(request)
        if refusal is None:
            try:
                request.expires_given = _expiry(request, now=now, lifetimes=lifetimes)
            except InvalidInput as error:
                refusal = refused(request.index, request.order_id, error)
        standing = standings[request.key]
        if refusal is None and standing.freeze_id is not None:
            refusal = conflict_for(
                request,
                "account_frozen",
                f"prefunding for {request.operator.code} {request.account} {request.asset.code} is frozen "
                f"(freeze {standing.freeze_id})",
            )
        if refusal is None:
            refusal = _cover_refusal(request, standing, now=now)
        if refusal is not None:
            results[request.index] = refusal
        else:
            passed.append(request)
    return passed
