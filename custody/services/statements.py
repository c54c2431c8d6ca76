"""Bank statement import (camt.053, MT940) into observed movements.

The whole file is one transaction: any statement or entry that is wrong
(unknown account, wrong currency, more decimals than the account's asset
allows, a statement id already imported with other content) refuses the
file, naming the line, and nothing is stored. Importing the same statement
again changes nothing (idempotent per account + statement id, and per
account + entry reference).

Account numbers are compared without spaces, dashes or dots and in upper
case, so a Hong Kong number such as ``012-345678-001`` matches
``012345678001``; an MT940 ``:25:`` of the form ``BIC/number`` or
``bank code/number`` matches on the number. A counterparty is known from
the entry's counterparty account (camt ``DbtrAcct``/``CdtrAcct``, IBAN or
``Othr``), or, in MT940, from a registered account number that appears in
the entry's details.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import transaction

from controls.exceptions import Conflict, InvalidInput
from controls.money import as_str, quantum
from controls.services.audit import audit_record
from custody.models import BankStatement, Break, Movement
from custody.statements import ParsedStatement, StatementError, parse_statement_file
from registry.models import Asset, BankAccount, Operator

from .breaks import break_raise

ACTOR = "custody:statements"
MIN_NUMBER_IN_TEXT = 6


def normalise_account(number: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", number or "").upper()


@dataclass
class StatementImportResult:
    statements: list[dict] = field(default_factory=list)

    @property
    def new_entries(self) -> int:
        return sum(s["new_entries"] for s in self.statements)

    def as_json(self) -> dict:
        return {
            "statements": self.statements,
            "new_entries": self.new_entries,
            "duplicate_statements": sum(1 for s in self.statements if s["result"] == "duplicate"),
        }


class _Accounts:
    def __init__(self):
        self.by_number: dict[str, BankAccount] = {}
        for account in BankAccount.objects.select_related("operator", "rail"):
            self.by_number[normalise_account(account.number)] = account

    def of_statement(self, raw: str) -> BankAccount | None:
        for candidate in (raw, raw.rsplit("/", 1)[-1]):
            found = self.by_number.get(normalise_account(candidate))
            if found is not None:
                return found
        return None

    def counterparty(self, account_text: str, details: str) -> BankAccount | None:
        if account_text:
            return self.by_number.get(normalise_account(account_text))
        text = normalise_account(details)
        if not text:
            return None
        hits = [a for n, a in self.by_number.items() if len(n) >= MIN_NUMBER_IN_TEXT and n in text]
        return hits[0] if len(hits) == 1 else None


def _hash(statement: ParsedStatement) -> str:
    content = {
        "ref": statement.statement_ref,
        "account": normalise_account(statement.account),
        "currency": statement.currency,
        "opening": str(statement.opening),
        "closing": str(statement.closing),
        "entries": [e.key() for e in statement.entries],
    }
    return hashlib.blake2b(json.dumps(content, sort_keys=True, default=str).encode(), digest_size=16).hexdigest()


def _end_of_day(day, zone: str) -> datetime:
    local = datetime.combine(day, time(0), tzinfo=ZoneInfo(zone)) + timedelta(days=1) - timedelta(microseconds=1)
    return local.astimezone(ZoneInfo("UTC"))


def statement_import(
    *, data: bytes, filename: str, format: str | None, actor: str, now: datetime, reconcile: bool = True
) -> StatementImportResult:
    if format is not None and format not in BankStatement.Format.values:
        raise InvalidInput(
            "invalid_field", f"format must be one of {', '.join(BankStatement.Format.values)}", field="format"
        )
    try:
        parsed = parse_statement_file(data, format=format)
    except StatementError as error:
        raise InvalidInput("invalid_statement", f"{filename or 'statement'}: {error}", field="file") from None
    accounts = _Accounts()
    home = Operator.objects.filter(role=Operator.Role.HOME).first()
    result = StatementImportResult()
    with transaction.atomic():
        for statement in parsed:
            result.statements.append(
                _import_one(statement=statement, accounts=accounts, home=home, filename=filename, actor=actor, now=now)
            )
    if reconcile and result.new_entries:
        from .reconcile import reconcile_run

        reconcile_run(as_of=now)
    return result


def _refuse(statement: ParsedStatement, message: str, *, line: int | None = None) -> InvalidInput:
    return InvalidInput("invalid_statement", f"line {line or statement.line}: {message}", field="file")


def _import_one(
    *, statement: ParsedStatement, accounts: _Accounts, home: Operator | None, filename: str, actor: str, now: datetime
) -> dict:
    account = accounts.of_statement(statement.account)
    if account is None:
        raise _refuse(
            statement,
            f"statement {statement.statement_ref}: account {statement.account!r} is not a registered bank account",
        )
    if home is None or account.operator_id != home.id:
        raise _refuse(
            statement,
            f"statement {statement.statement_ref}: account {account.number} belongs to {account.operator.code}; "
            "statements are imported for home's own accounts",
        )
    rail = account.rail
    if rail.currency and rail.currency != statement.currency:
        raise _refuse(
            statement,
            f"statement {statement.statement_ref} is in {statement.currency}; account {account.number} "
            f"(rail {rail.code}) is in {rail.currency}",
        )
    assets = list(Asset.objects.filter(rail=rail))
    asset = next((a for a in assets if a.code == statement.currency), assets[0] if len(assets) == 1 else None)
    if asset is None:
        raise _refuse(statement, f"rail {rail.code} has no asset {statement.currency} to book the entries in")
    content_hash = _hash(statement)
    existing = BankStatement.objects.filter(account=account, statement_ref=statement.statement_ref).first()
    summary = {
        "account": account.number,
        "statement_ref": statement.statement_ref,
        "format": statement.format,
        "entries": len(statement.entries),
        "balance_problem": statement.balance_problem or None,
    }
    if existing is not None:
        if existing.content_hash != content_hash:
            raise Conflict(
                "conflict",
                f"line {statement.line}: statement {statement.statement_ref} of account {account.number} was imported "
                f"on {existing.imported_at:%Y-%m-%d %H:%M} with other content",
                field="file",
            )
        return {
            **summary,
            "id": existing.id,
            "result": "duplicate",
            "new_entries": 0,
            "duplicate_entries": len(statement.entries),
        }
    scale = quantum(asset.scale)
    for entry in statement.entries:
        if entry.amount != entry.amount.quantize(scale):
            raise _refuse(
                statement,
                f"entry amount {entry.amount} has more decimals than {asset.code} allows ({asset.scale})",
                line=entry.line,
            )
    record = BankStatement.objects.create(
        account=account,
        statement_ref=statement.statement_ref,
        format=statement.format,
        currency=statement.currency,
        opening_balance=statement.opening,
        closing_balance=statement.closing,
        closing_date=statement.closing_date,
        entries=len(statement.entries),
        content_hash=content_hash,
        filename=(filename or "")[:255],
        imported_at=now,
        imported_by=actor,
    )
    refs = [e.bank_reference for e in statement.entries if e.bank_reference]
    unique_refs = {r for r in refs if refs.count(r) == 1}
    new_rows: list[Movement] = []
    duplicates, skipped_pending = 0, 0

    def ref_of(entry) -> str:
        return (
            entry.bank_reference if entry.bank_reference in unique_refs else f"{statement.statement_ref}#{entry.index}"
        )[:140]

    # what this account already holds under these references: one query per statement, not one per entry
    known = {
        m.entry_ref: m
        for m in Movement.objects.filter(
            source=Movement.Source.BANK, account=account, entry_ref__in=[ref_of(e) for e in statement.entries]
        ).select_related("statement")
    }
    for entry in statement.entries:
        if not entry.booked:
            skipped_pending += 1  # counted when a statement books it
            continue
        entry_ref = ref_of(entry)
        amount = entry.amount.quantize(scale)
        side = Movement.Side.CREDIT if entry.side == "credit" else Movement.Side.DEBIT
        before = known.get(entry_ref)
        if before is not None:
            if (before.amount, before.side, before.booking_date) != (amount, side, entry.booking_date):
                raise Conflict(
                    "conflict",
                    f"line {entry.line}: entry {entry_ref} of account {account.number} was imported before "
                    f"(statement {before.statement.statement_ref if before.statement else '?'}) with other content",
                    field="file",
                )
            duplicates += 1
            continue
        other = accounts.counterparty(entry.counterparty_account, entry.details)
        if other is not None and other.operator_id == home.id:
            direction, counterparty = Movement.Direction.INTERNAL, None
        else:
            direction = Movement.Direction.INBOUND if side == Movement.Side.CREDIT else Movement.Direction.OUTBOUND
            counterparty = other.operator_id if other is not None else None
        movement = Movement(
            source=Movement.Source.BANK,
            rail=rail,
            asset=asset,
            amount=amount,
            direction=direction,
            counterparty_id=counterparty,
            status=Movement.Status.FINAL,
            occurred_at=entry.booked_at or _end_of_day(entry.booking_date, rail.timezone),
            seen_at=now,
            final_at=now,
            statement=record,
            account=account,
            side=side,
            entry_ref=entry_ref,
            bank_reference=entry.bank_reference[:140],
            customer_reference=entry.customer_reference[:140],
            counterparty_account=(entry.counterparty_account or (other.number if other else ""))[:64],
            booking_date=entry.booking_date,
            details=entry.details[:4000],
        )
        known[entry_ref] = movement  # the same reference twice in one statement is one entry
        new_rows.append(movement)
    new = [m.id for m in Movement.objects.bulk_create(new_rows)]
    audit_record(
        actor=actor,
        action="statement.imported",
        object_type="BankStatement",
        object_id=record.id,
        after={**summary, "new_movements": new, "duplicate_entries": duplicates, "pending_skipped": skipped_pending},
        at=now,
    )
    if statement.balance_problem and statement.opening is not None and statement.closing is not None:
        moved = sum((e.amount if e.side == "credit" else -e.amount for e in statement.entries if e.booked), Decimal(0))
        break_raise(
            key=f"{Break.Kind.BALANCE_DIFFERENCE}:statement:{record.id}",
            kind=Break.Kind.BALANCE_DIFFERENCE,
            asset_id=asset.id,
            amount=abs(statement.closing - statement.opening - moved),
            description=f"account {account.number}: {statement.balance_problem} (difference "
            f"{as_str(statement.closing - statement.opening - moved)} {asset.code}); an entry or a page may be missing",
            actor=actor,
            at=now,
            movements=Movement.objects.filter(pk__in=new),
        )
    return {
        **summary,
        "id": record.id,
        "result": "created",
        "new_entries": len(new),
        "duplicate_entries": duplicates,
        "pending_skipped": skipped_pending,
    }
