"""The fund's append-only ledger and the cap (circular para 17).

Every write locks the fund row first, so payouts, withdrawals and
contributions are serialised and the balance can never go negative or
below the cap by a race.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Sum

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.money import parse_decimal
from controls.services.approvals import actor_of, approval_describer, approval_kind
from controls.services.audit import audit_record
from settlement.models import CapConfig
from settlement.services.cap import cap_set

from ..models import ReserveEntry, ReserveFund
from .cover import reserve_cover_sync

HKD_SCALE = 2


def fund_locked() -> ReserveFund:
    fund = ReserveFund.objects.select_for_update().order_by("id").first()
    if fund is None:
        raise Conflict("no_reserve_fund", "no reserve fund is set up: load it from the network file ([reserve])")
    return fund


def fund_balance(fund: ReserveFund) -> Decimal:
    return (fund.entries.aggregate(total=Sum("amount_hkd"))["total"] or Decimal(0)).quantize(Decimal("0.01"))


def _amount(raw: object) -> Decimal:
    return parse_decimal(raw, field="amount_hkd", scale=HKD_SCALE)


def _reference(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 100:
        raise InvalidInput(
            "invalid_field", "reference must be a non-empty string of at most 100 characters", field="reference"
        )
    return raw.strip()


def _entry_json(entry: ReserveEntry) -> dict:
    return {
        "id": entry.id,
        "kind": entry.kind,
        "amount_hkd": format(entry.amount_hkd, "f"),
        "reference": entry.reference,
    }


def _write(
    *, fund: ReserveFund, kind: str, amount: Decimal, reference: str, actor: str, now: datetime, **extra
) -> ReserveEntry:
    existing = fund.entries.filter(reference=reference).first()
    if existing is not None:
        if existing.kind == kind and existing.amount_hkd == amount:
            return existing  # a replay of the same entry
        raise Conflict(
            "conflict", f"reference {reference!r} is already used by a {existing.kind} of {existing.amount_hkd} HKD"
        )
    entry = ReserveEntry.objects.create(
        fund=fund, kind=kind, amount_hkd=amount, reference=reference, actor=actor, created_at=now, **extra
    )
    audit_record(
        actor=actor,
        action=f"reserve.{kind}",
        object_type="ReserveEntry",
        object_id=entry.id,
        after=_entry_json(entry),
        at=now,
    )
    reserve_cover_sync(actor=actor, at=now)
    return entry


def reserve_contribute(*, amount_hkd: object, reference: object, actor: str, now: datetime) -> ReserveEntry:
    amount, reference = _amount(amount_hkd), _reference(reference)
    with transaction.atomic():
        return _write(
            fund=fund_locked(),
            kind=ReserveEntry.Kind.CONTRIBUTION,
            amount=amount,
            reference=reference,
            actor=actor,
            now=now,
        )


def _withdrawal_check(*, payload: dict) -> None:
    amount = _amount(payload.get("amount_hkd"))
    _reference(payload.get("reference"))
    fund = ReserveFund.objects.order_by("id").first()
    if fund is None:
        raise Conflict("no_reserve_fund", "no reserve fund is set up")
    _refuse_below_cap(balance=fund_balance(fund), amount=amount)


def _refuse_below_cap(*, balance: Decimal, amount: Decimal) -> None:
    cap = CapConfig.objects.first()
    floor = cap.total_hkd if cap else Decimal(0)
    if balance - amount < floor:
        raise Conflict(
            "below_cap",
            f"withdrawing {amount} HKD would leave {balance - amount} HKD, below the cap of {floor} HKD "
            "(para 17: the fund may not be less than the cap)",
        )
    if balance - amount < 0:
        raise Conflict("insufficient_funds", f"the fund holds {balance} HKD")


@approval_describer(ApprovalRequest.Kind.RESERVE_WITHDRAWAL)
def _withdrawal_describe(*, payload: dict, **_) -> list[str]:
    amount = _amount(payload.get("amount_hkd"))
    balance = reserve_fund_balance()
    return [
        f"withdraw {amount:,.2f} HKD from the reserve fund (ref {payload.get('reference')}): "
        f"balance {balance:,.2f} -> {balance - amount:,.2f} HKD"
    ]


@approval_describer(ApprovalRequest.Kind.RESERVE_REVERSAL)
def _reversal_describe(*, payload: dict, **_) -> list[str]:
    target = ReserveEntry.objects.get(reference=payload["reverses"])
    return [
        f"reverse the {target.kind} {target.reference} of {target.amount_hkd:,.2f} HKD "
        f"(made {target.created_at:%Y-%m-%d %H:%M} UTC by {target.actor}) with entry {payload.get('reference')}"
    ]


@approval_describer(ApprovalRequest.Kind.CAP_CHANGE)
def _cap_describe(*, payload: dict, **_) -> list[str]:
    values = _cap_payload(payload)
    current = CapConfig.objects.first()
    lines = []
    for name, value in values.items():
        before = getattr(current, name, None) if current else None
        label = name.replace("_hkd", " (HKD)").replace("_", " ")
        shown = (lambda v: f"{v:,.2f}") if name == "total_hkd" else (lambda v: f"{v}")
        lines.append(f"{label}: {shown(before) if before is not None else '(none)'} -> {shown(value)}")
    return ["change the unsettled cap: " + "; ".join(lines)]


@approval_kind(ApprovalRequest.Kind.RESERVE_WITHDRAWAL, check=_withdrawal_check)
def _withdrawal_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    amount = _amount(payload["amount_hkd"])
    fund = fund_locked()
    _refuse_below_cap(balance=fund_balance(fund), amount=amount)  # again, under the lock
    entry = _write(
        fund=fund,
        kind=ReserveEntry.Kind.WITHDRAWAL,
        amount=-amount,
        reference=_reference(payload["reference"]),
        actor=actor_of(approver),
        now=now,
    )
    return {"entry": _entry_json(entry)}


def _reversal_check(*, payload: dict) -> None:
    _reference(payload.get("reference"))
    target = ReserveEntry.objects.filter(reference=payload.get("reverses")).first()
    if target is None:
        raise NotFound("not_found", f"no ledger entry with reference {payload.get('reverses')!r}", field="reverses")
    if target.kind == ReserveEntry.Kind.REVERSAL or ReserveEntry.objects.filter(reverses=target).exists():
        raise Conflict("already_reversed", f"entry {target.reference!r} is a reversal or already reversed")
    if target.kind == ReserveEntry.Kind.PAYOUT:
        raise Conflict(
            "invalid_field", "a claim payout is not reversed in the ledger: record a contribution (recovery) instead"
        )


@approval_kind(ApprovalRequest.Kind.RESERVE_REVERSAL, check=_reversal_check)
def _reversal_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    fund = fund_locked()
    target = ReserveEntry.objects.get(reference=payload["reverses"])
    if target.amount_hkd > 0:  # reversing a contribution takes money out: the cap rule holds
        _refuse_below_cap(balance=fund_balance(fund), amount=target.amount_hkd)
    entry = _write(
        fund=fund,
        kind=ReserveEntry.Kind.REVERSAL,
        amount=-target.amount_hkd,
        reference=_reference(payload["reference"]),
        actor=actor_of(approver),
        now=now,
        reverses=target,
    )
    return {"entry": _entry_json(entry)}


# --- the cap ---------------------------------------------------------------------------


def _cap_payload(payload: dict) -> dict:
    total = parse_decimal(payload.get("total_hkd"), field="total_hkd", scale=HKD_SCALE)
    current = CapConfig.objects.first()
    thresholds = {}
    for name in ("warn_at", "settle_at", "halt_at"):
        raw = payload.get(name)
        thresholds[name] = (
            parse_decimal(raw, field=name, scale=4)
            if raw is not None
            else (getattr(current, name) if current else None)
        )
    warn, settle, halt = thresholds["warn_at"], thresholds["settle_at"], thresholds["halt_at"]
    if warn is None or settle is None or halt is None:
        raise InvalidInput(
            "invalid_field", "warn_at, settle_at and halt_at are required for a first cap", field="warn_at"
        )
    if not warn <= settle <= halt <= Decimal(1):
        raise InvalidInput("invalid_field", "need 0 < warn_at <= settle_at <= halt_at <= 1", field="warn_at")
    return {"total_hkd": total, **thresholds}


def reserve_fund_balance() -> Decimal:
    """The fund's balance now (0 when no fund is set up)."""
    fund = ReserveFund.objects.order_by("id").first()
    return fund_balance(fund) if fund else Decimal(0)


def cap_within_fund(*, total_hkd: Decimal, balance: Decimal, where: str = "") -> None:
    """The cap may not exceed the reserve fund (para 17): the rule of every
    door that sets a cap (the cap change approval, the network file)."""
    if total_hkd > balance:
        raise Conflict(
            "cap_above_fund", f"{where}a cap of {total_hkd} HKD exceeds the reserve fund's {balance} HKD (para 17)"
        )


def _cap_check(*, payload: dict) -> None:
    values = _cap_payload(payload)
    cap_within_fund(total_hkd=values["total_hkd"], balance=reserve_fund_balance())


@approval_kind(ApprovalRequest.Kind.CAP_CHANGE, check=_cap_check)
def _cap_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    values = _cap_payload(payload)
    fund_locked()  # the same lock as withdrawals: a cap change cannot race one
    cap_set(values=values, actor=actor_of(approver), at=now)
    return {"cap": {k: format(v, "f") for k, v in values.items()}}
