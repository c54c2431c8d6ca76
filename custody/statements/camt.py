"""ISO 20022 camt.053 bank-to-customer statements.

``pycamt`` loads the XML (entities off, no network) and tells the version;
the statements are read here from its element tree, because pycamt gives
``None`` for an account that is not an IBAN (a Hong Kong account number is
``<Othr><Id>``), turns debit balances into floats, and loses which entry a
transaction detail came from. Every element that is missing or wrong is
reported with its line. camt.054 notifications are refused: import the
camt.053 statement that books them.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

from lxml import etree
from pycamt.parser import Camt053Parser

from controls.timestamps import EARLIEST, LATEST

from .common import ParsedEntry, ParsedStatement, StatementError

AMOUNT = re.compile(r"^\d{1,18}(\.\d{1,18})?$")
CAMT053 = re.compile(r"urn:iso:std:iso:20022:tech:xsd:camt\.053\.001\.(\d{2})$")


class _Doc:
    def __init__(self, root):
        self.root = root
        self.ns = root.nsmap.get(None) or ""

    def q(self, path: str) -> str:
        if not self.ns:
            return path
        return "/".join(f"{{{self.ns}}}{part}" if part not in (".", "..") else part for part in path.split("/"))

    def find(self, element, path: str):
        return element.find(self.q(path))

    def findall(self, element, path: str):
        return element.findall(self.q(path))

    def text(self, element, path: str) -> str:
        found = self.find(element, path)
        return (found.text or "").strip() if found is not None else ""

    def required(self, element, path: str, what: str) -> str:
        found = self.find(element, path)
        if found is None or not (found.text or "").strip():
            raise StatementError(f"<{_local(element)}> has no <{path}> ({what})", line=element.sourceline)
        return found.text.strip()


def _local(element) -> str:
    return etree.QName(element).localname


def _amount(doc: _Doc, element, path: str, what: str) -> tuple[Decimal, str, int]:
    found = doc.find(element, path)
    if found is None:
        raise StatementError(f"<{_local(element)}> has no <{path}> ({what})", line=element.sourceline)
    raw = (found.text or "").strip()
    if not AMOUNT.match(raw):
        raise StatementError(f"<{path}> {raw[:40]!r} is not a decimal amount ({what})", line=found.sourceline)
    currency = (found.get("Ccy") or "").strip()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise StatementError(f"<{path}> has no valid Ccy attribute ({what})", line=found.sourceline)
    return Decimal(raw), currency, found.sourceline


def _date(doc: _Doc, element, path: str, what: str) -> tuple[date | None, datetime | None]:
    holder = doc.find(element, path)
    if holder is None:
        return None, None
    day, moment = doc.text(holder, "Dt"), doc.text(holder, "DtTm")
    try:
        if moment:
            parsed = datetime.fromisoformat(moment.replace("Z", "+00:00"))
            if parsed.utcoffset() is None:
                parsed = parsed.replace(tzinfo=UTC)  # ISO 20022 times without an offset are UTC by convention
            instant = parsed.astimezone(UTC)
            _in_range(instant.date(), path, holder)
            return parsed.date(), instant
        if day:
            return _in_range(date.fromisoformat(day), path, holder), None
    except (ValueError, OverflowError):
        raise StatementError(
            f"<{path}> {(moment or day)[:40]!r} is not an ISO date ({what})", line=holder.sourceline
        ) from None
    raise StatementError(f"<{path}> has neither <Dt> nor <DtTm> ({what})", line=holder.sourceline)


def _in_range(day: date, path: str, holder) -> date:
    """A bank date the settlement arithmetic can use (no year 1 or 9999)."""
    if not EARLIEST.date() <= day < LATEST.date():
        raise StatementError(f"<{path}> {day.isoformat()} is out of range", line=holder.sourceline)
    return day


def _account_id(doc: _Doc, account) -> str:
    """An IBAN, or the scheme-less ``<Othr><Id>`` (Hong Kong numbers)."""
    if account is None:
        return ""
    return doc.text(account, "Id/IBAN") or doc.text(account, "Id/Othr/Id")


def _balances(doc: _Doc, statement) -> tuple[Decimal | None, Decimal | None, date | None]:
    opening = closing = closing_date = None
    for balance in doc.findall(statement, "Bal"):
        code = doc.text(balance, "Tp/CdOrPrtry/Cd")
        amount, _, _ = _amount(doc, balance, "Amt", f"{code or 'balance'} amount")
        side = doc.text(balance, "CdtDbtInd")
        if side not in ("CRDT", "DBIT"):
            raise StatementError(
                f"balance {code} <CdtDbtInd> must be CRDT or DBIT, got {side!r}", line=balance.sourceline
            )
        signed = -amount if side == "DBIT" else amount
        if code in ("OPBD", "PRCD") and opening is None:
            opening = signed
        elif code == "CLBD":
            closing = signed
            closing_date, _ = _date(doc, balance, "Dt", "closing balance date")
    return opening, closing, closing_date


def _entry(doc: _Doc, entry, index: int, currency: str) -> ParsedEntry | None:
    amount, entry_currency, amount_line = _amount(doc, entry, "Amt", "entry amount")
    if entry_currency != currency:
        raise StatementError(f"entry amount is in {entry_currency}, the statement in {currency}", line=amount_line)
    side = doc.text(entry, "CdtDbtInd")
    if side not in ("CRDT", "DBIT"):
        raise StatementError(f"entry <CdtDbtInd> must be CRDT or DBIT, got {side!r}", line=entry.sourceline)
    status_element = doc.find(entry, "Sts")
    if status_element is None:
        raise StatementError("entry has no <Sts> (BOOK, PDNG or INFO)", line=entry.sourceline)
    status = doc.text(status_element, "Cd") or (status_element.text or "").strip()
    if status not in ("BOOK", "PDNG", "INFO"):
        raise StatementError(f"entry <Sts> must be BOOK, PDNG or INFO, got {status!r}", line=status_element.sourceline)
    if status == "INFO" or amount == 0:
        return None  # information only: no money moved
    booking_date, booked_at = _date(doc, entry, "BookgDt", "booking date")
    value_date, _ = _date(doc, entry, "ValDt", "value date")
    if booking_date is None and status == "BOOK":
        booking_date = value_date
        if booking_date is None:
            raise StatementError("a booked entry has neither <BookgDt> nor <ValDt>", line=entry.sourceline)
    # a pending entry (PDNG) is often not booked yet: it may carry a value date only
    credit = side == "CRDT"
    parties, names, refs, texts = set(), set(), [], []
    for detail in entry.iter(doc.q("TxDtls")):
        party = "Dbtr" if credit else "Cdtr"
        number = _account_id(doc, doc.find(detail, f"RltdPties/{party}Acct"))
        if number:
            parties.add(number)
        name = doc.text(detail, f"RltdPties/{party}/Nm") or doc.text(detail, f"RltdPties/{party}/Pty/Nm")
        if name:
            names.add(name)
        for ref in ("Refs/EndToEndId", "Refs/InstrId", "Refs/TxId"):
            value = doc.text(detail, ref)
            if value and value.upper() != "NOTPROVIDED":
                refs.append(value)
        texts += [u.text.strip() for u in detail.iter(doc.q("Ustrd")) if u.text and u.text.strip()]
        texts += [r.text.strip() for r in detail.iter(doc.q("Ref")) if r.text and r.text.strip()]
    info = doc.text(entry, "AddtlNtryInf")
    if info:
        texts.append(info)
    return ParsedEntry(
        index=index,
        line=entry.sourceline,
        amount=amount,
        side="credit" if credit else "debit",
        booking_date=booking_date,
        booked_at=booked_at,
        value_date=value_date,
        booked=status == "BOOK",
        reversal=doc.text(entry, "RvslInd").lower() == "true",
        bank_reference=doc.text(entry, "AcctSvcrRef") or doc.text(entry, "NtryRef"),
        customer_reference=refs[0] if refs else "",
        counterparty_account=next(iter(parties)) if len(parties) == 1 else "",
        counterparty_name=next(iter(names)) if len(names) == 1 else "",
        details="\n".join(dict.fromkeys([*refs[1:], *texts])),
    )


DOCTYPE = re.compile(rb"<!\s*(DOCTYPE|ENTITY)", re.IGNORECASE)


def parse_camt053(data: bytes) -> list[ParsedStatement]:
    # A camt.053 has no DOCTYPE. One that declares entities would be read
    # with their text silently dropped (entities are never expanded here),
    # so the file is refused rather than imported differently from what it says.
    declaration = DOCTYPE.search(data)
    if declaration is not None:
        raise StatementError(
            "the XML declares a DOCTYPE or entities, which a camt.053 statement never has: refused",
            line=data.count(b"\n", 0, declaration.start()) + 1,
        )
    try:
        parser = Camt053Parser(data)
    except etree.XMLSyntaxError as error:
        raise StatementError(f"not well-formed XML: {error.msg}", line=error.lineno) from None
    except ValueError as error:
        raise StatementError(f"not readable XML: {error}") from None
    doc = _Doc(parser.tree)
    if parser.tree.getroottree().docinfo.doctype:  # spelled in an encoding the byte search cannot see
        raise StatementError("the XML declares a DOCTYPE, which a camt.053 statement never has: refused")
    if "camt.054" in doc.ns:
        raise StatementError(
            "this is a camt.054 debit/credit notification; import the camt.053 statement that books these entries",
            line=doc.root.sourceline,
        )
    version = CAMT053.match(doc.ns)
    if version is None:
        raise StatementError(
            f"not a camt.053 statement: the document namespace is {doc.ns or '(none)'!r}", line=doc.root.sourceline
        )
    container = doc.find(doc.root, "BkToCstmrStmt")
    if container is None:
        raise StatementError("camt.053 document has no <BkToCstmrStmt>", line=doc.root.sourceline)
    header = doc.find(container, "GrpHdr")
    if header is None:
        raise StatementError("<BkToCstmrStmt> has no <GrpHdr>", line=container.sourceline)
    message_id = doc.required(header, "MsgId", "message id")
    statements = []
    for statement in doc.findall(container, "Stmt"):
        statement_id = doc.required(statement, "Id", "statement id")
        account_element = doc.find(statement, "Acct")
        if account_element is None:
            raise StatementError("<Stmt> has no <Acct>", line=statement.sourceline)
        account = _account_id(doc, account_element)
        if not account:
            raise StatementError("<Acct> has neither <Id><IBAN> nor <Id><Othr><Id>", line=account_element.sourceline)
        opening, closing, closing_date = _balances(doc, statement)
        currency = doc.text(account_element, "Ccy")
        if not currency:
            first = doc.find(statement, "Bal/Amt")
            first = first if first is not None else doc.find(statement, "Ntry/Amt")
            currency = (first.get("Ccy") or "").strip() if first is not None else ""
        if not currency:
            raise StatementError(
                "the statement says no currency (<Acct><Ccy> or an amount's Ccy)", line=statement.sourceline
            )
        entries = []
        for index, entry in enumerate(doc.findall(statement, "Ntry"), start=1):
            parsed = _entry(doc, entry, index, currency)
            if parsed is not None:
                entries.append(parsed)
        sequence = doc.text(statement, "ElctrncSeqNb") or doc.text(statement, "LglSeqNb")
        reference = statement_id if not sequence else f"{statement_id}/{sequence}"
        parsed_statement = ParsedStatement(
            format="camt053",
            line=statement.sourceline,
            statement_ref=reference[:140],
            account=account,
            currency=currency,
            opening=opening,
            closing=closing,
            closing_date=closing_date,
            entries=entries,
        )
        parsed_statement.check_balances()
        statements.append(parsed_statement)
    if not statements:
        raise StatementError(f"message {message_id} holds no <Stmt>", line=container.sourceline)
    return statements
