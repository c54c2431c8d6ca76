"""The pre-trade check (DESIGN section 5): would this trade keep exposure
under the effective cap and the counterparty's limit, at replacement prices,
with no stale or missing mark? One read of the exposure inputs, judged in
Python; the reserving variant (settlement.services.reservations) judges the
same way under the cap row's lock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from controls.exceptions import InvalidInput
from controls.money import as_str, hkd, parse_decimal
from registry.models import Account, Operator
from registry.selectors import operator_eligibility

from .exposure import (
    ExposureInputs,
    ExposureState,
    ValuedAsset,
    _value,
    exposure_inputs,
    stale_before,
    valued_receivable,
)


@dataclass(slots=True)
class CheckResult:
    allowed: bool
    reason: str | None
    exposure_hkd: Decimal
    added_hkd: Decimal | None
    headroom_hkd: Decimal
    state: str
    reservation_id: str | None = None
    expires_at: datetime | None = None

    def as_json(self) -> dict:
        body = {
            "allowed": self.allowed,
            "reason": self.reason,
            "exposure_hkd": as_str(self.exposure_hkd),
            "added_hkd": as_str(self.added_hkd),
            "headroom_hkd": as_str(self.headroom_hkd),
            "state": self.state,
        }
        if self.reservation_id is not None:
            assert self.expires_at is not None
            body["reservation_id"] = self.reservation_id
            body["expires_at"] = self.expires_at.isoformat().replace("+00:00", "Z")
        return body


@dataclass(frozen=True, slots=True)
class CheckRequest:
    """A pre-trade check's input, parsed: what home would receive, from whom."""

    operator: Operator
    asset: ValuedAsset
    quantity: Decimal
    account: str | None


def check_parse(inputs: ExposureInputs, *, counterparty: object, asset: object, amount: object, account: object):
    operator = inputs.operator(counterparty) if isinstance(counterparty, str) else None
    if operator is None:
        raise InvalidInput(
            "unknown_operator", f"counterparty {counterparty!r} is not a registered operator", field="counterparty"
        )
    valued = inputs.asset(asset) if isinstance(asset, str) else None
    if valued is None:
        raise InvalidInput("unknown_asset", f"asset {asset!r} is not a registered asset", field="asset")
    quantity = parse_decimal(amount, field="amount", scale=valued.scale)
    if account is not None and (not isinstance(account, str) or not account.strip()):
        raise InvalidInput("invalid_field", "account must be a non-empty string", field="account")
    return CheckRequest(operator, valued, quantity, account)


def check_judge(inputs: ExposureInputs, request: CheckRequest, *, as_of: datetime) -> CheckResult:
    """The check itself, on inputs already read. The denial reasons are, in
    order, eligibility, client opt-in, the halt state, a missing mark, a
    stale mark, the cap and the counterparty's limit; open reservations
    count against both."""
    operator, valued, quantity, account = request.operator, request.asset, request.quantity, request.account
    exposure = _value(inputs, inputs.positions, as_of=as_of, method="gross")
    halt_at = exposure.thresholds["halt_at"]
    cap_room = exposure.effective_cap_hkd * halt_at - exposure.total_hkd - exposure.reserved_hkd
    mine = exposure.counterparty(operator.code)
    cp_exposure = (mine.exposure_hkd + mine.reserved_hkd) if mine else Decimal("0.00")
    limit_room = operator.limit_hkd - cp_exposure if operator.limit_hkd is not None else None
    headroom = hkd(max(min(cap_room, limit_room) if limit_room is not None else cap_room, Decimal(0)))
    cutoff = stale_before(as_of)
    mark_stale = valued.stale(before=cutoff)
    added = (
        hkd(valued_receivable(quantity, valued, haircut=valued.haircut_at(stale_before=cutoff))[1])
        if valued.mark is not None
        else None
    )

    def result(reason: str | None) -> CheckResult:
        return CheckResult(reason is None, reason, exposure.total_hkd, added, headroom, exposure.state)

    problems = operator_eligibility(operator)
    if operator.is_home:
        return result("counterparty_is_home: the counterparty must be an overseas operator")
    if problems:
        return result("counterparty_ineligible: " + "; ".join(problems))
    if account is not None:
        home = next(o for o in inputs.operators if o.is_home)
        client = Account.objects.filter(operator_id=home.id, ref=account).first()
        if client is None:
            return result(f"account_unregistered: home account {account} is not registered")
        if client.client_class == Account.ClientClass.RETAIL and not client.shared_book_opt_in:
            return result(f"retail_without_opt_in: retail account {account} has not opted in to the shared order book")
    if exposure.state == ExposureState.HALTED:
        return result("halted: " + "; ".join(exposure.reasons))
    if added is None:
        return result(f"no_mark: {valued.code} has no mark, so the exposure it adds cannot be valued")
    if mark_stale:
        return result(
            f"mark_stale: the {valued.code} mark is older than {settings.MARK_STALE_AFTER_SECONDS} s; new exposure "
            f"in {valued.code} is denied until a fresh mark arrives"
        )
    if added > cap_room:
        return result(
            f"cap_exceeded: adds {as_str(added)} HKD with {as_str(hkd(max(cap_room, Decimal(0))))} HKD left under the cap"
        )
    if limit_room is not None and added > limit_room:
        return result(
            f"limit_exceeded: adds {as_str(added)} HKD with {as_str(hkd(max(limit_room, Decimal(0))))} HKD left "
            f"under {operator.code}'s limit"
        )
    return result(None)


def exposure_check(*, counterparty: str, asset: str, amount: object, account: object, as_of: datetime) -> CheckResult:
    """May the engine match an order that makes home receive ``amount`` of
    ``asset`` from ``counterparty``, valued at its replacement price (mark x
    (1 + haircut))? Advisory: it reserves nothing (``exposure_reserve`` in
    settlement/services/reservations.py does). Everything but the client's
    opt-in comes from one read."""
    inputs = exposure_inputs(as_of=as_of)
    request = check_parse(inputs, counterparty=counterparty, asset=asset, amount=amount, account=account)
    return check_judge(inputs, request, as_of=as_of)
