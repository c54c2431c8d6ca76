"""The engine's open orders, for reconciliation with the open holds
(DESIGN section 6a): stored here, compared by custody (which raises the
breaks), marked reconciled here."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction

from controls.exceptions import InvalidInput
from controls.services.audit import audit_record
from controls.timestamps import parse_instant
from settlement import hooks
from settlement.models import OpenOrdersSnapshot
from settlement.selectors.prefunding import instant_text


def _orders(raw: object) -> list[list[str]]:
    """Each item is an order id (matches any operator's hold) or
    ``{"operator", "order_id"}``."""
    if not isinstance(raw, list):
        raise InvalidInput("invalid_field", "order_ids must be a list", field="order_ids")
    limit = settings.PREFUNDING_OPEN_ORDERS_MAX
    if len(raw) > limit:
        raise InvalidInput("too_many_items", f"at most {limit:,} open orders per list", field="order_ids")
    orders: dict[tuple[str, str], None] = {}
    for index, item in enumerate(raw):
        where = f"order_ids[{index}]"
        operator, order_id = "", item
        if isinstance(item, dict):
            code, order_id = item.get("operator"), item.get("order_id")
            if not isinstance(code, str) or not 0 < len(code.strip()) <= 16:
                raise InvalidInput("invalid_field", f"{where}.operator must be an operator code", field=where)
            operator = code.strip()
        if not isinstance(order_id, str) or not 0 < len(order_id.strip()) <= 64 or not order_id.isprintable():
            raise InvalidInput(
                "invalid_field",
                f"{where} must be an order id (1 to 64 characters) or {{operator, order_id}}",
                field=where,
            )
        orders[(operator, order_id.strip())] = None
    return [list(pair) for pair in orders]


def open_orders_receive(*, as_of: object, order_ids: object, actor: str, now: datetime) -> OpenOrdersSnapshot:
    """Store the engine's open orders at ``as_of`` and let custody reconcile
    them (the hook queues it once this transaction commits)."""
    moment = parse_instant(as_of, field="as_of", not_after=now)
    orders = _orders(order_ids)
    with transaction.atomic():
        snapshot = OpenOrdersSnapshot.objects.create(
            as_of=moment, orders=orders, order_count=len(orders), received_at=now, received_by=actor
        )
        audit_record(
            actor=actor,
            action="prefunding.open_orders_received",
            object_type="OpenOrdersSnapshot",
            object_id=snapshot.id,
            after={"as_of": moment.isoformat(), "orders": len(orders)},
            at=now,
        )
        hooks.open_orders_received.fire(snapshot_id=snapshot.id)
    return snapshot


def open_orders_reconciled(*, snapshot_id: int, result: dict, actor: str, now: datetime) -> OpenOrdersSnapshot:
    """Custody compared the snapshot with the holds: keep what it found."""
    with transaction.atomic():
        snapshot = OpenOrdersSnapshot.objects.select_for_update().get(pk=snapshot_id)
        snapshot.status, snapshot.reconciled_at, snapshot.result = OpenOrdersSnapshot.Status.RECONCILED, now, result
        snapshot.save(update_fields=["status", "reconciled_at", "result"])
        audit_record(
            actor=actor,
            action="prefunding.open_orders_reconciled",
            object_type="OpenOrdersSnapshot",
            object_id=snapshot.id,
            after=result,
            at=now,
        )
    return snapshot


def open_orders_as_json(snapshot: OpenOrdersSnapshot) -> dict:
    return {
        "snapshot_id": snapshot.id,
        "as_of": instant_text(snapshot.as_of),
        "orders": snapshot.order_count,
        "status": snapshot.status,
        "received_at": instant_text(snapshot.received_at),
        "reconciled_at": instant_text(snapshot.reconciled_at),
        "result": snapshot.result,
    }
