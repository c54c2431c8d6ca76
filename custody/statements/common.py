"""The parsed shape of a bank statement, shared by the MT940 and camt.053 readers."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

FORMATS = ("camt053", "mt940")
MAX_BYTES = 20 * 1024 * 1024


class StatementError(ValueError):
    """What is wrong with a statement file, and where."""

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass
class ParsedEntry:
    index: int  # 1-based position in its statement
    line: int
    amount: Decimal  # positive
    side: str  # "credit" | "debit" (as booked on our account)
    booking_date: date | None
    booked_at: datetime | None  # when the bank gives a time
    value_date: date | None
    booked: bool  # False: pending (camt PDNG)
    reversal: bool
    bank_reference: str = ""
    customer_reference: str = ""
    counterparty_account: str = ""
    counterparty_name: str = ""
    details: str = ""

    def key(self) -> tuple:
        """What the entry says, for the statement's content hash."""
        return (
            self.index,
            str(self.amount),
            self.side,
            self.booking_date.isoformat() if self.booking_date else "",
            self.value_date.isoformat() if self.value_date else "",
            self.booked,
            self.reversal,
            self.bank_reference,
            self.customer_reference,
            self.counterparty_account,
            self.details,
        )


@dataclass
class ParsedStatement:
    format: str
    line: int
    statement_ref: str
    account: str  # as the statement gives it: an IBAN, a local number, "BIC/number"...
    currency: str
    opening: Decimal | None = None  # signed: negative is a debit balance
    closing: Decimal | None = None
    closing_date: date | None = None
    entries: list[ParsedEntry] = field(default_factory=list)
    # a statement whose booked entries do not lead from its opening to its
    # closing balance is imported (the entries are the bank's) and raises a
    # balance break: a page or an entry may be missing
    balance_problem: str = ""

    def check_balances(self) -> None:
        if self.opening is None or self.closing is None:
            return
        moved = sum((e.amount if e.side == "credit" else -e.amount for e in self.entries if e.booked), Decimal(0))
        if self.opening + moved != self.closing:
            self.balance_problem = (
                f"statement {self.statement_ref} does not add up: opening {self.opening} + booked entries {moved} = "
                f"{self.opening + moved}, but the closing balance is {self.closing}"
            )
