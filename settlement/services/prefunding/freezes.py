"""Freezes: operations stop new holds for an operator, one of its accounts,
or an asset, at once (optionally releasing the open holds in scope).
Lifting a freeze needs four eyes: an approval that a different ops_approver
gives (DESIGN sections 6a and 12)."""

from __future__ import annotations

from datetime import datetime

from django.contrib.auth.models import User
from django.db import transaction

from controls.exceptions import Conflict, InvalidInput, NotFound
from controls.models import ApprovalRequest
from controls.services.approvals import actor_of, approval_describer, approval_kind, approval_request
from controls.services.audit import audit_record
from registry.models import Asset, Operator
from settlement.models import HoldEvent, PrefundingFreeze
from settlement.selectors.prefunding import exact_decimals, instant_text

from .ledger import holds_close

LIFT_KIND = "prefunding_lift"
MAX_REASON = 2000


def freeze_as_json(freeze: PrefundingFreeze) -> dict:
    return {
        "freeze_id": freeze.id,
        "operator": freeze.operator.code,
        "account": freeze.account or None,
        "asset": freeze.asset.code if freeze.asset else None,
        "status": freeze.status,
        "reason": freeze.reason,
        "release_open_holds": freeze.release_open_holds,
        "released_holds": freeze.released_holds,
        "created_at": instant_text(freeze.created_at),
        "created_by": freeze.created_by,
        "lifted_at": instant_text(freeze.lifted_at),
        "lifted_by": freeze.lifted_by or None,
        "lift_approval_id": freeze.lift_approval_id,
    }


def _text(value: object, *, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > max_length or not value.replace("\n", " ").isprintable():
        raise InvalidInput("invalid_field", f"{field} must be text of at most {max_length} characters", field=field)
    return value.strip()


@exact_decimals
def freeze_create(
    *,
    operator: object,
    account: object = None,
    asset: object = None,
    release_open_holds: object = False,
    reason: object = None,
    actor: str,
    now: datetime,
) -> PrefundingFreeze:
    """Freeze at once. New holds in scope are refused ``account_frozen``;
    withdrawal reserves too. Trades still consume the holds already placed
    unless ``release_open_holds`` releases them now."""
    code = _text(operator, field="operator", max_length=16)
    if not code:
        raise InvalidInput("missing_field", "operator is required", field="operator")
    found = Operator.objects.filter(code=code).first()
    if found is None:
        raise InvalidInput("unknown_operator", f"operator {code!r} is not a registered operator", field="operator")
    ref = _text(account, field="account", max_length=64)
    asset_code = _text(asset, field="asset", max_length=16)
    asset_row = None
    if asset_code:
        asset_row = Asset.objects.filter(code=asset_code).first()
        if asset_row is None:
            raise InvalidInput("unknown_asset", f"asset {asset_code!r} is not a registered asset", field="asset")
    if not isinstance(release_open_holds, bool):
        raise InvalidInput("invalid_field", "release_open_holds must be true or false", field="release_open_holds")
    note = _text(reason, field="reason", max_length=MAX_REASON)
    with transaction.atomic():
        freeze = PrefundingFreeze.objects.create(
            operator=found,
            account=ref,
            asset=asset_row,
            reason=note,
            release_open_holds=release_open_holds,
            created_at=now,
            created_by=actor,
        )
        if release_open_holds:
            where = "operator_id = %s"
            params: list[object] = [found.id]
            if ref:
                where, params = where + " AND account = %s", [*params, ref]
            if asset_row is not None:
                where, params = where + " AND asset_id = %s", [*params, asset_row.id]
            released = holds_close(where=where, params=params, kind=HoldEvent.Kind.RELEASED, as_of=now, actor=actor)
            freeze.released_holds = len(released)
            freeze.save(update_fields=["released_holds"])
        audit_record(
            actor=actor,
            action="prefunding.frozen",
            object_type="PrefundingFreeze",
            object_id=freeze.id,
            after=freeze_as_json(freeze),
            at=now,
        )
    return freeze


def freeze_lift_request(*, freeze_id: int, reason: object, user: User, now: datetime) -> ApprovalRequest:
    """Ask for a freeze to be lifted: a different ops_approver decides."""
    note = _text(reason, field="reason", max_length=MAX_REASON)
    return approval_request(kind=LIFT_KIND, payload={"freeze_id": freeze_id, "reason": note}, user=user, now=now)


def _lift_check(*, payload: dict) -> None:
    freeze_id = payload.get("freeze_id")
    if not isinstance(freeze_id, int) or isinstance(freeze_id, bool):
        raise InvalidInput("invalid_field", "freeze_id must be a whole number", field="freeze_id")
    freeze = PrefundingFreeze.objects.filter(pk=freeze_id).first()
    if freeze is None:
        raise NotFound("not_found", f"no prefunding freeze {freeze_id}")
    if freeze.status != PrefundingFreeze.Status.ACTIVE:
        raise Conflict("freeze_lifted", f"freeze {freeze_id} is already lifted")


@approval_describer(LIFT_KIND)
def _lift_describe(*, payload: dict, **_) -> list[str]:
    freeze = PrefundingFreeze.objects.select_related("operator", "asset").get(pk=payload["freeze_id"])
    scope = " ".join(
        part
        for part in (
            freeze.operator.code,
            f"account {freeze.account}" if freeze.account else "every account",
            freeze.asset.code if freeze.asset is not None else "every asset",
        )
    )
    return [
        f"lift the prefunding freeze of {scope} (frozen by {freeze.created_by}: {freeze.reason or 'no reason given'})",
        f"why lift: {payload.get('reason') or '(none given)'}",
    ]


@approval_kind(LIFT_KIND, check=_lift_check)
def _lift(*, payload: dict, request: ApprovalRequest, approver: User, now: datetime) -> dict:
    freeze = PrefundingFreeze.objects.select_for_update().get(pk=payload["freeze_id"])
    if freeze.status != PrefundingFreeze.Status.ACTIVE:
        raise Conflict("freeze_lifted", f"freeze {freeze.id} is already lifted")
    freeze.status, freeze.lifted_at, freeze.lifted_by, freeze.lift_approval = (
        PrefundingFreeze.Status.LIFTED,
        now,
        actor_of(approver),
        request,
    )
    freeze.save(update_fields=["status", "lifted_at", "lifted_by", "lift_approval"])
    audit_record(
        actor=actor_of(approver),
        action="prefunding.freeze_lifted",
        object_type="PrefundingFreeze",
        object_id=freeze.id,
        before={"status": PrefundingFreeze.Status.ACTIVE},
        after={"status": freeze.status, "approval_id": request.id, "requested_by": request.requested_by.username},
        at=now,
    )
    return {"freeze_id": freeze.id, "status": freeze.status}
