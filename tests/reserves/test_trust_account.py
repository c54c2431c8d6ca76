"""The reserve fund's account on trust reconciled with its bank statements
(circular para 17; DESIGN section 9: "a difference is a break").

The statements are camt.053 files written here, Hong Kong style (a local
account number under ``Othr``), imported through the ordinary statement
import, which runs the reconciliation."""

from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User

from controls.exceptions import InvalidInput
from controls.models import AuditEvent
from controls.services.approvals import approval_decide
from controls.services.changes import Operation, change_propose
from custody.models import Break, BreakEvent, Movement
from custody.services.reconcile import reconcile_run
from custody.services.statements import statement_import
from operations.services.network import network_load
from registry.models import BankAccount, Rail
from reserves.models import ReserveFund, TrustBalanceCheck, TrustMatch
from reserves.reports import reserve_report
from reserves.services.ledger import reserve_contribute
from reserves.services.trust import trust_reconcile
from tests.factories import build_network
from tests.locks import RowLock

pytestmark = [pytest.mark.django_db, pytest.mark.para(17)]
HKT = ZoneInfo("Asia/Hong_Kong")
TRUST = "004-100200-990"
FRIDAY = datetime(2026, 11, 20, 10, 0, tzinfo=HKT)
MONDAY = datetime(2026, 11, 23, 11, 0, tzinfo=HKT)
TUESDAY = datetime(2026, 11, 24, 9, 0, tzinfo=HKT)
NEXT_MONDAY = datetime(2026, 11, 30, 9, 0, tzinfo=HKT)  # past the grace period for Monday's entries


def entry(ref: str, amount: str, side: str, reference: str | None, day: str = "2026-11-23") -> str:
    refs = (
        f"<NtryDtls><TxDtls><Refs><EndToEndId>{reference}</EndToEndId></Refs></TxDtls></NtryDtls>" if reference else ""
    )
    return f"""
      <Ntry>
        <NtryRef>{ref}</NtryRef>
        <Amt Ccy="HKD">{amount}</Amt>
        <CdtDbtInd>{side}</CdtDbtInd>
        <Sts><Cd>BOOK</Cd></Sts>
        <BookgDt><Dt>{day}</Dt></BookgDt>
        <ValDt><Dt>{day}</Dt></ValDt>
        <AcctSvcrRef>TRUST{ref}</AcctSvcrRef>
        {refs}
      </Ntry>"""


def camt053(*, statement_id: str, day: str, opening: str, closing: str, entries: list[str]) -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>{statement_id}-MSG</MsgId><CreDtTm>{day}T18:05:00+08:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>{statement_id}</Id>
      <CreDtTm>{day}T18:05:00+08:00</CreDtTm>
      <Acct><Id><Othr><Id>{TRUST}</Id></Othr></Id><Ccy>HKD</Ccy></Acct>
      <Bal>
        <Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="HKD">{opening}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt>
      </Bal>
      <Bal>
        <Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp>
        <Amt Ccy="HKD">{closing}</Amt><CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt>
      </Bal>{"".join(entries)}
    </Stmt>
  </BkToCstmrStmt>
