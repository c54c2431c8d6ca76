"""The fund's account on trust reconciled with its bank statements
(circular para 17; DESIGN section 9).

The fund's ``bank_account`` is one of home's registered bank accounts. Its
statements import like any other (custody), but leg matching leaves its
entries alone (``custody.services.reconcile.scope``); this module reconciles
them with the fund's ledger instead, after every reconciliation run (custody's
``reconcile_finished`` hook: a statement import, the chain watcher, and the
scheduled ``custody.reconcile`` task).

- Each ledger entry matches one statement entry on the account: same amount,
  same direction (a positive entry is a credit), value date (booking date)
  within ``RESERVE_TRUST_MATCH_WINDOW_DAYS`` of the entry's date in Hong Kong;
  a statement entry that carries a reference (camt EndToEndId, MT940
  customer reference) must carry the entry's. Pairs by reference first, then
  the n-th entry with the n-th statement entry of the same amount and
  direction in date order: two SQL statements, whatever the number of rows.
  Pairs are written as ``TrustMatch`` rows, with one audit event per run.
- A ledger entry no statement shows ``RESERVE_TRUST_GRACE_DAYS`` after it was
  written is a ``ledger_unmatched`` break; a statement entry no ledger entry
  explains is an ``unmatched_receipt`` or ``unmatched_payment``. A break
  whose cause is matched later is resolved by the run, with a note.
- Each statement's closing balance must equal the ledger's balance at the
  end of its closing date (HKT): a ``balance_difference`` break names both.

Idempotent: a second run finds nothing new to match and no new cause.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet, Sum

from controls.money import as_str
from controls.services.audit import audit_record
from custody.models import BankStatement, Break, Movement
from custody.services.breaks import break_close_if_open, break_raise
from registry.models import Asset

from ..models import ReserveEntry, ReserveFund, TrustBalanceCheck, TrustMatch

ACTOR = "reserves:trust"
HK = ZoneInfo("Asia/Hong_Kong")
CENT = Decimal("0.01")


@dataclass
class TrustResult:
    matched: list[tuple[int, int]] = field(default_factory=list)
    breaks: list[int] = field(default_factory=list)
    resolved: list[int] = field(default_factory=list)
    statements_checked: list[int] = field(default_factory=list)

    def as_json(self) -> dict:
        return {
            "matched": [{"entry": e, "movement": m} for e, m in self.matched],
            "breaks_raised": self.breaks,
            "breaks_resolved": self.resolved,
            "statements_checked": self.statements_checked,
        }


def trust_accounts() -> QuerySet[ReserveFund, int]:
    """The accounts leg matching leaves to this module (custody's scope hook)."""
    return ReserveFund.objects.filter(bank_account__isnull=False).values_list("bank_account_id", flat=True)


def _end_of_day_utc(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=HK).astimezone(ZoneInfo("UTC"))


_PAIRS_SQL = """
    WITH entries AS (
        SELECT e.id, ABS(e.amount_hkd) AS amount, CASE WHEN e.amount_hkd > 0 THEN 'credit' ELSE 'debit' END AS side,
               e.reference, (e.created_at AT TIME ZONE 'Asia/Hong_Kong')::date AS day, e.created_at
        FROM {entry_t} e
        WHERE e.fund_id = %(fund)s AND NOT EXISTS (SELECT 1 FROM {match_t} t WHERE t.entry_id = e.id)
    ), lines AS (
        SELECT m.id, m.amount, m.side, m.booking_date AS day, m.occurred_at,
               NULLIF(m.customer_reference, '') AS reference, m.bank_reference, m.entry_ref
        FROM {movement_t} m
        WHERE m.source = 'bank' AND m.account_id = %(account)s
          AND NOT EXISTS (SELECT 1 FROM {match_t} t WHERE t.movement_id = m.id)
    ), {pairs}
    SELECT entry_id, movement_id FROM pairs
    WHERE ABS(entry_day - line_day) <= %(window)s
    ORDER BY entry_id
"""

# a statement entry naming the ledger entry's reference, of the same amount and side
_BY_REFERENCE = """pairs AS (
        SELECT DISTINCT ON (entries.id) entries.id AS entry_id, lines.id AS movement_id,
               entries.day AS entry_day, lines.day AS line_day
        FROM entries JOIN lines
          ON lines.amount = entries.amount AND lines.side = entries.side
         AND entries.reference IN (lines.reference, lines.bank_reference, lines.entry_ref)
        ORDER BY entries.id, ABS(entries.day - lines.day), lines.id
    )"""

# what is left: the n-th entry with the n-th statement entry of the same amount
# and side, in date order; a statement entry with another reference is not a candidate
_BY_AMOUNT = """e AS (
        SELECT entries.*, ROW_NUMBER() OVER (PARTITION BY amount, side ORDER BY created_at, id) AS rn FROM entries
    ), l AS (
        SELECT lines.*, ROW_NUMBER() OVER (PARTITION BY amount, side ORDER BY occurred_at, id) AS rn FROM lines
        WHERE lines.reference IS NULL
    ), pairs AS (
        SELECT e.id AS entry_id, l.id AS movement_id, e.day AS entry_day, l.day AS line_day
        FROM e JOIN l ON l.amount = e.amount AND l.side = e.side AND l.rn = e.rn
    )"""


def _pairs(*, fund: ReserveFund, by: str) -> list[tuple[int, int]]:
    sql = _PAIRS_SQL.format(
        entry_t=ReserveEntry._meta.db_table,
        match_t=TrustMatch._meta.db_table,
        movement_t=Movement._meta.db_table,
        pairs=by,
    )
    params = {
        "fund": fund.id,
        "account": fund.bank_account_id,
        "window": settings.RESERVE_TRUST_MATCH_WINDOW_DAYS,
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(entry_id, movement_id) for entry_id, movement_id in cursor.fetchall()]


def trust_reconcile(*, as_of: datetime, actor: str = ACTOR) -> TrustResult:
    """Match, check balances, raise and resolve breaks. One transaction, on
    the fund row's lock, so two runs never match the same rows twice."""
    result = TrustResult()
    with transaction.atomic():
        fund = ReserveFund.objects.select_for_update().filter(bank_account__isnull=False).order_by("id").first()
        if fund is None:
            return result
        account = fund.bank_account
        assert account is not None
        asset = Asset.objects.filter(rail_id=account.rail_id, code=fund.currency).first()
        for how, by in (("reference", _BY_REFERENCE), ("amount", _BY_AMOUNT)):
            pairs = _pairs(fund=fund, by=by)
            TrustMatch.objects.bulk_create(
                [TrustMatch(entry_id=e, movement_id=m, how=how, matched_at=as_of) for e, m in pairs]
            )
            result.matched.extend(pairs)
        if result.matched:
            audit_record(
                actor=actor,
                action="reserve.trust_matched",
                object_type="ReserveFund",
                object_id=fund.id,
                after={
                    "account": account.number,
                    "pairs": [{"entry": e, "movement": m} for e, m in result.matched],
                },
                at=as_of,
            )
        _resolve_matched(result=result, actor=actor, as_of=as_of)
        _unmatched_entries(fund=fund, asset=asset, result=result, actor=actor, as_of=as_of)
        _unmatched_lines(fund=fund, result=result, actor=actor, as_of=as_of)
        _balances(fund=fund, asset=asset, result=result, actor=actor, as_of=as_of)
    return result


def _resolve_matched(*, result: TrustResult, actor: str, as_of: datetime) -> None:
    """A break whose ledger entry or statement entry is matched now: the cause went away."""
    for entry_id, movement_id in result.matched:
        for key in (
            f"{Break.Kind.LEDGER_UNMATCHED}:reserve_entry:{entry_id}",
            f"{Break.Kind.UNMATCHED_RECEIPT}:movement:{movement_id}",
            f"{Break.Kind.UNMATCHED_PAYMENT}:movement:{movement_id}",
        ):
            brk = break_close_if_open(
                key=key, note=f"matched: ledger entry {entry_id} = statement entry {movement_id}", actor=actor, at=as_of
            )
            if brk is not None:
                result.resolved.append(brk.id)


def _unmatched_entries(
    *, fund: ReserveFund, asset: Asset | None, result: TrustResult, actor: str, as_of: datetime
) -> None:
    start = _statements_start(fund)
    if start is None:
        return  # no statement yet: nothing to hold the ledger against (the panel says so)
    grace = timedelta(days=settings.RESERVE_TRUST_GRACE_DAYS)
    entries = (
        fund.entries.filter(
            trust_match__isnull=True,
            created_at__gte=_end_of_day_utc(start - timedelta(days=1)),
            created_at__lte=as_of - grace,
        )
        .exclude(pk__in=_keyed(Break.Kind.LEDGER_UNMATCHED, "reserve_entry"))
        .order_by("id")
    )
    assert fund.bank_account is not None
    for entry in entries:
        direction = "into" if entry.amount_hkd > 0 else "out of"
        brk, changed = break_raise(
            key=f"{Break.Kind.LEDGER_UNMATCHED}:reserve_entry:{entry.id}",
            kind=Break.Kind.LEDGER_UNMATCHED,
            asset_id=asset.id if asset else None,
            amount=abs(entry.amount_hkd),
            description=(
                f"reserve fund {entry.kind} {entry.reference} of {as_str(abs(entry.amount_hkd))} HKD {direction} the "
                f"trust account {fund.bank_account.number} on {entry.created_at.astimezone(HK):%Y-%m-%d} is on no "
                f"statement of that account {settings.RESERVE_TRUST_GRACE_DAYS} days later"
            ),
            actor=actor,
            at=as_of,
        )
        if changed:
            result.breaks.append(brk.id)


def _statements_start(fund: ReserveFund) -> date | None:
    """The first day the imported statements cover: ledger entries before it
    are in the first statement's opening balance, not among its entries (the
    balance check still holds them)."""
    first = BankStatement.objects.filter(account_id=fund.bank_account_id).order_by("closing_date", "id").first()
    if first is None or first.closing_date is None:
        return None
    booked = Movement.objects.filter(statement=first).order_by("booking_date").values_list("booking_date", flat=True)
    return min([first.closing_date, *[day for day in booked[:1] if day is not None]])


def _keyed(kind: str, what: str) -> list[int]:
    """Ids named by the keys of breaks of ``kind`` (resolved ones included: a cause is raised once)."""
    prefix = f"{kind}:{what}:"
    return [
        int(key[len(prefix) :]) for key in Break.objects.filter(key__startswith=prefix).values_list("key", flat=True)
    ]


def _unmatched_lines(*, fund: ReserveFund, result: TrustResult, actor: str, as_of: datetime) -> None:
    assert fund.bank_account is not None
    lines = (
        Movement.objects.filter(source=Movement.Source.BANK, account_id=fund.bank_account_id, trust_match__isnull=True)
        .exclude(breaks__kind__in=[Break.Kind.UNMATCHED_RECEIPT, Break.Kind.UNMATCHED_PAYMENT])
        .select_related("asset")
        .order_by("id")
    )
    for line in lines:
        credit = line.side == Movement.Side.CREDIT
        kind = Break.Kind.UNMATCHED_RECEIPT if credit else Break.Kind.UNMATCHED_PAYMENT
        reference = line.customer_reference or line.bank_reference or line.entry_ref
        brk, changed = break_raise(
            key=f"{kind}:movement:{line.id}",
            kind=kind,
            asset_id=line.asset_id,
            amount=line.amount,
            description=(
                f"{as_str(line.amount)} {line.asset.code} {'received on' if credit else 'paid from'} the reserve "
                f"fund's trust account {fund.bank_account.number} on {line.booking_date} ({reference}) matches no "
                "entry of the fund's ledger"
            ),
            actor=actor,
            at=as_of,
            movements=[line],
        )
        if changed:
            result.breaks.append(brk.id)


def _ledger_at(fund: ReserveFund, day: date) -> Decimal:
    total = fund.entries.filter(created_at__lt=_end_of_day_utc(day)).aggregate(total=Sum("amount_hkd"))["total"]
    return (total or Decimal(0)).quantize(CENT)


def _balances(*, fund: ReserveFund, asset: Asset | None, result: TrustResult, actor: str, as_of: datetime) -> None:
    """Each statement not checked yet: its closing balance against the ledger's at its closing date."""
    statements = (
        BankStatement.objects.filter(account_id=fund.bank_account_id, trust_check__isnull=True)
        .filter(~Q(closing_balance=None), ~Q(closing_date=None))
        .order_by("closing_date", "id")
    )
    assert fund.bank_account is not None
    for statement in statements:
        assert statement.closing_balance is not None and statement.closing_date is not None
        bank, ledger = statement.closing_balance.quantize(CENT), _ledger_at(fund, statement.closing_date)
        check = TrustBalanceCheck.objects.create(
            statement=statement,
            closing_date=statement.closing_date,
            statement_hkd=bank,
            ledger_hkd=ledger,
            checked_at=as_of,
        )
        result.statements_checked.append(statement.id)
        audit_record(
            actor=actor,
            action="reserve.trust_balance_checked",
            object_type="TrustBalanceCheck",
            object_id=check.id,
            after={
                "statement": statement.statement_ref,
                "closing_date": statement.closing_date.isoformat(),
                "statement_hkd": as_str(bank),
                "ledger_hkd": as_str(ledger),
                "agreed": bank == ledger,
            },
            at=as_of,
        )
        if bank == ledger:
            continue
        brk, changed = break_raise(
            key=f"{Break.Kind.BALANCE_DIFFERENCE}:trust_statement:{statement.id}",
            kind=Break.Kind.BALANCE_DIFFERENCE,
            asset_id=asset.id if asset else None,
            amount=bank - ledger,
            description=(
                f"reserve fund trust account {fund.bank_account.number}, statement {statement.statement_ref}: "
                f"the bank's closing balance on {statement.closing_date} is {as_str(bank)} HKD, the fund's ledger "
                f"says {as_str(ledger)} HKD (difference {as_str(bank - ledger)} HKD)"
            ),
            actor=actor,
            at=as_of,
        )
        if changed:
            result.breaks.append(brk.id)


def trust_reconcile_after(*, as_of: datetime, actor: str, result) -> None:
    """Custody's ``reconcile_finished`` hook: reconcile the trust account too."""
    result.breaks.extend(trust_reconcile(as_of=as_of).breaks)
