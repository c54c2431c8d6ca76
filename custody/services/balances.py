"""Custodian balance reports against the books, and as attestations of
prefunding cover.

A report says what a custodian (or bank) holds, per wallet or account and
asset, at a time. For home's own wallets and accounts the books' expected
balance of a holder is its opening (the first report that named it: a
*baseline*) plus every final movement into it minus every final movement out
of it (gas fees included) after the opening and up to the report's time. A
difference is a ``balance_difference`` break. A home wallet's reported
balance also becomes its ``WalletBalance`` (what the cycle service uses for
cold-to-hot lead times).

A line for a *designated* custodian wallet or account (of any operator:
circular para 10) is also an attestation of that operator's prefunding
cover: it is recorded through settlement, the cover of that operator and
asset is evaluated at once, and a stale or breached cover becomes a break
(``prefunding.cover_breaks_sync``). Another operator's designated holder is
not on our books: its line is ``attested`` only.

Idempotent per (source, reference): the same report again returns the
stored result; the same reference with other content is a conflict.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Q, Sum

from controls.exceptions import Conflict, InvalidInput
from controls.money import as_str, parse_decimal
from controls.services.audit import audit_record
from controls.validation import refuse_nul
from custody.models import BalanceReport, BalanceReportLine, BookOpening, Break, Movement
from custody.selectors import amount_str
from registry.models import Asset, BankAccount, Operator, Rail, Wallet
from registry.services.rails import wallet_balance_set
from settlement.models import CustodianAttestation
from settlement.services.prefunding import AttestationLine, attestations_record

from .breaks import break_raise
from .prefunding import cover_breaks_sync
from .statements import normalise_account

MAX_LINES = 10_000


@dataclass
class _Line:
    index: int
    rail: Rail
    wallet: Wallet | None
    account: BankAccount | None
    asset: Asset
    amount: Decimal
    operator_id: int
    ours: bool  # home's own holder: compared with the books
    designated: bool  # a designated custodian holder: attests prefunding cover

    @property
    def holder(self) -> str:
        if self.wallet:
            return self.wallet.address
        assert self.account is not None  # a line names a wallet or an account
        return self.account.number


def _text(raw: dict, key: str, field: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput("invalid_field", f"{field} must be a non-empty string", field=field)
    return value.strip()


def _parse_lines(lines: object) -> list[_Line]:
    if not isinstance(lines, list) or not lines:
        raise InvalidInput("invalid_field", "lines must be a non-empty list", field="lines")
    if len(lines) > MAX_LINES:
        raise InvalidInput("invalid_field", f"at most {MAX_LINES} lines per report", field="lines")
    home = Operator.objects.filter(role=Operator.Role.HOME).first()
    parsed, seen = [], set()
    for index, raw in enumerate(lines):
        where = f"lines[{index}]"
        if not isinstance(raw, dict):
            raise InvalidInput("invalid_field", f"{where} must be an object", field=where)
        unknown = set(raw) - {"rail", "wallet", "account", "asset", "amount"}
        if unknown:
            raise InvalidInput("invalid_field", f"{where}: unknown key {sorted(unknown)[0]!r}", field=where)
        rail = Rail.objects.filter(code=_text(raw, "rail", f"{where}.rail")).first()
        if rail is None:
            raise InvalidInput("invalid_field", f"{where}.rail: no rail {raw['rail']!r}", field=f"{where}.rail")
        wallet = account = None
        if ("wallet" in raw) == ("account" in raw):
            raise InvalidInput("invalid_field", f"{where}: give exactly one of wallet or account", field=where)
        if "wallet" in raw:
            address = _text(raw, "wallet", f"{where}.wallet").lower()
            wallet = Wallet.objects.filter(rail=rail, address=address).first()
            if wallet is None:
                raise InvalidInput(
                    "invalid_field",
                    f"{where}.wallet: {address} is not a wallet on rail {rail.code}",
                    field=f"{where}.wallet",
                )
            owner, designated = wallet.operator_id, wallet.designated
        else:
            number = normalise_account(_text(raw, "account", f"{where}.account"))
            account = next(
                (a for a in BankAccount.objects.filter(rail=rail) if normalise_account(a.number) == number), None
            )
            if account is None:
                raise InvalidInput(
                    "invalid_field",
                    f"{where}.account: {raw['account']} is not a bank account on rail {rail.code}",
                    field=f"{where}.account",
                )
            owner, designated = account.operator_id, account.designated
        ours = home is not None and owner == home.id
        if not ours and not designated:
            raise InvalidInput(
                "invalid_field",
                f"{where}: balance reports are for home's own wallets and accounts, and for any operator's "
                "designated custodian wallets and accounts",
                field=where,
            )
        asset = Asset.objects.filter(code=_text(raw, "asset", f"{where}.asset"), rail=rail).first()
        if asset is None:
            raise InvalidInput(
                "invalid_field", f"{where}.asset: no asset {raw['asset']!r} on rail {rail.code}", field=f"{where}.asset"
            )
        amount = parse_decimal(raw.get("amount"), field=f"{where}.amount", scale=asset.scale, positive=False)
        if amount < 0:
            raise InvalidInput("invalid_field", f"{where}.amount must not be negative", field=f"{where}.amount")
        key = (wallet.id if wallet else None, account.id if account else None, asset.id)
        if key in seen:
            raise InvalidInput("invalid_field", f"{where}: the same holder and asset twice in one report", field=where)
        seen.add(key)
        parsed.append(_Line(index, rail, wallet, account, asset, amount, owner, ours, designated))
    return parsed


def _hash(as_of: datetime, lines: list[_Line]) -> str:
    content = [as_of.isoformat(), *[(x.rail.code, x.holder, x.asset.code, str(x.amount.normalize())) for x in lines]]
    return hashlib.blake2b(json.dumps(content).encode(), digest_size=16).hexdigest()


def _exact_sum(queryset) -> Decimal:
    return queryset.aggregate(total=Sum("amount"))["total"] or Decimal(0)


def books_balance(
    *, wallet: Wallet | None, account: BankAccount | None, asset: Asset, after: datetime, until: datetime
) -> Decimal:
    """Net final movements of one holder and asset in (after, until]."""
    moves = Movement.objects.filter(
        status=Movement.Status.FINAL, asset=asset, occurred_at__gt=after, occurred_at__lte=until
    )
    if wallet is not None:
        return _exact_sum(moves.filter(to_wallet=wallet)) - _exact_sum(moves.filter(from_wallet=wallet))
    # only bank entries name an account: saying so lets the bank entries' unique index find them
    mine = moves.filter(source=Movement.Source.BANK, account=account)
    return _exact_sum(mine.filter(side=Movement.Side.CREDIT)) - _exact_sum(mine.filter(side=Movement.Side.DEBIT))


def balance_report_as_json(report: BalanceReport, *, result: str = "created") -> dict:
    lines = []
    for line in report.lines.select_related("wallet__rail", "account__rail", "asset").prefetch_related("breaks"):
        holder = line.wallet or line.account
        assert holder is not None  # a line names a wallet or an account (database CHECK)
        lines.append(
            {
                "rail": holder.rail.code,
                "wallet": line.wallet.address if line.wallet else None,
                "account": line.account.number if line.account else None,
                "asset": line.asset.code,
                "reported": amount_str(line.reported, line.asset),
                "expected": amount_str(line.expected, line.asset),
                "difference": amount_str(line.difference, line.asset),
                "outcome": line.outcome,
                "break": next((b.id for b in line.breaks.all()), None),
            }
        )
    return {
        "id": report.id,
        "source": report.source,
        "reference": report.reference,
        "as_of": report.as_of.isoformat(),
        "result": result,
        "lines": lines,
    }


def balance_report_record(
    *, source: str, reference: str, as_of: datetime, lines: object, actor: str, now: datetime
) -> tuple[BalanceReport, bool]:
    """Record a report and compare each line with the books. Returns
    (report, created)."""
    for name, value in (("source", source), ("reference", reference), ("lines", lines)):
        refuse_nul(value, field=name)
    if not isinstance(source, str) or not source.strip() or len(source) > 200:
        raise InvalidInput(
            "invalid_field", "source must name the custodian or bank (1 to 200 characters)", field="source"
        )
    if not isinstance(reference, str) or not reference.strip() or len(reference) > 140:
        raise InvalidInput("invalid_field", "reference must be 1 to 140 characters", field="reference")
    if as_of.utcoffset() is None:
        raise InvalidInput("invalid_timestamp", "as_of must carry a time zone", field="as_of")
    if as_of > now:
        raise InvalidInput("invalid_timestamp", "as_of is in the future", field="as_of")
    source, reference = source.strip(), reference.strip()
    parsed = _parse_lines(lines)
    content_hash = _hash(as_of, parsed)
    with transaction.atomic():
        existing = BalanceReport.objects.select_for_update().filter(source=source, reference=reference).first()
        if existing is not None:
            if existing.content_hash != content_hash:
                raise Conflict("conflict", f"report {reference} from {source} was recorded with other content")
            return existing, False
        report = BalanceReport.objects.create(
            source=source,
            reference=reference,
            as_of=as_of,
            content_hash=content_hash,
            received_at=now,
            received_by=actor,
        )
        for line in parsed:
            if line.ours:
                _compare(report=report, line=line, actor=actor, now=now)
            else:
                BalanceReportLine.objects.create(
                    report=report,
                    wallet=line.wallet,
                    account=line.account,
                    asset=line.asset,
                    reported=line.amount,
                    outcome=BalanceReportLine.Outcome.ATTESTED,
                )
        _attest(report=report, lines=[line for line in parsed if line.designated], actor=actor, now=now)
        audit_record(
            actor=actor,
            action="balance_report.recorded",
            object_type="BalanceReport",
            object_id=report.id,
            after=balance_report_as_json(report),
            at=now,
        )
        return report, True


def _compare(*, report: BalanceReport, line: _Line, actor: str, now: datetime) -> None:
    holder = Q(wallet=line.wallet) if line.wallet else Q(account=line.account)
    opening = BookOpening.objects.select_for_update().filter(holder, asset=line.asset).first()
    record = BalanceReportLine(
        report=report, wallet=line.wallet, account=line.account, asset=line.asset, reported=line.amount
    )
    if opening is None:
        record.outcome = BalanceReportLine.Outcome.BASELINE
        record.save()
        BookOpening.objects.create(
            wallet=line.wallet,
            account=line.account,
            asset=line.asset,
            amount=line.amount,
            as_of=report.as_of,
            line=record,
        )
    else:
        if report.as_of < opening.as_of:
            raise InvalidInput(
                "invalid_field",
                f"lines[{line.index}]: the books of {line.holder} {line.asset.code} open at {opening.as_of.isoformat()}, "
                "after this report",
                field=f"lines[{line.index}]",
            )
        moved = books_balance(
            wallet=line.wallet, account=line.account, asset=line.asset, after=opening.as_of, until=report.as_of
        )
        record.expected = opening.amount + moved
        record.difference = line.amount - record.expected
        record.outcome = (
            BalanceReportLine.Outcome.MATCH if record.difference == 0 else BalanceReportLine.Outcome.DIFFERENCE
        )
        record.save()
        if record.difference != 0:
            break_raise(
                key=f"{Break.Kind.BALANCE_DIFFERENCE}:line:{record.id}",
                kind=Break.Kind.BALANCE_DIFFERENCE,
                asset_id=line.asset.id,
                amount=abs(record.difference),
                description=(
                    f"{report.source} reports {as_str(line.amount)} {line.asset.code} in {line.holder} at "
                    f"{report.as_of.isoformat()}; the books say {as_str(record.expected)} "
                    f"(difference {as_str(record.difference)})"
                ),
                actor=actor,
                at=now,
                balance_line_id=record.id,
            )
    if line.wallet is not None:  # home's own wallet (only those are compared)
        wallet_balance_set(
            wallet_id=line.wallet.id, asset_id=line.asset.id, amount=line.amount, actor=actor, now=report.as_of
        )


def _attest(*, report: BalanceReport, lines: list[_Line], actor: str, now: datetime) -> None:
    """Designated holders' lines attest their operators' prefunding cover."""
    if not lines:
        return
    covers = attestations_record(
        lines=[
            AttestationLine(
                operator_id=line.operator_id,
                asset_id=line.asset.id,
                amount=line.amount,
                wallet_id=line.wallet.id if line.wallet else None,
                bank_account_id=line.account.id if line.account else None,
            )
            for line in lines
        ],
        source=CustodianAttestation.Source.BALANCE_REPORT,
        reference=f"report {report.id}: {report.source} {report.reference}",
        as_of=report.as_of,
        actor=actor,
        now=now,
    )
    cover_breaks_sync(covers=covers, actor=actor, now=now)
