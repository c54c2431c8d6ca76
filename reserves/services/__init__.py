"""Reserve fund writes. Importing this package registers the four-eyes
handlers (withdrawal, reversal, cap change, default, claim payout, recovery, buy-in)."""

from . import buy_ins, claims, defaults, ledger, waterfall  # noqa: F401
