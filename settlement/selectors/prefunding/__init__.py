"""Prefunding reads (DESIGN section 6a): balances and holds as the API shows
them (``balances``), cover per operator and asset (``cover``), the recompute
and the open-orders comparison (``records``)."""

from .balances import (
    OPEN,
    account_balances,
    amount_text,
    availables,
    exact_decimals,
    expired_unswept,
    hold_as_json,
    hold_effective,
    instant_text,
    prefunding_operator_ids,
)
from .cover import CoverFigures, attestation_max_age, cover_compute, cover_state
from .records import Difference, OpenOrdersDifferences, open_orders_compare, prefunding_recompute

__all__ = [
    "OPEN",
    "CoverFigures",
    "Difference",
    "OpenOrdersDifferences",
    "account_balances",
    "amount_text",
    "attestation_max_age",
    "availables",
    "cover_compute",
    "cover_state",
    "exact_decimals",
    "expired_unswept",
    "hold_as_json",
    "hold_effective",
    "instant_text",
    "open_orders_compare",
    "prefunding_operator_ids",
    "prefunding_recompute",
]
