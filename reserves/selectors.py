"""Reads of the reserve fund. The exposure service takes the fund's available
balance from here and nowhere else, so the cap follows the fund."""

from decimal import Decimal

from django.db.models import Sum

from .models import ReserveEntry


def reserve_balance_hkd() -> Decimal:
    return ReserveEntry.objects.aggregate(total=Sum("amount_hkd"))["total"] or Decimal("0.00")


def reserve_available_hkd() -> Decimal:
    # Approved-but-unpaid payouts will be subtracted here once claims exist.
    return reserve_balance_hkd()
