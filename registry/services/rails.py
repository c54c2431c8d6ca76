"""Writes to the custody registry made by operations (and the watchers)."""

from datetime import datetime

from django.db import transaction

from controls.exceptions import InvalidInput, NotFound
from controls.services.audit import audit_record
from registry.models import Rail


def rail_status_set(*, code: str, status: str, reason: str, actor: str, now: datetime) -> Rail:
    if status not in Rail.Status.values:
        raise InvalidInput("invalid_field", f"status must be one of {', '.join(Rail.Status.values)}", field="status")
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput("invalid_field", "a reason is required", field="reason")
    with transaction.atomic():
        rail = Rail.objects.select_for_update().filter(code=code).first()
        if rail is None:
            raise NotFound("not_found", f"no rail {code!r}")
        before = {"status": rail.status, "reason": rail.status_reason}
        if (rail.status, rail.status_reason) == (status, reason.strip()):
            return rail
        rail.status, rail.status_reason = status, reason.strip()[:200]
        rail.save(update_fields=["status", "status_reason"])
        audit_record(
            actor=actor,
            action="rail.status",
            object_type="Rail",
            object_id=code,
            before=before,
            after={"status": status, "reason": rail.status_reason},
            at=now,
        )
        return rail


def wallet_balance_set(*, wallet_id: int, asset_id: int, amount, actor: str, now: datetime):
    """Operations state what a wallet holds (until custodian reports do)."""
    from decimal import Decimal

    from registry.models import WalletBalance

    if not isinstance(amount, Decimal) or amount < 0:
        raise InvalidInput("invalid_field", "amount must be a non-negative decimal", field="amount")
    with transaction.atomic():
        balance = WalletBalance.objects.select_for_update().filter(wallet_id=wallet_id, asset_id=asset_id).first()
        before = None if balance is None else {"amount": str(balance.amount), "as_of": balance.as_of.isoformat()}
        if balance is None:
            balance = WalletBalance(wallet_id=wallet_id, asset_id=asset_id)
        balance.amount, balance.as_of = amount, now
        balance.save()
        audit_record(
            actor=actor,
            action="wallet_balance.set",
            object_type="WalletBalance",
            object_id=f"{wallet_id}:{asset_id}",
            before=before,
            after={"amount": str(amount), "as_of": now.isoformat()},
            at=now,
        )
        return balance
