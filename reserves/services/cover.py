"""The fund's available balance, handed down to settlement's effective cap."""

from datetime import datetime

from reserves.selectors import reserve_available_hkd
from settlement.services.cap import reserve_cover_set


def reserve_cover_sync(*, actor: str, at: datetime) -> None:
    """Call in the same transaction as anything that changes what the fund
    has available (ledger entries, claim decisions)."""
    reserve_cover_set(available_hkd=reserve_available_hkd(), actor=actor, at=at)
