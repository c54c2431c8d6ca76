"""Reads of the reserve fund. The exposure service takes the fund's available
balance from here and nowhere else, so the cap follows the fund."""

from decimal import Decimal

from django.db.models import Q, Sum

from custody.models import Break

from .models import Claim, ReserveEntry, ReserveFund, TrustBalanceCheck, TrustMatch


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


def trust_account_status() -> dict:
    """The fund's trust account against its statements: the last statement
    reconciled, whether its closing balance agreed with the ledger (or the
    difference), and the open breaks of that account's reconciliation."""
    fund = reserve_fund()
    account = fund.bank_account if fund is not None else None
    if account is None:
        return {"account": None, "state": "no_account", "text": "no trust bank account registered for the fund"}
    last = TrustBalanceCheck.objects.filter(statement__account=account).select_related("statement").first()
    keys = Q(key__startswith=f"{Break.Kind.LEDGER_UNMATCHED}:reserve_entry:") | Q(
        key__startswith=f"{Break.Kind.BALANCE_DIFFERENCE}:trust_statement:"
    )
    keys |= Q(kind__in=[Break.Kind.UNMATCHED_RECEIPT, Break.Kind.UNMATCHED_PAYMENT], movements__account_id=account.id)
    open_breaks = list(
        Break.objects.filter(keys, status__in=Break.UNRESOLVED)
        .distinct()
        .order_by("opened_at", "id")
        .values("id", "kind", "amount", "description")
    )
    unmatched_entries = ReserveEntry.objects.filter(fund=fund, trust_match__isnull=True).count()
    status: dict = {
        "account": account.number,
        "bank": account.bank,
        "matched_entries": TrustMatch.objects.filter(entry__fund=fund).count(),
        "unmatched_entries": unmatched_entries,
        "open_breaks": [{**b, "amount": format(b["amount"], "f")} for b in open_breaks],
        "last_statement": None,
    }
    if last is None:
        status.update(state="no_statement", text=f"trust account {account.number}: no statement reconciled yet")
    else:
        difference = last.difference_hkd
        status["last_statement"] = {
            "ref": last.statement.statement_ref,
            "closing_date": last.closing_date.isoformat(),
            "statement_hkd": format(last.statement_hkd, "f"),
            "ledger_hkd": format(last.ledger_hkd, "f"),
            "difference_hkd": format(difference, "f"),
            "agreed": difference == 0,
        }
        said = (
            f"balance agreed at {last.statement_hkd} HKD"
            if difference == 0
            else f"bank {last.statement_hkd} HKD, ledger {last.ledger_hkd} HKD: difference {difference} HKD"
        )
        status.update(
            state="agreed" if difference == 0 and not open_breaks else "breaks",
            text=f"trust account {account.number}, statement {last.statement.statement_ref} of "
            f"{last.closing_date}: {said}; {len(open_breaks)} open break(s)",
        )
    return status
