"""The running positions per counterparty and asset: what exposure is
valued from. Changed only inside the transaction that changes the
obligations behind them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.db.models import F, QuerySet

from settlement.aggregates import sums_by_direction
from settlement.models import ExposurePosition, Obligation


@dataclass(frozen=True, slots=True)
class PositionDelta:
    counterparty_id: int
    asset_id: int
    receivable: Decimal
    payable: Decimal
    receivable_count: int
    payable_count: int


def positions_apply(*, deltas: list[PositionDelta]) -> None:
    """Add deltas to the running positions. Must run inside the transaction
    that changed the obligations. Rows are created if missing and updated in
    (counterparty, asset) order, so concurrent writers lock them in one
    order and cannot deadlock."""
    if not deltas:
        return
    deltas = sorted(deltas, key=lambda d: (d.counterparty_id, d.asset_id))
    ExposurePosition.objects.bulk_create(
        [ExposurePosition(counterparty_id=d.counterparty_id, asset_id=d.asset_id) for d in deltas],
        ignore_conflicts=True,
    )
    for d in deltas:
        ExposurePosition.objects.filter(counterparty_id=d.counterparty_id, asset_id=d.asset_id).update(
            receivable=F("receivable") + d.receivable,
            payable=F("payable") + d.payable,
            receivable_count=F("receivable_count") + d.receivable_count,
            payable_count=F("payable_count") + d.payable_count,
        )


def positions_release(*, obligations: QuerySet[Obligation]) -> None:
    """Obligations leaving the unsettled set (settled, or closed out in a
    default) come out of the running positions. Call it in the transaction
    that changes their status, before the change (the sums read them)."""
    sums = sums_by_direction(obligations, ("counterparty_id", "asset_id"))
    positions_apply(
        deltas=[
            PositionDelta(cp, asset, -inbound, -outbound, -inbound_count, -outbound_count)
            for (cp, asset), (inbound, outbound, inbound_count, outbound_count) in sums.items()
        ]
    )
