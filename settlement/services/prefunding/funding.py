"""Funding events: what an operator reports moving in or out of one of its
clients' prefunded balances (DESIGN section 6a).

``deposit`` and ``adjustment`` change ``funded``. Withdrawals are two-phase,
like TigerBeetle's pending transfers: ``withdrawal_reserve`` holds the amount
(it counts in ``held``, so no order can take it), refused when ``available``
would go negative; then exactly one ``withdrawal_commit`` (funded goes down
by the committed amount, at most the reserve; the rest is available again)
or ``withdrawal_abort`` (the hold is voided) finishes it, naming the
reserve's event_id in ``reference``.

Idempotent by (operator, event_id): the same content again returns the
stored result; other content is a conflict. Funding changes what the
custodian must cover, so the operator's cover in that asset is evaluated
again in the same transaction.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import Q

from controls.exceptions import Conflict, InvalidInput
from controls.money import as_str
from controls.services.audit import audit_record
from registry.selectors import OperatorInfo, registry_load
from settlement.models import FundingEvent, PrefundingFreeze
from settlement.selectors.prefunding import amount_text, availables, exact_decimals

from .cover import cover_evaluate
from .ledger import balances_apply, balances_ensure, balances_lock, deltas
from .parsing import FINISHES, FundingRequest, funding_parse

Kind = FundingEvent.Kind


@exact_decimals
def funding_event_record(*, item: object, operator: OperatorInfo | str, actor: str, now: datetime) -> tuple[dict, bool]:
    """Apply one funding event for ``operator``'s own client account.
    Returns (result, created)."""
    registry = registry_load()
    if isinstance(operator, str):
        info = registry.operators.get(operator)
        if info is None:
            raise InvalidInput(
                "unknown_operator", f"operator {operator!r} is not a registered operator", field="operator"
            )
        operator = info
    request = funding_parse(item, operator=operator, registry=registry, now=now)
    try:
        with transaction.atomic():
            return _record(request, actor=actor, now=now)
    except IntegrityError:
        # a concurrent request stored the same event_id (or finished the same
        # reserve) first: judge against what it stored
        with transaction.atomic():
            return _record(request, actor=actor, now=now)


def _stored(request: FundingRequest) -> tuple[dict, bool] | None:
    existing = FundingEvent.objects.filter(operator_id=request.operator.id, event_id=request.event_id).first()
    if existing is None:
        return None
    if existing.content_hash != request.content_hash:
        raise Conflict(
            "conflict", f"event_id {request.event_id} of {request.operator.code} was recorded with other content"
        )
    return existing.result, False


def _record(request: FundingRequest, *, actor: str, now: datetime) -> tuple[dict, bool]:
    stored = _stored(request)
    if stored is not None:
        return stored
    key = request.key
    balances_ensure([key], now=now)
    balance = balances_lock([key])[key]
    scale = request.asset.scale
    reserve = _reserve_of(request, balance.id) if request.kind in FINISHES else None
    if request.kind == Kind.WITHDRAWAL_RESERVE:
        _frozen_check(request)
    moved = deltas()
    change = moved[balance.id]  # [funded, held, committed]
    if request.kind == Kind.DEPOSIT or request.kind == Kind.ADJUSTMENT:
        change[0] += request.amount
    elif request.kind == Kind.WITHDRAWAL_RESERVE:
        change[1] += request.amount
    elif request.kind == Kind.WITHDRAWAL_COMMIT:
        assert reserve is not None
        if request.amount > reserve.amount:
            raise InvalidInput(
                "invalid_field",
                f"the commit ({amount_text(request.amount, scale)}) is more than the reserve "
                f"{reserve.event_id} ({amount_text(reserve.amount, scale)})",
                field="amount",
            )
        change[0] -= request.amount
        change[1] -= reserve.amount
    else:  # abort
        assert reserve is not None
        if request.amount != reserve.amount:
            raise InvalidInput(
                "invalid_field",
                f"an abort voids the whole reserve {reserve.event_id}: amount must be "
                f"{amount_text(reserve.amount, scale)}",
                field="amount",
            )
        change[1] -= reserve.amount
    funded, held, committed = balance.funded + change[0], balance.held + change[1], balance.committed
    available = funded - held - committed
    if available < 0:
        now_available = availables([balance.id], now=now).get(balance.id, balance.available)
        raise Conflict(
            "insufficient_prefunding",
            f"{request.operator.code} {request.account} has {amount_text(now_available, scale)} "
            f"{request.asset.code} available; this {request.kind} would leave {amount_text(available, scale)}",
            field="amount",
        )
    balances_apply(moved, now=now)
    result = {
        "event_id": request.event_id,
        "kind": request.kind,
        "operator": request.operator.code,
        "account": request.account,
        "asset": request.asset.code,
        "amount": amount_text(request.amount, scale),
        "status": "applied",
        "balance": {
            "asset": request.asset.code,
            "funded": amount_text(funded, scale),
            "held": amount_text(held, scale),
            "committed": amount_text(committed, scale),
            "available": amount_text(available, scale),
        },
    }
    event = FundingEvent.objects.create(
        operator_id=request.operator.id,
        event_id=request.event_id,
        account=request.account,
        asset_id=request.asset.id,
        balance_id=balance.id,
        kind=request.kind,
        amount=request.amount,
        occurred_at=request.occurred_at,
        reference=request.reference,
        reserve=reserve,
        content_hash=request.content_hash,
        received_at=now,
        actor=actor,
        result=result,
    )
    audit_record(
        actor=actor,
        action="prefunding.funding_event",
        object_type="FundingEvent",
        object_id=event.id,
        after={**result, "amount": as_str(request.amount), "reference": request.reference},
        at=now,
    )
    if request.kind in (Kind.DEPOSIT, Kind.ADJUSTMENT, Kind.WITHDRAWAL_COMMIT):
        cover_evaluate(as_of=now, pairs=[(request.operator.id, request.asset.id)], actor=actor)
    return result, True


def _reserve_of(request: FundingRequest, balance_id: int) -> FundingEvent:
    reserve = FundingEvent.objects.filter(
        operator_id=request.operator.id, event_id=request.reference, kind=Kind.WITHDRAWAL_RESERVE
    ).first()
    if reserve is None or reserve.balance_id != balance_id:
        raise InvalidInput(
            "invalid_field",
            f"reference {request.reference!r} is not a withdrawal_reserve of {request.account} in {request.asset.code}",
            field="reference",
        )
    finished = FundingEvent.objects.filter(reserve=reserve).first()
    if finished is not None:
        raise Conflict(
            "withdrawal_finished", f"withdrawal reserve {reserve.event_id} was already finished by {finished.event_id}"
        )
    return reserve


def _frozen_check(request: FundingRequest) -> None:
    frozen = (
        PrefundingFreeze.objects.filter(status=PrefundingFreeze.Status.ACTIVE, operator_id=request.operator.id)
        .filter(Q(account="") | Q(account=request.account))
        .filter(Q(asset__isnull=True) | Q(asset_id=request.asset.id))
        .first()
    )
    if frozen is not None:
        raise Conflict(
            "account_frozen",
            f"prefunding for {request.operator.code} {request.account} {request.asset.code} is frozen "
            f"(freeze {frozen.id}): no withdrawal may be reserved",
        )
