"""The loss waterfall on a default (DESIGN section 9): what the defaulter
owes home's clients is met, in order, from

  (a) the defaulter's own assets that home holds or controls,
  (b) insurance recoveries recorded against the default before claims are paid,
  (c) the reserve fund;

each step recorded with what it absorbed. Later recoveries (an insurer, the
estate) are recorded against the default under four eyes and refill the fund.

Layer (a) is a list of sources, one function each, returning what the
defaulter has there as HKD per asset code at the close-out marks: its
prefunded assets at a custodian home controls, and the carried credits
(what it delivered into batches that then failed, which home holds). Escrow
locks join with escrow DVP, the same signature.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import Sum

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.money import amount_in_range, parse_decimal
from controls.services.approvals import actor_of, approval_describer, approval_kind, approval_request
from controls.services.audit import audit_record
from registry.models import Asset, Operator, Wallet
from settlement.models import PrefundingBalance
from settlement.selectors.credits import counterparty_credits

from ..models import Claim, Default, DefaultRecovery, ReserveEntry, WaterfallStep
from .cover import reserve_cover_sync
from .ledger import fund_locked

CENT = Decimal("0.01")
Marks = Callable[[set[int]], dict[int, Decimal]]  # asset ids -> close-out mark per asset id it can value
Source = Callable[[Operator, Marks], dict[str, Decimal]]


def prefunded_at_home_custodian(operator: Operator, marks: Marks) -> dict[str, Decimal]:
    """The defaulter's prefunded settlement assets committed to matched, not
    yet settled trades, on the rails of its designated wallets at a custodian
    that also holds home's wallets (home controls them there), valued at the
    close-out marks."""
    home_custodians = Wallet.objects.filter(operator__role=Operator.Role.HOME, custodian__isnull=False).values(
        "custodian_id"
    )
    rails = Wallet.objects.filter(operator=operator, designated=True, custodian_id__in=home_custodians).values(
        "rail_id"
    )
    rows = list(
        PrefundingBalance.objects.filter(operator=operator, asset__rail_id__in=rails, committed__gt=0)
        .values("asset_id", "asset__code")
        .annotate(committed=Sum("committed"))
        .order_by("asset__code")
    )
    prices = marks({r["asset_id"] for r in rows})
    return {
        r["asset__code"]: (r["committed"] * prices[r["asset_id"]]).quantize(CENT, rounding=ROUND_DOWN)
        for r in rows
        if r["asset_id"] in prices
    }


def carried_credits(operator: Operator, marks: Marks) -> dict[str, Decimal]:
    """The defaulter's own assets that home already holds: what it delivered
    into batches that then failed (DESIGN section 7, carried credits), per
    asset net of what it holds of home's, valued at the close-out marks."""
    held = {code: amount for code, amount in counterparty_credits(counterparty_id=operator.id).items() if amount > 0}
    ids = dict(Asset.objects.filter(code__in=held).values_list("code", "id"))
    prices = marks(set(ids.values()))
    return {
        code: (amount * prices[ids[code]]).quantize(CENT, rounding=ROUND_DOWN)
        for code, amount in sorted(held.items())
        if ids[code] in prices
    }


# escrow locks join here with escrow DVP, same signature
OWN_ASSET_SOURCES: dict[str, Source] = {"carried_credit": carried_credits, "prefunded": prefunded_at_home_custodian}


def waterfall_own_assets(*, default: Default, marks: Marks, now: datetime) -> Decimal:
    """Layer (a), at close-out: each source absorbs what is left of the loss."""
    left = default.total_loss_hkd
    steps = []
    for name, source in OWN_ASSET_SOURCES.items():
        for asset_code, value in source(default.operator, marks).items():
            take = min(value, left)
            if take > 0:
                steps.append(
                    WaterfallStep(
                        default=default,
                        layer=WaterfallStep.Layer.OWN_ASSETS,
                        source=f"{name}:{asset_code}",
                        amount_hkd=take,
                        created_at=now,
                    )
                )
                left -= take
    WaterfallStep.objects.bulk_create(steps)
    default.own_assets_hkd = default.total_loss_hkd - left
    return default.own_assets_hkd