</Document>""".encode()


# Monday: the fund opened with 120m on Friday; 5m (named C-1) and 250k (no reference) came in
MONDAY_ENTRIES = [entry("1", "5000000.00", "CRDT", "C-1"), entry("2", "250000.00", "CRDT", None)]


def monday(*, opening: str = "120000000.00", closing: str = "125250000.00", extra: list[str] | None = None) -> bytes:
    return camt053(
        statement_id="TRUST-20261123",
        day="2026-11-23",
        opening=opening,
        closing=closing,
        entries=[*MONDAY_ENTRIES, *(extra or [])],
    )


def load(data: bytes, now: datetime):
    return statement_import(data=data, filename="trust.xml", format=None, actor="test", now=now)


@pytest.fixture
def fund(db):
    network = build_network(reserve=None)
    account = BankAccount.objects.create(
        operator=network.home, rail=Rail.objects.get(code="hkd-chats"), number=TRUST, bank="Example Bank (Hong Kong)"
    )
    fund = ReserveFund.objects.create(trustee="Harbour Trustee Ltd", deed="TD-2026-01", bank_account=account)
    reserve_contribute(amount_hkd="120000000", reference="opening", actor="test", now=FRIDAY)
    reserve_contribute(amount_hkd="5000000", reference="C-1", actor="test", now=MONDAY)
    reserve_contribute(amount_hkd="250000", reference="C-2", actor="test", now=MONDAY)
    return fund


def kinds() -> Counter:
    return Counter(Break.objects.filter(status__in=Break.UNRESOLVED).values_list("kind", flat=True))


def trail() -> tuple[int, int, int, int]:
    return (Break.objects.count(), BreakEvent.objects.count(), TrustMatch.objects.count(), AuditEvent.objects.count())


def test_a_matching_statement_agrees_and_its_entries_are_never_matched_to_legs(fund):
    load(monday(), now=TUESDAY)

    matches = {
        m.entry.reference: (m.movement.entry_ref, m.how) for m in TrustMatch.objects.select_related("entry", "movement")
    }
    assert matches == {"C-1": ("TRUST1", "reference"), "C-2": ("TRUST2", "amount")}
    check = TrustBalanceCheck.objects.get()
    assert (check.statement_hkd, check.ledger_hkd, check.closing_date) == (
        Decimal("125250000.00"),
        Decimal("125250000.00"),
        date(2026, 11, 23),
    )
    # leg matching left the account alone: no leg, and no unmatched receipt from custody's own pass
    assert not Movement.objects.filter(leg__isnull=False).exists()
    assert Break.objects.count() == 0
    assert AuditEvent.objects.filter(action="reserve.trust_matched").count() == 1
    status = reserve_report(as_of=TUESDAY)["trust_account"]
    assert (status["state"], status["last_statement"]["agreed"], status["open_breaks"]) == ("agreed", True, [])


def test_a_missing_entry_is_one_break_after_the_grace_period_and_resolves_when_the_bank_shows_it(fund):
    reserve_contribute(amount_hkd="1000000", reference="C-3", actor="test", now=MONDAY)
    load(monday(), now=TUESDAY)
    # within the grace period only the balance is off, by the missing 1m
    assert kinds() == Counter({Break.Kind.BALANCE_DIFFERENCE: 1})

    reconcile_run(as_of=NEXT_MONDAY)

    assert kinds() == Counter({Break.Kind.BALANCE_DIFFERENCE: 1, Break.Kind.LEDGER_UNMATCHED: 1})
    missing = Break.objects.get(kind=Break.Kind.LEDGER_UNMATCHED)
    assert (missing.amount, "C-3" in missing.description, TRUST in missing.description) == (
        Decimal("1000000"),
        True,
        True,
    )
    before = trail()
    reconcile_run(as_of=NEXT_MONDAY)
    assert trail() == before  # running again raises nothing new

    # Tuesday's statement shows it (value date within the window): matched, and the break resolves itself
    load(
        camt053(
            statement_id="TRUST-20261124",
            day="2026-11-24",
            opening="125250000.00",
            closing="126250000.00",
            entries=[entry("3", "1000000.00", "CRDT", "C-3", day="2026-11-24")],
        ),
        now=NEXT_MONDAY,
    )
    missing.refresh_from_db()
    assert missing.status == Break.Status.RESOLVED
    assert kinds() == Counter({Break.Kind.BALANCE_DIFFERENCE: 1})  # Monday's closing balance stays a difference
    assert TrustBalanceCheck.objects.get(closing_date=date(2026, 11, 24)).difference_hkd == 0


def test_an_unexpected_entry_is_one_break_and_the_balance_it_moves_is_another(fund):
    fee = entry("9", "1250.50", "DBIT", None)
    load(monday(closing="125248749.50", extra=[fee]), now=TUESDAY)

    assert kinds() == Counter({Break.Kind.UNMATCHED_PAYMENT: 1, Break.Kind.BALANCE_DIFFERENCE: 1})
    unexpected = Break.objects.get(kind=Break.Kind.UNMATCHED_PAYMENT)
    assert unexpected.amount == Decimal("1250.50")
    assert list(unexpected.movements.values_list("entry_ref", flat=True)) == ["TRUST9"]
    before = trail()
    reconcile_run(as_of=NEXT_MONDAY)
    assert trail() == before


def test_a_balance_difference_is_one_break_naming_both_figures(fund):
    # every entry matches, but the bank opened 10,000 short of the ledger
    load(monday(opening="119990000.00", closing="125240000.00"), now=TUESDAY)

    assert kinds() == Counter({Break.Kind.BALANCE_DIFFERENCE: 1})
    difference = Break.objects.get()
    assert difference.amount == Decimal("10000.00")
    assert "125240000" in difference.description and "125250000" in difference.description
    status = reserve_report(as_of=TUESDAY)["trust_account"]
    assert (status["state"], status["last_statement"]["difference_hkd"]) == ("breaks", "-10000.00")
    before = trail()
    reconcile_run(as_of=NEXT_MONDAY)
    reconcile_run(as_of=NEXT_MONDAY)
    assert trail() == before


# --- where the account is set: the network file, and the admin under four eyes ----------------


NETWORK = """
[home]
code = "HK1"
name = "Harbour Exchange Ltd"
jurisdiction = "HK"
licence = "BXX001"

