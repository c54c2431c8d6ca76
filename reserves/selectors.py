"""Reads of the reserve fund. The exposure service takes the fund's available
balance from here and nowhere else, so the cap follows the fund."""

from decimal import Decimal

from django.db.models import Sum

from .models import Claim, ReserveEntry, ReserveFund


def reserve_fund() -> ReserveFund | None:
    return ReserveFund.objects.order_by("id").first()


CENT = Decimal("0.01")


def reserve_balance_hkd() -> Decimal:
    total = ReserveEntry.objects.aggregate(total=Sum("amount_hkd"))["total"] or Decimal(0)
    return total.quantize(CENT)


def reserve_committed_hkd() -> Decimal:
    """Approved claims not yet paid: money the fund has promised."""
    approved = Claim.objects.filter(status=Claim.Status.APPROVED).aggregate(total=Sum("loss_hkd"))["total"]
    return (approved or Decimal(0)).quantize(CENT)


def reserve_available_hkd() -> Decimal:
    return reserve_balance_hkd() - reserve_committed_hkd()
