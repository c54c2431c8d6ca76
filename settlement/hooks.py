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

legs_failing = Hook(
    "legs_failing",
    "Legs of a batch are about to fail at their deadline. Called with leg_ids and reasons (a dict of leg id to "
    "fail reason that receivers may fill): custody says short_delivery or over_delivery for an inbound leg whose "
    "matched movements fell short of, or over, its amount. A leg no receiver names failed not_delivered.",
)

batch_disputed = Hook(
    "batch_disputed",
    "A counterparty disputed a batch in this transaction. Called with batch_id, reason, as_of and actor; custody "
    "opens a break for operations.",
)

open_orders_received = Hook(
    "open_orders_received",
    "The matching engine posted its open orders (an OpenOrdersSnapshot) in this transaction. "
    "Called with snapshot_id; custody reconciles them with the open prefunding holds.",
)

escrow_released = Hook(
    "escrow_released",
    "Every leg of an escrow batch was locked at its escrow custodian, and all were released together in this "
    "transaction. Called with leg_ids, as_of and actor; custody writes a release instruction per leg to the "
    "escrow custodian (inbound assets to home, outbound ones to the counterparty).",
)

escrow_returned = Hook(
    "escrow_returned",
    "An escrow batch failed with these legs locked at its escrow custodian. Called with leg_ids, as_of and actor, "
    "after the legs' rows were changed; custody writes a return instruction per leg (each asset back to the side "
    "that locked it).",
)
