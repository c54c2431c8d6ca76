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


def detect_format(data: bytes) -> str:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:200]
    if head.startswith(b"<"):
        return "camt053"
    if b":20:" in data[:4000] or head.startswith((b"{1:", b":")):
        return "mt940"
    raise StatementError("not a statement: expected camt.053 XML or SWIFT MT940 text (give --format to say which)")


def parse_statement_file(data: bytes, *, format: str | None = None) -> list[ParsedStatement]:
    if not data or not data.strip():
        raise StatementError("the file is empty")
    if len(data) > MAX_BYTES:
        raise StatementError(f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB")
    fmt = format or detect_format(data)
    if fmt not in FORMATS:
        raise StatementError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "camt053":
        from .camt import parse_camt053

        statements = parse_camt053(data)
    else:
        from .mt940 import parse_mt940

        statements = parse_mt940(data)
    if not statements:
        raise StatementError("the file holds no statement")
    return statements
