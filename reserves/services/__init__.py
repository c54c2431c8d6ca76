"""Reserve fund writes. Importing this package registers the four-eyes
handlers (withdrawal, reversal, cap change, default, claim payout, recovery)."""

from . import claims, defaults, ledger, waterfall  # noqa: F401
