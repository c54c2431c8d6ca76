"""Reserve fund writes. Importing this package registers the four-eyes
handlers (withdrawal, reversal, cap change, default, claim payout, recovery, buy-in)
and the fund's record as a four-eyes change target."""

from . import buy_ins, claims, defaults, fund, ledger, trust, waterfall  # noqa: F401
