"""Reserve fund writes. Importing this package registers the four-eyes
handlers (withdrawal, reversal, cap change, default, claim payout)."""

from . import claims, defaults, ledger  # noqa: F401
