"""Settlement's hooks for the layers above (see controls.hooks)."""

from controls.hooks import Hook

outbound_legs_instructed = Hook(
    "outbound_legs_instructed",
    "Home must now send: outbound legs became instructed in this transaction. "
    "Called with as_of and actor; custody writes the custodian's instructions.",
)
