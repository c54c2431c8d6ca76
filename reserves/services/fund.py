"""The fund's own record under four eyes (DESIGN section 12): its trust bank
account says where the fund's money is, so a change to it (or to its trustee
or deed) is proposed by one person and applied only when a different
ops_approver approves it (``controls.services.changes``)."""

from __future__ import annotations

from controls.exceptions import InvalidInput
from controls.services.changes import change_target
from registry.models import Operator, Rail

from ..models import ReserveFund


def fund_account_check(*, fund: ReserveFund) -> None:
    """The fund's account is a registered bank account held by home, on a bank
    rail in the fund's currency."""
    account = fund.bank_account
    if account is None:
        return
    if account.operator.role != Operator.Role.HOME:
        raise InvalidInput(
            "invalid_change",
            f"bank account {account.number} is held by {account.operator.code}; the fund's trust account is home's",
            field="bank_account",
        )
    if account.rail.kind != Rail.Kind.BANK or (account.rail.currency and account.rail.currency != fund.currency):
        raise InvalidInput(
            "invalid_change",
            f"bank account {account.number} is on {account.rail.code} ({account.rail.currency or 'no currency'}); "
            f"the fund is in {fund.currency}",
            field="bank_account",
        )


def _check(*, operation: str, current: ReserveFund | None, proposed: ReserveFund | None) -> None:
    if proposed is None:
        raise InvalidInput("invalid_change", "the reserve fund is not deleted: its ledger is kept")
    if current is None and ReserveFund.objects.exists():
        raise InvalidInput("invalid_change", "there is one reserve fund and its ledger; change it, do not add another")
    if current is not None and proposed.currency != current.currency:
        raise InvalidInput("invalid_change", "the fund keeps its currency", field="currency")
    fund_account_check(fund=proposed)


change_target(ReserveFund, natural_key=lambda fund: fund.deed, check=_check)
