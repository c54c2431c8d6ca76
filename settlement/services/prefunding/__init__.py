"""Prefunding (circular para 10, DESIGN section 6a), in small modules:

- ``parsing``: judging hold and funding-event items (pure);
- ``ledger``: the set-based balance and hold moves the others share;
- ``holds``: placing (one or a batch), amending, releasing, expiring holds;
- ``funding``: deposits, two-phase withdrawals and adjustments;
- ``consumption``: trades consuming holds, settlement clearing them;
- ``cover``: attestations from the designated custodians and the cover check;
- ``freezes``: freezes at once, lifts with four eyes;
- ``open_orders``: the engine's open orders, for reconciliation by custody;
- ``verify``: the balances against a recompute from their records.
"""

from .checks import HoldResult
from .consumption import ConsumeResult, prefunding_consume, prefunding_settle
from .cover import AttestationLine, attestations_record, cover_evaluate
from .freezes import LIFT_KIND, freeze_as_json, freeze_create, freeze_lift_request
from .funding import funding_event_record
from .holds import hold_amend, hold_get, hold_release, holds_expire
from .open_orders import open_orders_as_json, open_orders_receive, open_orders_reconciled
from .placing import holds_place
from .verify import VerifyResult, prefunding_verify

__all__ = [
    "LIFT_KIND",
    "AttestationLine",
    "ConsumeResult",
    "HoldResult",
    "VerifyResult",
    "attestations_record",
    "cover_evaluate",
    "freeze_as_json",
    "freeze_create",
    "freeze_lift_request",
    "funding_event_record",
    "hold_amend",
    "hold_get",
    "hold_release",
    "holds_expire",
    "holds_place",
    "open_orders_as_json",
    "open_orders_receive",
    "open_orders_reconciled",
    "prefunding_consume",
    "prefunding_settle",
    "prefunding_verify",
]