[[rail]]
code = "hkd-chats"
kind = "bank"
currency = "HKD"
calendars = ["HK"]
cutoff = "17:30"
timezone = "Asia/Hong_Kong"

[[asset]]
code = "HKD"
kind = "fiat"
scale = 2
rail = "hkd-chats"

[[bank_account]]
operator = "HK1"
rail = "hkd-chats"
number = "004-100200-990"
bank = "Example Bank (Hong Kong)"

[reserve]
trustee = "Harbour Trustee Ltd"
deed = "TD-2026-01"
bank_account = "{number}"
opening_hkd = "120000000"
"""


def test_the_network_file_names_a_registered_account_and_refuses_free_text(db):
    with pytest.raises(InvalidInput) as info:
        network_load(text=NETWORK.format(number="004-100200-990 (trust account)"), actor="test")
    assert "bank_account" in info.value.message and "not a registered bank account" in info.value.message
    assert not ReserveFund.objects.exists()

    network_load(text=NETWORK.format(number="004100200990"), actor="test")

    assert ReserveFund.objects.get().bank_account.number == TRUST


def user(name: str, group: str) -> User:
    person = User.objects.create_user(name, is_staff=True)
    person.groups.add(Group.objects.get(name=group))
    return person


def test_changing_the_funds_account_takes_four_eyes(fund):
    other = BankAccount.objects.create(
        operator=fund.bank_account.operator, rail=fund.bank_account.rail, number="004-100200-991", bank="Other Bank"
    )
    proposed = ReserveFund.objects.get(pk=fund.pk)
    proposed.bank_account = other
    approval = change_propose(
        proposed=proposed, operation=Operation.UPDATE, user=user("maker", "ops_operator"), now=TUESDAY
    )

    assert ReserveFund.objects.get(pk=fund.pk).bank_account.number == TRUST  # nothing changed yet
    approval_decide(approval_id=approval.id, user=user("checker", "ops_approver"), approve=True, reason="", now=TUESDAY)
    assert ReserveFund.objects.get(pk=fund.pk).bank_account.number == "004-100200-991"


def test_the_funds_account_must_be_homes(fund):
    sg1_account = BankAccount.objects.create(
        operator=fund.bank_account.operator.__class__.objects.get(code="SG1"),
        rail=fund.bank_account.rail,
        number="012-345678-001",
        bank="Bank of China (HK)",
    )
    proposed = ReserveFund.objects.get(pk=fund.pk)
    proposed.bank_account = sg1_account
    with pytest.raises(InvalidInput) as info:
        change_propose(proposed=proposed, operation=Operation.UPDATE, user=user("maker", "ops_operator"), now=TUESDAY)
    assert "home" in info.value.message


# --- two runs at once ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_match_each_pair_once(fund):
    """The second run waits on the fund row and then finds nothing left to match."""
    statement_import(data=monday(), filename="trust.xml", format=None, actor="test", now=TUESDAY, reconcile=False)

    with RowLock(ReserveFund, fund.id) as held:
        first = held.start(lambda: trust_reconcile(as_of=TUESDAY), waiters=1)
        second = held.start(lambda: trust_reconcile(as_of=TUESDAY), waiters=2)
        held.release()
    one, two = first.outcome(), second.outcome()

    assert (len(one.matched), len(two.matched)) == (2, 0)
    assert (len(one.statements_checked), len(two.statements_checked)) == (1, 0)
    assert TrustMatch.objects.count() == 2 and TrustBalanceCheck.objects.count() == 1
    assert AuditEvent.objects.filter(action="reserve.trust_matched").count() == 1
    assert Break.objects.count() == 0
