"""Settlement's hooks for the layers above (see controls.hooks)."""

from controls.hooks import Hook

outbound_legs_instructed = Hook(
    "outbound_legs_instructed",
    "Home must now send: outbound legs became instructed in this transaction. "
    "Called with as_of and actor; custody writes the custodian's instructions.",
)

legs_finished = Hook(
    "legs_finished",
    "Legs reached an end in this transaction: confirmed, failed or cancelled (their batch failed, or its "
    "counterparty defaulted). Called with leg_ids, as_of and actor, after the legs' rows were changed; "
    "custody closes the instructions of those legs (done or cancelled) so the outbox never lists a payment "
    "that must not be sent.",
)

open_orders_received = Hook(
    "open_orders_received",
    "The matching engine posted its open orders (an OpenOrdersSnapshot) in this transaction. "
    "Called with snapshot_id; custody reconciles them with the open prefunding holds.",
)
