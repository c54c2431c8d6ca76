"""Counterparty default and close-out (circular paras 16, 17).

On approval, in one transaction: the counterparty becomes ``defaulted`` (so
new trades with it are rejected and the pre-trade check denies it), its open
batches fail, every unsettled obligation with it is valued at the close-out
marks and closed out, and each home client's loss is assessed per trade:

    loss = value of what the client was owed by the counterparty
         - value of what home retained of the same trade (the client's own
           consideration that home never delivered), floored at zero.

One claim per client with a loss, with the per-trade working.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of, approval_describer, approval_kind
from controls.services.audit import audit_record
from controls.timestamps import parse_instant
from registry.models import Asset, Mark, Operator
from registry.selectors import HKD
from settlement.models import Obligation
from settlement.services.deadlines import batches_fail_for_default
from settlement.services.history import batch_leaving
from settlement.services.positions import positions_release

from ..models import Claim, ClaimLine, Default
from .losses import client_loss, losses_by_client
from .waterfall import waterfall_own_assets


def _parse_as_of(raw: object, now: datetime) -> datetime:
    return parse_instant(raw, field="as_of", default=now)


def close_out_marks(*, as_of: datetime, asset_ids: set[int]) -> dict[int, Decimal]:
    """The latest mark at or before ``as_of`` per asset (HKD is 1). An asset
    with no mark by then cannot be valued: the close-out refuses."""
    marks: dict[int, Decimal] = {}
    missing = []
    for asset in Asset.objects.filter(id__in=asset_ids).order_by("code"):
        if asset.code == HKD:
            marks[asset.id] = Decimal(1)
            continue
        mark = Mark.objects.filter(asset=asset, as_of__lte=as_of).order_by("-as_of", "-id").first()
        if mark is not None:
            marks[asset.id] = mark.price_hkd
        elif asset.mark_hkd is not None and asset.mark_as_of is not None and asset.mark_as_of <= as_of:
            marks[asset.id] = asset.mark_hkd  # a mark set by the network file, before history
        else:
            missing.append(asset.code)
    if missing:
        raise Conflict(
            "no_close_out_mark",
            f"no mark at or before {as_of.isoformat()} for {', '.join(missing)}: cannot value the close-out",
        )
    return marks


def _marks_available(*, as_of: datetime, asset_ids: set[int]) -> dict[int, Decimal]:
    """Close-out marks for the assets that have one by ``as_of`` (a source of
    the waterfall in an asset without a mark is left out, not guessed)."""
    marks = {}
    for asset_id in asset_ids:
        try:
            marks.update(close_out_marks(as_of=as_of, asset_ids={asset_id}))
        except Conflict:
            continue
    return marks


def _default_check(*, payload: dict) -> None:
    operator = Operator.objects.filter(code=payload.get("operator")).first()
    if operator is None:
        raise NotFound("not_found", f"no operator {payload.get('operator')!r}", field="operator")
    if operator.is_home:
        raise InvalidInput("invalid_field", "the home operator cannot be declared in default", field="operator")
    if operator.status == Operator.Status.DEFAULTED:
        raise Conflict("already_defaulted", f"{operator.code} is already in default")
    if not isinstance(payload.get("reason"), str) or not payload["reason"].strip():
        raise InvalidInput("invalid_field", "a reason is required", field="reason")
    _parse_as_of(payload.get("as_of"), datetime.now(UTC))


@approval_describer(ApprovalRequest.Kind.DEFAULT)
def _default_describe(*, payload: dict, **_) -> list[str]:
    code = payload.get("operator")
    open_owed = Obligation.objects.unsettled().filter(counterparty__code=code).count()
    when = f" valued at {payload['as_of']}" if payload.get("as_of") else " valued at the time of approval"
    return [
        f"declare {code} in default: suspend it and close out its {open_owed} unsettled obligation(s){when}; "
        "each home client's loss becomes a claim on the reserve fund",
        f"reason: {payload.get('reason') or '(none given)'}",
    ]


@approval_kind(ApprovalRequest.Kind.DEFAULT, check=_default_check)
def _default_approved(*, payload: dict, request: ApprovalRequest, approver, now: datetime) -> dict:
    default = default_close_out(
        operator_code=payload["operator"],
        reason=payload["reason"].strip(),
        as_of=_parse_as_of(payload.get("as_of"), request.requested_at),
        declared_by=actor_of(request.requested_by),
        approved_by=actor_of(approver),
        approval=request,
        now=now,
    )
    return {
        "default_id": default.id,
        "operator": payload["operator"],
        "obligations_closed_out": default.obligations_closed_out,
        "claims": default.claims.count(),
        "total_loss_hkd": format(default.total_loss_hkd, "f"),
    }


def default_close_out(
    *,
    operator_code: str,
    reason: str,
    as_of: datetime,
    declared_by: str,
    approved_by: str,
    approval: ApprovalRequest | None,
    now: datetime,
) -> Default:
    with transaction.atomic():
        operator = Operator.objects.select_for_update().get(code=operator_code)
        if operator.status == Operator.Status.DEFAULTED:
            raise Conflict("already_defaulted", f"{operator.code} is already in default")
        home = Operator.objects.get(role=Operator.Role.HOME)
        unsettled = Obligation.objects.unsettled().filter(counterparty=operator)
        marks = close_out_marks(as_of=as_of, asset_ids=set(unsettled.values_list("asset_id", flat=True)))

        before = operator.status
        operator.status = Operator.Status.DEFAULTED
        operator.save(update_fields=["status"])
        audit_record(
            actor=approved_by,
            action="operator.defaulted",
            object_type="Operator",
            object_id=operator.code,
            before={"status": before},
            after={"status": "defaulted", "reason": reason, "declared_by": declared_by},
            at=now,
        )
        # its open batches fail and their legs are cancelled; custody cancels
        # their instructions in this transaction (settlement's legs_finished hook)
        batches_fail_for_default(
            counterparty_id=operator.id, reason="counterparty declared in default", as_of=now, actor=approved_by
        )

        default = Default.objects.create(
            operator=operator,
            reason=reason,
            as_of=as_of,
            declared_by=declared_by,
            approved_by=approved_by,
            approval=approval,
            marks={Asset.objects.get(pk=k).code: format(v, "f") for k, v in marks.items()},
            created_at=now,
        )
        rows = list(unsettled.select_related("trade", "asset").order_by("trade_id", "id"))
        # the same working as the live loss-if-default (cover-1), at the close-out marks
        lines_by_client = losses_by_client(obligations=rows, marks=marks, home_id=home.id)
        total = Decimal("0.00")
        for client, lines in lines_by_client.items():
            loss = client_loss(lines)
            if loss <= 0:
                continue  # no loss, no claim; the working stays in the audit trail below
            claim = Claim.objects.create(
                default=default,
                counterparty=operator,
                account_ref=client,
                loss_hkd=loss,
                filed_by=approved_by,
                created_at=now,
            )
            for line in lines:
                line.claim = claim
            ClaimLine.objects.bulk_create(lines)
            total += loss
            audit_record(
                actor=approved_by,
                action="claim.assessed",
                object_type="Claim",
                object_id=claim.id,
                after={"account": client, "loss_hkd": format(loss, "f")},
                at=now,
            )

        # the loss waterfall, layer (a): the defaulter's own assets home holds or controls
        default.total_loss_hkd = total
        waterfall_own_assets(default=default, marks=lambda ids: _marks_available(as_of=as_of, asset_ids=ids), now=now)

        positions_release(obligations=unsettled)
        batch_leaving(unsettled)  # the history keeps the batch an in-batch one leaves
        closed = unsettled.update(status=Obligation.Status.CLOSED_OUT, batch=None)
        default.obligations_closed_out, default.total_loss_hkd = closed, total
        default.save(update_fields=["obligations_closed_out", "total_loss_hkd", "own_assets_hkd"])
        audit_record(
            actor=approved_by,
            action="default.closed_out",
            object_type="Default",
            object_id=default.id,
            after={
                "operator": operator.code,
                "as_of": as_of.isoformat(),
                "marks": default.marks,
                "obligations": closed,
                "total_loss_hkd": format(total, "f"),
                "own_assets_hkd": format(default.own_assets_hkd, "f"),
                "working": {
                    c: [
                        {"trade_id": ln.trade.trade_id if ln.trade else None, "loss_hkd": format(ln.loss_hkd, "f")}
                        for ln in ls
                    ]
                    for c, ls in lines_by_client.items()
                },
            },
            at=now,
        )
        return default