def claim_shares(*, claim: Claim, default: Default) -> tuple[Decimal, Decimal]:
    """What layers (a) and (b) pay of one claim: its share of the default's
    loss, rounded down to the cent."""
    if default.total_loss_hkd <= 0:
        return Decimal("0.00"), Decimal("0.00")
    share = claim.loss_hkd / default.total_loss_hkd
    # a buy-in below the mark can lower the loss under what the layers absorbed
    own_total = min(default.own_assets_hkd, default.total_loss_hkd)
    insurance_total = min(default.insurance_hkd, default.total_loss_hkd - own_total)
    own = (own_total * share).quantize(CENT, rounding=ROUND_DOWN)
    insurance = (insurance_total * share).quantize(CENT, rounding=ROUND_DOWN)
    return own, insurance


def fund_part(default: Default) -> Decimal:
    """The share of the loss left to the fund after layers (a) and (b)."""
    if default.total_loss_hkd <= 0:
        return Decimal(0)
    covered = min(default.own_assets_hkd + default.insurance_hkd, default.total_loss_hkd)
    return (default.total_loss_hkd - covered) / default.total_loss_hkd


def waterfall_as_json(default: Default) -> list[dict]:
    totals = dict(
        default.waterfall.values("layer").annotate(total=Sum("amount_hkd")).order_by().values_list("layer", "total")
    )
    return [
        {"layer": layer, "amount_hkd": format(totals.get(layer, Decimal("0.00")), "f")}
        for layer in WaterfallStep.Layer.values
    ]


def default_as_json(default: Default, *, detail: bool = False) -> dict:
    body = {
        "id": default.id,
        "operator": default.operator.code,
        "as_of": default.as_of.isoformat(),
        "reason": default.reason,
        "total_loss_hkd": format(default.total_loss_hkd, "f"),
        "claims": default.claims.count(),
        "waterfall": waterfall_as_json(default),
    }
    if detail:
        body["steps"] = [
            {"layer": s.layer, "source": s.source, "amount_hkd": format(s.amount_hkd, "f"), "at": s.created_at}
            for s in default.waterfall.all()
        ]
        body["recoveries"] = [
            {
                "source": r.source,
                "amount_hkd": format(r.amount_hkd, "f"),
                "reference": r.reference,
                "approved_by": r.approved_by,
                "at": r.created_at,
            }
            for r in default.recoveries.all()
        ]
        body["marks"] = default.marks
    return body


# --- recoveries (four eyes) ----------------------------------------------------------


def _recovery_payload(payload: dict) -> tuple[Default, str, Decimal, str]:
    default_id = payload.get("default_id")
    default = Default.objects.filter(pk=default_id).first() if isinstance(default_id, int) else None
    if default is None:
        raise NotFound("not_found", f"no default {payload.get('default_id')!r}")
    source = payload.get("source")
    if source not in DefaultRecovery.Source.values:
        raise InvalidInput(
            "invalid_field", f"source must be one of {', '.join(DefaultRecovery.Source.values)}", field="source"
        )
    amount = amount_in_range(
        parse_decimal(payload.get("amount_hkd"), field="amount_hkd", scale=2), scale=2, field="amount_hkd"
    )
    reference = payload.get("reference")
    if not isinstance(reference, str) or not reference.strip() or len(reference.strip()) > 100:
        raise InvalidInput("invalid_field", "reference must be 1 to 100 characters", field="reference")
    if default.recoveries.filter(reference=reference.strip()).exists():
        raise Conflict("conflict", f"a recovery {reference.strip()!r} is already recorded for default {default.id}")
    return default, source, amount, reference.strip()


def _recovery_check(*, payload: dict) -> None:
    _recovery_payload(payload)


