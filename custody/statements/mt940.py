"""SWIFT MT940 customer statements.

The file is split into statements here (each starts with ``:20:``; SWIFT
envelopes ``{1:...}{4:``, ``-}`` and bank preambles between statements are
skipped) and every statement's tag sequence is checked, with line numbers:
one ``:25:``, one ``:28:``/``:28C:``, an opening ``:60F:``/``:60M:``, entries
``:61:`` each with an optional ``:86:``, a closing ``:62F:``/``:62M:``. The
``mt-940`` library then parses each statement's fields (amounts as Decimal,
dates, references). The opening balance plus the entries must give the
closing balance.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from decimal import Decimal

import mt940

from .common import ParsedEntry, ParsedStatement, StatementError

TAG = re.compile(r"^:(\d{2}[A-Z]?):(.*)$")
KNOWN = {"20", "21", "25", "28", "28C", "60F", "60M", "61", "86", "62F", "62M", "64", "65"}
NO_REF = {"", "NONREF", "NONE"}
# The first line of a :61: up to its references: value date, entry date,
# debit/credit mark (CR/DR as some banks write them), funds code, amount,
# transaction type. What follows is the customer reference (16x) and
# optionally //bank reference (16x).
ENTRY_HEAD = re.compile(r"\d{6}(?:\d{4})?(?:RC|RD|CR|DR|C|D)[A-Z]?\d[\d,]{0,14}[A-Z][A-Z0-9]{3}")
MAX_REFERENCE = 16


@dataclass
class _Tag:
    name: str
    line: int
    text: list[str]

    @property
    def value(self) -> str:
        return "\n".join(self.text)


@dataclass
class _Block:
    line: int
    tags: list[_Tag] = field(default_factory=list)


def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _blocks(text: str) -> list[_Block]:
    blocks: list[_Block] = []
    current: _Block | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        stripped = line.strip()
        match = TAG.match(line)
        if match:
            name, value = match.groups()
            if name == "20":
                current = _Block(line=number)
                blocks.append(current)
            elif current is None:
                raise StatementError(f":{name}: outside a statement: a statement starts with :20:", line=number)
            if name not in KNOWN:
                raise StatementError(f"tag :{name}: is not a field of an MT940 statement", line=number)
            current.tags.append(_Tag(name, number, [value]))
            continue
        if stripped.startswith("-") or stripped.startswith("{"):
            current = None  # end of a statement / a SWIFT envelope
            continue
        if current is None:
            continue  # bank preamble or envelope text between statements
        current.tags[-1].text.append(line)
    return blocks


def _check_sequence(block: _Block) -> None:
    """The tag order of one statement (SWIFT MT940 field sequence)."""
    names = [t.name for t in block.tags]
    state = "head"
    seen: dict[str, int] = {}
    for position, tag in enumerate(block.tags):
        name = tag.name
        group = {"28C": "28", "60M": "60F", "62M": "62F"}.get(name, name)
        if group in {"20", "21", "25", "28", "60F", "62F", "64"}:
            if group in seen:
                raise StatementError(
                    f":{name}: appears twice in the statement that starts on line {block.line} "
                    f"(first on line {seen[group]})",
                    line=tag.line,
                )
            seen[group] = tag.line
        if group in {"21", "25", "28"} and state != "head":
            raise StatementError(f":{name}: after the entries: it belongs before :60F:", line=tag.line)
        if group == "60F":
            if "25" not in seen:
                raise StatementError(":60F: before :25: (the account)", line=tag.line)
            state = "entries"
        elif group == "61":
            if state != "entries":
                raise StatementError(":61: outside the entries (between :60F: and :62F:)", line=tag.line)
        elif group == "86":
            if state == "entries":
                previous = names[position - 1]  # by position: looking the tag up again made this quadratic
                if previous != "61":
                    raise StatementError(":86: must follow a :61: entry", line=tag.line)
        elif group == "62F":
            if state != "entries":
                raise StatementError(":62F: without an opening balance :60F:", line=tag.line)
            state = "tail"
    for group, text in (
        ("25", "the account :25:"),
        ("28", "the statement number :28C:"),
        ("60F", "an opening balance :60F:"),
        ("62F", "a closing balance :62F:"),
    ):
        if group not in seen:
            raise StatementError(f"the statement that starts on line {block.line} has no {text}", line=block.line)


def _library_error_tag(block: _Block, error: Exception) -> _Tag:
    texts = [a for a in getattr(error, "args", ()) if isinstance(a, str)]
    for tag in block.tags:
        for text in texts:
            if tag.value.strip() and tag.value.strip()[:40] in text:
                return tag
    return block.tags[0]


def _clean(value: object) -> str:
    if value is None:
        return ""
    text = str(value).strip()
    return "" if text.upper() in NO_REF else text


def _signed(balance) -> tuple[Decimal | None, str]:
    if balance is None or getattr(balance, "amount", None) is None:
        return None, ""
    amount = balance.amount
    value = Decimal(amount.amount)
    # the library signs a "D" balance negative already
    return value, (amount.currency or "")


def _check_references(block: _Block) -> None:
    """SWIFT limits both :61: references to 16 characters. Without a
    supplementary-details line after it, the mt-940 library would let the
    free text absorb the rest of an over-long reference and cut it to 16,
    losing the bank reference into the details: refuse it instead."""
    for tag in block.tags:
        if tag.name != "61":
            continue
        first = tag.text[0].strip()
        head = ENTRY_HEAD.match(first)
        if head is None:
            continue  # the library reports a malformed head with its own words
        customer, _, bank = first[head.end() :].partition("//")
        if len(customer) > MAX_REFERENCE or len(bank) > MAX_REFERENCE:
            raise StatementError(
                f":61: {first[:60]!r} is not a valid MT940 field (SWIFT layout: a :61: reference of more than "
                f"{MAX_REFERENCE} characters)",
                line=tag.line,
            )


def _parse_block(block: _Block) -> ParsedStatement:
    _check_sequence(block)
    _check_references(block)
    body = "\n".join(f":{t.name}:{t.value}" for t in block.tags) + "\n"
    library_log = logging.getLogger("mt940")
    level = library_log.level
    library_log.setLevel(logging.CRITICAL)  # its own error logging would repeat ours
    try:
        parsed = mt940.parse(body)
    except Exception as error:
        tag = _library_error_tag(block, error)
        first = tag.value.splitlines()[0] if tag.value else ""
        raise StatementError(
            f":{tag.name}: {first[:60]!r} is not a valid MT940 field (SWIFT layout, e.g. a :61: reference of more than 16 characters)",
            line=tag.line,
        ) from None
    finally:
        library_log.setLevel(level)
    data = parsed.data
    entry_tags = [t for t in block.tags if t.name == "61"]
    if len(parsed.transactions) != len(entry_tags):
        raise StatementError(
            f"read {len(parsed.transactions)} entries but the statement has {len(entry_tags)} :61: lines",
            line=block.line,
        )
    opening_balance = data.get("final_opening_balance") or data.get("intermediate_opening_balance")
    closing_balance = data.get("final_closing_balance") or data.get("intermediate_closing_balance")
    opening, currency = _signed(opening_balance)
    closing, closing_currency = _signed(closing_balance)
    tag_line = {t.name: t.line for t in block.tags}
    if not currency:
        raise StatementError(":60F: has no currency", line=tag_line.get("60F", tag_line.get("60M")))
    if closing_currency and closing_currency != currency:
        raise StatementError(
            f"closing balance is in {closing_currency}, opening in {currency}",
            line=tag_line.get("62F", tag_line.get("62M")),
        )
    reference = _clean(data.get("transaction_reference")) or str(data.get("transaction_reference") or "").strip()
    number = str(data.get("statement_number") or "").strip()
    sequence = data.get("sequence_number")
    statement_ref = "/".join(p for p in (reference, number, str(sequence) if sequence not in (None, "") else "") if p)
    account = str(data.get("account_identification") or "").strip()
    if not account:
        raise StatementError(":25: has no account", line=tag_line.get("25"))
    entries = []
    for index, (tag, transaction) in enumerate(zip(entry_tags, parsed.transactions, strict=True), start=1):
        t = transaction.data
        status = str(t.get("status") or "")
        side = {"C": "credit", "D": "debit", "RC": "debit", "RD": "credit"}.get(status)
        if side is None:
            raise StatementError(f":61: debit/credit mark {status!r} is not C, D, RC or RD", line=tag.line)
        amount = abs(Decimal(t["amount"].amount))
        if amount == 0:
            continue  # information lines (e.g. a bank's balance notes as zero entries) move nothing
        booking = t.get("entry_date") or t.get("date")
        entries.append(
            ParsedEntry(
                index=index,
                line=tag.line,
                amount=amount,
                side=side,
                booking_date=booking,
                booked_at=None,
                value_date=t.get("date"),
                booked=True,
                reversal=status.startswith("R"),
                bank_reference=_clean(t.get("bank_reference")),
                customer_reference=_clean(t.get("customer_reference")),
                details="\n".join(
                    s for s in (_clean(t.get("extra_details")), str(t.get("transaction_details") or "").strip()) if s
                ),
            )
        )
    statement = ParsedStatement(
        format="mt940",
        line=block.line,
        statement_ref=statement_ref[:140],
        account=account,
        currency=currency,
        opening=opening,
        closing=closing,
        closing_date=getattr(closing_balance, "date", None),
        entries=entries,
    )
    statement.check_balances()
    return statement


def parse_mt940(data: bytes) -> list[ParsedStatement]:
    text = _decode(data).replace("\r\n", "\n")
    blocks = _blocks(text)
    if not blocks:
        raise StatementError("no MT940 statement found: a statement starts with :20:")
    return [_parse_block(block) for block in blocks]
