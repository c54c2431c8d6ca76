"""Deliveries reported by a counterparty: hints for matching, never a
confirmation by themselves."""

from __future__ import annotations

from datetime import datetime

from django.db import transaction

from controls.exceptions import InvalidInput, NotFound
from controls.services.audit import audit_record
from registry.models import Operator, Rail
from settlement.models import Delivery, Leg


def delivery_report(
    *,
    leg_id: int,
    tx_hash: str | None,
    bank_reference: str | None,
    operator: Operator | None,
    actor: str,
    now: datetime,
) -> tuple[Delivery, bool]:
    """A counterparty says how it delivered. Kept as a hint for matching; it
    never confirms a leg by itself. Returns (delivery, created)."""
    leg = Leg.objects.select_related("batch", "asset__rail").filter(pk=leg_id).first()
    if leg is None or (operator is not None and not operator.is_home and leg.batch.counterparty_id != operator.id):
        raise NotFound("not_found", f"no leg {leg_id}")
    if bool(tx_hash) == bool(bank_reference):
        raise InvalidInput("invalid_request", "send exactly one of tx_hash or bank_reference")
    if tx_hash is not None:
        if leg.asset.rail.kind != Rail.Kind.EVM:
            raise InvalidInput(
                "invalid_field",
                f"leg {leg.id} is on a {leg.asset.rail.kind} rail: send bank_reference",
                field="tx_hash",
            )
        if not (isinstance(tx_hash, str) and len(tx_hash) == 66 and tx_hash.startswith("0x") and _is_hex(tx_hash[2:])):
            raise InvalidInput("invalid_field", "tx_hash must be 0x followed by 64 hex digits", field="tx_hash")
        tx_hash = tx_hash.lower()
    else:
        if not isinstance(bank_reference, str) or not bank_reference.strip() or len(bank_reference) > 80:
            raise InvalidInput(
                "invalid_field",
                "bank_reference must be a non-empty string of at most 80 characters",
                field="bank_reference",
            )
        bank_reference = bank_reference.strip()
    with transaction.atomic():
        delivery, created = Delivery.objects.get_or_create(
            leg=leg,
            tx_hash=tx_hash or "",
            bank_reference=bank_reference or "",
            defaults={"reported_by": actor, "reported_at": now},
        )
        if created:
            audit_record(
                actor=actor,
                action="delivery.reported",
                object_type="Leg",
                object_id=leg.id,
                after={"tx_hash": delivery.tx_hash, "bank_reference": delivery.bank_reference},
                at=now,
            )
    return delivery, created


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True
