"""Compensation claims: assessed -> approved (a second person) -> paid from
the fund; or rejected with a reason.

If the fund cannot pay a default's claims in full, every claim of that
default is paid the same share (fixed at its first payout: what the fund
had available over the default's total claimed loss), and the shortfall is
recorded per claim and raised as an alert.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import Sum

from controls.exceptions import Conflict, Forbidden, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.money import parse_decimal
from controls.services.alerts import alert_raise
from controls.services.approvals import (
    APPROVER_GROUP,
    actor_of,
    approval_describer,
    approval_kind,
    approval_request,
    in_groups,
)
from controls.services.audit import audit_record
from registry.models import Operator
from settlement.models import Trade

from ..models import Claim, ClaimLine, Default, ReserveEntry, WaterfallStep
from .cover import reserve_cover_sync
from .ledger import fund_balance, fund_locked
from .waterfall import claim_shares, fund_part

CENT = Decimal("0.01")


def claim_file(
    *, counterparty: object, account: object, loss_hkd: object, evidence: object, trade_id: object, user, now: datetime
) -> Claim:
    """Operations file a claim by hand for another settlement-failure loss."""
    operator = (
        Operator.objects.filter(code=counterparty, role=Operator.Role.OVERSEAS).first()
        if isinstance(counterparty, str)
        else None
    )
    if operator is None:
        raise InvalidInput(
            "unknown_operator", f"counterparty {counterparty!r} is not an overseas operator", field="counterparty"
        )
    if not isinstance(account, str) or not account.strip() or len(account) > 64:
        raise InvalidInput("invalid_field", "account must be the home client's reference", field="account")
    loss = parse_decimal(loss_hkd, field="loss_hkd", scale=2)
    if not isinstance(evidence, str) or not evidence.strip():
        raise InvalidInput("invalid_field", "evidence is required for a claim filed by hand", field="evidence")
    trade = None
    if trade_id is not None:
        trade = Trade.objects.filter(trade_id=trade_id).first()
        if trade is None:
            raise InvalidInput("invalid_field", f"no trade {trade_id!r}", field="trade_id")
    with transaction.atomic():
        claim = Claim.objects.create(
            counterparty=operator,
            account_ref=account.strip(),
            loss_hkd=loss,
            evidence=evidence.strip(),
            filed_by=actor_of(user),
            created_at=now,
        )
        ClaimLine.objects.create(
            claim=claim, trade=trade, owed_asset="HKD", owed_amount=loss, owed_hkd=loss, loss_hkd=loss
        )
        audit_record(
            actor=actor_of(user),
            action="claim.filed",
            object_type="Claim",
            object_id=claim.id,
            after={"account": claim.account_ref, "loss_hkd": format(loss, "f")},
            at=now,
        )
    return claim


def claim_approval_request(*, claim_id: int, user, now: datetime) -> ApprovalRequest:
    """Ask for a payout. A claim has at most one pending request."""
    claim = Claim.objects.filter(pk=claim_id).first()
    if claim is None:
        raise NotFound("not_found", f"no claim {claim_id}")
    pending = ApprovalRequest.objects.filter(
        kind=ApprovalRequest.Kind.CLAIM_PAYOUT, status=ApprovalRequest.Status.PENDING, payload__claim_id=claim_id
    ).first()
    if pending is not None:
        return pending
    return approval_request(kind=ApprovalRequest.Kind.CLAIM_PAYOUT, payload={"claim_id": claim_id}, user=user, now=now)


def _claim_check(*, payload: dict) -> None:
    claim_id = payload.get("claim_id")
    claim = Claim.objects.filter(pk=claim_id).first() if isinstance(claim_id, int) else None
    if claim is None:
        raise NotFound("not_found", f"no claim {payload.get('claim_id')}")
    if claim.status != Claim.Status.ASSESSED:
        raise Conflict("claim_not_payable", f"claim {claim.id} is {claim.status}")


@approval_describer(ApprovalRequest.Kind.CLAIM_PAYOUT)
def _claim_describe(*, payload: dict, **_) -> list[str]:
    claim = Claim.objects.select_related("counterparty").get(pk=payload["claim_id"])
    return [
        f"pay claim {claim.id} of home client {claim.account_ref} (a loss of {claim.loss_hkd:,.2f} HKD on "
        f"{claim.counterparty.code}'s {'default' if claim.default_id else 'fail'}) from the reserve fund, "
        "pro rata if the fund is short"
    ]


@approval_kind(ApprovalRequest.Kind.CLAIM_PAYOUT, check=_claim_check)
def _claim_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    claim = claim_pay(claim_id=payload["claim_id"], approved_by=actor_of(approver), now=now)
    return {
        "claim_id": claim.id,
        "status": claim.status,
        "paid_hkd": format(claim.paid_hkd, "f"),
        "shortfall_hkd": format(claim.shortfall_hkd, "f"),
    }


def claim_pay(*, claim_id: int, approved_by: str, now: datetime) -> Claim:
    """Approve and pay one claim. Locks the fund, then the claim (always in
    that order), so two approvals of one claim pay it once and payouts never
    take the fund below zero."""
    with transaction.atomic():
        fund = fund_locked()
        claim = Claim.objects.select_for_update().filter(pk=claim_id).first()
        if claim is None:
            raise NotFound("not_found", f"no claim {claim_id}")
        if claim.status != Claim.Status.ASSESSED:
            raise Conflict("claim_not_payable", f"claim {claim.id} is {claim.status}")
        claim.status, claim.approved_by, claim.approved_at = Claim.Status.APPROVED, approved_by, now
        claim.save(update_fields=["status", "approved_by", "approved_at"])
        audit_record(
            actor=approved_by,
            action="claim.approved",
            object_type="Claim",
            object_id=claim.id,
            after={"loss_hkd": format(claim.loss_hkd, "f")},
            at=now,
        )

        balance = fund_balance(fund)
        own = insurance = Decimal("0.00")
        default = None
        if claim.default_id is not None:
            default = Default.objects.select_for_update().get(pk=claim.default_id)
            # the waterfall: layers (a) and (b) pay their share first, the fund the rest
            own, insurance = claim_shares(claim=claim, default=default)
            if default.payout_ratio is None:
                outstanding = default.claims.filter(
                    status__in=[Claim.Status.ASSESSED, Claim.Status.APPROVED]
                ).aggregate(t=Sum("loss_hkd"))["t"]
                fund_due = outstanding * fund_part(default) if outstanding else Decimal(0)
                default.payout_ratio = (
                    min(Decimal(1), max(balance, Decimal(0)) / fund_due) if fund_due > 0 else Decimal(1)
                )
                default.payout_ratio = default.payout_ratio.quantize(Decimal("0.0000000001"), rounding=ROUND_DOWN)
                default.save(update_fields=["payout_ratio"])
            due = ((claim.loss_hkd - own - insurance) * default.payout_ratio).quantize(CENT, rounding=ROUND_DOWN)
        else:
            due = claim.loss_hkd
        from_fund = min(due, max(balance, Decimal(0)))
        paid = own + insurance + from_fund
        claim.paid_by = {
            "own_assets": format(own, "f"),
            "insurance": format(insurance, "f"),
            "reserve_fund": format(from_fund, "f"),
        }
        if default is not None and from_fund > 0:
            WaterfallStep.objects.create(
                default=default,
                layer=WaterfallStep.Layer.RESERVE_FUND,
                source=f"claim:{claim.id}",
                amount_hkd=from_fund,
                claim=claim,
                created_at=now,
            )
        if from_fund > 0:
            ReserveEntry.objects.create(
                fund=fund,
                kind=ReserveEntry.Kind.PAYOUT,
                amount_hkd=-from_fund,
                reference=f"claim:{claim.id}",
                claim=claim,
                actor=approved_by,
                created_at=now,
            )
        claim.status, claim.paid_hkd, claim.shortfall_hkd, claim.paid_at = (
            Claim.Status.PAID,
            paid,
            claim.loss_hkd - paid,
            now,
        )
        claim.save(update_fields=["status", "paid_hkd", "shortfall_hkd", "paid_at", "paid_by"])
        reserve_cover_sync(actor=approved_by, at=now)
        audit_record(
            actor=approved_by,
            action="claim.paid",
            object_type="Claim",
            object_id=claim.id,
            before={"status": Claim.Status.APPROVED},
            after={
                "status": Claim.Status.PAID,
                "paid_hkd": format(paid, "f"),
                "paid_by": claim.paid_by,
                "shortfall_hkd": format(claim.shortfall_hkd, "f"),
            },
            at=now,
        )
        if claim.shortfall_hkd > 0:
            total = Claim.objects.aggregate(t=Sum("shortfall_hkd"))["t"]
            alert_raise(
                kind="claims_shortfall",
                operator_code=claim.counterparty.code,
                message=f"claim {claim.id} paid {paid} of {claim.loss_hkd} HKD; total unpaid across claims {total} HKD",
                details={
                    "claim_id": claim.id,
                    "shortfall_hkd": format(claim.shortfall_hkd, "f"),
                    "total_shortfall_hkd": format(total, "f"),
                },
                at=now,
            )
        return claim


def claim_reject(*, claim_id: int, reason: object, user, now: datetime) -> Claim:
    if not in_groups(user, (APPROVER_GROUP,)):
        raise Forbidden("forbidden", "only an ops_approver can reject a claim")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("invalid_field", "a reason is required to reject a claim", field="reason")
    with transaction.atomic():
        claim = Claim.objects.select_for_update().filter(pk=claim_id).first()
        if claim is None:
            raise NotFound("not_found", f"no claim {claim_id}")
        if claim.status != Claim.Status.ASSESSED:
            raise Conflict("claim_not_payable", f"claim {claim.id} is {claim.status}")
        claim.status, claim.rejected_reason = Claim.Status.REJECTED, reason.strip()
        claim.save(update_fields=["status", "rejected_reason"])
        audit_record(
            actor=actor_of(user),
            action="claim.rejected",
            object_type="Claim",
            object_id=claim.id,
            after={"reason": claim.rejected_reason},
            at=now,
        )
        return claim


def claim_as_json(claim: Claim) -> dict:
    return {
        "id": claim.id,
        "counterparty": claim.counterparty.code,
        "account": claim.account_ref,
        "status": claim.status,
        "loss_hkd": format(claim.loss_hkd, "f"),
        "paid_hkd": format(claim.paid_hkd, "f"),
        "shortfall_hkd": format(claim.shortfall_hkd, "f"),
        # in waterfall order (the stored JSON keeps no order)
        "paid_by": [
            {"layer": layer, "amount_hkd": claim.paid_by[layer]}
            for layer in ("own_assets", "insurance", "reserve_fund")
            if layer in claim.paid_by
        ],
        "default_id": claim.default_id,
        "rejected_reason": claim.rejected_reason or None,
        "lines": [
            {
                "trade_id": line.trade.trade_id if line.trade else None,
                "owed": {
                    "asset": line.owed_asset,
                    "amount": format(line.owed_amount.normalize(), "f"),
                    "value_hkd": format(line.owed_hkd, "f"),
                },
                "retained": {
                    "asset": line.retained_asset or None,
                    "amount": format(line.retained_amount.normalize(), "f"),
                    "value_hkd": format(line.retained_hkd, "f"),
                },
                "loss_hkd": format(line.loss_hkd, "f"),
                # close-out at replacement cost: the buy-in price in place of the mark, and the evidence
                "owed_valued_at": "buy_in" if line.buy_in_price_hkd is not None else "close_out_mark",
                "buy_in": None
                if line.buy_in_price_hkd is None
                else {
                    "price_hkd": format(line.buy_in_price_hkd.normalize(), "f"),
                    "close_out_mark_hkd": format(line.owed_mark_hkd.normalize(), "f") if line.owed_mark_hkd else None,
                    "evidence": line.buy_in_evidence,
                },
            }
            for line in claim.lines.select_related("trade")
        ],
    }
