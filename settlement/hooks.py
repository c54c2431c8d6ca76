"""Settlement's hooks for the layers above (see controls.hooks)."""

from controls.hooks import Hook

outbound_legs_instructed = Hook(
    "outbound_legs_instructed",
    "Home must now send: outbound legs became instructed in this transaction. "
    "Called with as_of and actor; custody writes the custodian's instructions.",
)

open_orders_received = Hook(
    "open_orders_received",
    "The matching engine posted its open orders (an OpenOrdersSnapshot) in this transaction. "
    "Called with snapshot_id; custody reconciles them with the open prefunding holds.",
)
