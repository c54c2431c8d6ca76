"""Close-out at replacement cost (DESIGN section 9): operations record the
price actually paid to buy a client's asset back, with evidence, under four
eyes; the claim line then values what the client was owed at that price in
place of the close-out mark, and says so."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from django.db import transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.money import MAX_SCALE, amount_in_range, parse_decimal
from controls.services.approvals import actor_of, approval_describer, approval_kind, approval_request
from controls.services.audit import audit_record

from ..models import Claim, ClaimLine, Default
from .ledger import fund_locked

CENT = Decimal("0.01")


def _parsed(payload: dict) -> tuple[Claim, ClaimLine, Decimal, str]:
    claim_id = payload.get("claim_id")
    claim = Claim.objects.filter(pk=claim_id).first() if isinstance(claim_id, int) else None
    if claim is None:
        raise NotFound("not_found", f"no claim {claim_id!r}")
    if claim.default_id is None:
        raise InvalidInput("invalid_field", "a buy-in applies to a claim assessed by a default close-out")
    if claim.status != Claim.Status.ASSESSED:
        raise Conflict("claim_not_payable", f"claim {claim.id} is {claim.status}: its working is final")
    trade_id = payload.get("trade_id")
    line = (
        claim.lines.select_related("trade").filter(trade__trade_id=trade_id).first()
        if isinstance(trade_id, str)
        else None
    )
    if line is None:
        raise InvalidInput("invalid_field", f"claim {claim.id} has no line for trade {trade_id!r}", field="trade_id")
    price = amount_in_range(
        parse_decimal(payload.get("price_hkd"), field="price_hkd", scale=MAX_SCALE), scale=MAX_SCALE, field="price_hkd"
    )
    evidence = payload.get("evidence")
    if not isinstance(evidence, str) or not evidence.strip():
        raise InvalidInput(
            "invalid_field", "evidence of the buy-in is required (trade confirm, invoice)", field="evidence"
        )
    if Default.objects.filter(pk=claim.default_id, payout_ratio__isnull=False).exists():
        raise Conflict("payouts_started", f"claims of default {claim.default_id} are being paid: the working is final")
    if _claim_loss_with(claim, line, price) <= 0:
        raise Conflict(
            "no_loss_after_buy_in",
            f"at {format(price, 'f')} HKD claim {claim.id} would have no loss left: reject the claim instead",
        )
    return claim, line, price, evidence.strip()


def _line_loss(line: ClaimLine, price: Decimal) -> tuple[Decimal, Decimal]:
    owed = (line.owed_amount * price).quantize(CENT, rounding=ROUND_HALF_EVEN)
    return owed, max(owed - line.retained_hkd, Decimal("0.00"))


def _claim_loss_with(claim: Claim, line: ClaimLine, price: Decimal) -> Decimal:
    others = sum((ln.loss_hkd for ln in claim.lines.exclude(pk=line.pk)), Decimal("0.00"))
    return others + _line_loss(line, price)[1]


def _buy_in_check(*, payload: dict) -> None:
    _parsed(payload)


def buy_in_request(*, claim_id: int, data: dict, user, now: datetime) -> ApprovalRequest:
    payload = {
        "claim_id": claim_id,
        "trade_id": data.get("trade_id"),
        "price_hkd": data.get("price_hkd"),
        "evidence": data.get("evidence"),
    }
    return approval_request(kind=ApprovalRequest.Kind.CLAIM_BUY_IN, payload=payload, user=user, now=now)


@approval_describer(ApprovalRequest.Kind.CLAIM_BUY_IN)
def _buy_in_describe(*, payload: dict, **_) -> list[str]:
    claim = Claim.objects.get(pk=payload["claim_id"])
    return [
        f"value trade {payload.get('trade_id')} of claim {claim.id} ({claim.account_ref}) at the buy-in price "
        f"{payload.get('price_hkd')} HKD instead of the close-out mark",
        f"evidence: {payload.get('evidence')}",
    ]


@approval_kind(ApprovalRequest.Kind.CLAIM_BUY_IN, check=_buy_in_check)
def _buy_in_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    claim = claim_buy_in_apply(payload=payload, actor=actor_of(approver), now=now)
    return {"claim_id": claim.id, "loss_hkd": format(claim.loss_hkd, "f")}


def claim_buy_in_apply(*, payload: dict, actor: str, now: datetime) -> Claim:
    with transaction.atomic():
        # the order claim payouts lock in: the fund, the claim, its default
        fund_locked()
        claim_id = payload.get("claim_id")
        if isinstance(claim_id, int):
            locked = Claim.objects.select_for_update().filter(pk=claim_id).first()
            if locked is not None and locked.default_id is not None:
                Default.objects.select_for_update().get(pk=locked.default_id)
        claim, line, price, evidence = _parsed(payload)  # re-checked under the locks
        before = {"owed_hkd": format(line.owed_hkd, "f"), "loss_hkd": format(line.loss_hkd, "f")}
        if line.owed_mark_hkd is None:
            line.owed_mark_hkd = (line.owed_hkd / line.owed_amount) if line.owed_amount else None
        line.buy_in_price_hkd, line.buy_in_evidence = price, evidence
        loss = _claim_loss_with(claim, line, price)
        line.owed_hkd, line.loss_hkd = _line_loss(line, price)
        line.save(update_fields=["buy_in_price_hkd", "buy_in_evidence", "owed_mark_hkd", "owed_hkd", "loss_hkd"])
        default = claim.default
        assert default is not None  # checked in _parsed
        default.total_loss_hkd += loss - claim.loss_hkd
        default.save(update_fields=["total_loss_hkd"])
        claim.loss_hkd = loss
        claim.save(update_fields=["loss_hkd"])
        audit_record(
            actor=actor,
            action="claim.buy_in_recorded",
            object_type="Claim",
            object_id=claim.id,
            before=before,
            after={
                "trade_id": line.trade.trade_id if line.trade else None,
                "buy_in_price_hkd": format(price, "f"),
                "evidence": evidence,
                "owed_hkd": format(line.owed_hkd, "f"),
                "loss_hkd": format(line.loss_hkd, "f"),
                "claim_loss_hkd": format(loss, "f"),
            },
            at=now,
        )
        return claim