def recovery_request(*, default_id: int, data: dict, user, now: datetime) -> ApprovalRequest:
    payload = {
        "default_id": default_id,
        "source": data.get("source"),
        "amount_hkd": data.get("amount_hkd"),
        "reference": data.get("reference"),
    }
    return approval_request(kind=ApprovalRequest.Kind.DEFAULT_RECOVERY, payload=payload, user=user, now=now)


@approval_describer(ApprovalRequest.Kind.DEFAULT_RECOVERY)
def _recovery_describe(*, payload: dict, **_) -> list[str]:
    default = Default.objects.select_related("operator").get(pk=payload["default_id"])
    use = (
        "meets the loss before the fund (layer b)"
        if payload.get("source") == "insurance" and not default.claims.filter(status="paid").exists()
        else "refills the reserve fund"
    )
    return [
        f"record a {payload.get('source')} recovery of {payload.get('amount_hkd')} HKD for the default of "
        f"{default.operator.code} (reference {payload.get('reference')}): it {use}"
    ]


@approval_kind(ApprovalRequest.Kind.DEFAULT_RECOVERY, check=_recovery_check)
def _recovery_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    recovery = default_recovery_record(
        payload=payload, requested_by=actor_of(request.requested_by), approved_by=actor_of(approver), now=now
    )
    return {"recovery_id": recovery.id, "default_id": recovery.default_id}


def default_recovery_record(*, payload: dict, requested_by: str, approved_by: str, now: datetime) -> DefaultRecovery:
    """Record a recovery. An insurance recovery before the first claim is
    paid absorbs what is left of the loss after layer (a) (layer (b)); the
    rest, and every later or other recovery, refills the fund."""
    with transaction.atomic():
        fund = fund_locked()  # the fund first, then the default: the order claim payouts lock in
        default_id = payload.get("default_id")
        if isinstance(default_id, int):
            Default.objects.select_for_update().filter(pk=default_id).first()
        default, source, amount, reference = _recovery_payload(payload)
        recovery = DefaultRecovery.objects.create(
            default=default,
            source=source,
            amount_hkd=amount,
            reference=reference,
            requested_by=requested_by,
            approved_by=approved_by,
            created_at=now,
        )
        absorbed = Decimal("0.00")
        if source == DefaultRecovery.Source.INSURANCE and default.payout_ratio is None:
            left = default.total_loss_hkd - default.own_assets_hkd - default.insurance_hkd
            absorbed = min(amount, max(left, Decimal("0.00")))
            if absorbed > 0:
                default.insurance_hkd += absorbed
                default.save(update_fields=["insurance_hkd"])
                WaterfallStep.objects.create(
                    default=default,
                    layer=WaterfallStep.Layer.INSURANCE,
                    source=f"recovery:{reference}",
                    amount_hkd=absorbed,
                    recovery=recovery,
                    created_at=now,
                )
        refill = amount - absorbed
        if refill > 0:
            ReserveEntry.objects.create(
                fund=fund,
                kind=ReserveEntry.Kind.CONTRIBUTION,
                amount_hkd=refill,
                reference=f"recovery:{default.id}:{reference}"[:100],
                actor=approved_by,
                created_at=now,
            )
            WaterfallStep.objects.create(
                default=default,
                layer=WaterfallStep.Layer.REFILL,
                source=f"recovery:{reference}",
                amount_hkd=refill,
                recovery=recovery,
                created_at=now,
            )
            reserve_cover_sync(actor=approved_by, at=now)
        audit_record(
            actor=approved_by,
            action="default.recovery_recorded",
            object_type="Default",
            object_id=default.id,
            after={
                "source": source,
                "amount_hkd": format(amount, "f"),
                "reference": reference,
                "insurance_layer_hkd": format(absorbed, "f"),
                "fund_refill_hkd": format(refill, "f"),
                "requested_by": requested_by,
            },
            at=now,
        )
        return recovery
