"""Bank statement import: Hong Kong-style camt.053 and MT940 written for these
tests, and real third-party samples (MT940 copied here with their licences;
camt.053/054 read from ../shared when it is beside the clone)."""

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from custody.models import BankAccount, BankStatement, Break, Movement, Rail
from custody.services.statements import statement_import
from custody.statements import StatementError, parse_statement_file
from settlement.exceptions import Conflict, InvalidInput
from settlement.models import Leg
from tests.factories import AssetFactory, RailFactory

from .chain import ROOT

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "statements"
SHARED = ROOT.parent / "shared" / "fixtures" / "statements"
HKT = ZoneInfo("Asia/Hong_Kong")
HOME_HKD = "012-345678-001"
SG1_HKD = "004-555555-838"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def shared(name: str) -> bytes:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"{path} is not here (the shared/ folder beside the clone holds it)")
    return path.read_bytes()


def load(data: bytes, name: str = "statement", fmt: str | None = None, now=None):
    return statement_import(
        data=data, filename=name, format=fmt, actor="test", now=now or timezone.now(), reconcile=False
    )


@pytest.fixture
def accounts(network):
    rail = Rail.objects.get(code="hkd-chats")
    home = BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC Hong Kong")
    theirs = BankAccount.objects.create(operator=network.sg1, rail=rail, number=SG1_HKD, bank="Bank of China (HK)")
    return home, theirs


@pytest.fixture
def eur(network):
    rail = RailFactory(code="eur-sepa", kind="bank", chain_id=None, confirmations=None, currency="EUR", calendars=[])
    AssetFactory(code="EUR", kind="fiat", scale=2, rail=rail)
    return rail


def home_account(network, rail, number: str) -> BankAccount:
    return BankAccount.objects.create(operator=network.home, rail=rail, number=number, bank="test bank")


def test_a_hong_kong_camt053_with_local_account_numbers_imports(accounts):
    result = load(read("hk/hk_camt053.xml"), "hk_camt053.xml")

    (statement,) = result.statements
    assert (statement["result"], statement["new_entries"], statement["balance_problem"]) == ("created", 2, None)
    receipt = Movement.objects.get(side="credit")
    assert (receipt.amount, receipt.direction, receipt.counterparty.code) == (Decimal("740000.00"), "inbound", "SG1")
    assert (receipt.entry_ref, receipt.customer_reference, receipt.counterparty_account) == (
        "CHATS26112300042",
        "LCX-SETTLE-7781",
        SG1_HKD,
    )
    assert receipt.occurred_at == datetime(2026, 11, 23, 23, 59, 59, 999999, tzinfo=HKT)  # booked that day
    fee = Movement.objects.get(side="debit")
    assert (fee.amount, fee.direction, fee.counterparty) == (Decimal("1250.50"), "outbound", None)
    assert BankStatement.objects.get().statement_ref == "STMT-012345678001-20261123/327"


def test_the_same_statement_twice_changes_nothing_and_other_content_under_its_id_is_refused(accounts):
    load(read("hk/hk_camt053.xml"))
    again = load(read("hk/hk_camt053.xml"))

    assert again.statements[0]["result"] == "duplicate"
    assert Movement.objects.count() == 2
    changed = read("hk/hk_camt053.xml").replace(b"<AddtlNtryInf>CHATS CHARGES NOV", b"<AddtlNtryInf>CHARGES")
    with pytest.raises(Conflict, match="with other content"):
        load(changed)
    assert (BankStatement.objects.count(), Movement.objects.count()) == (1, 2)


def test_a_hong_kong_mt940_finds_the_counterparty_account_in_the_details(accounts):
    result = load(read("hk/hk_mt940.sta"))

    assert result.statements[0]["account"] == HOME_HKD  # matched "HSBCHKHHHKH/012345678001"
    receipt = Movement.objects.get(side="credit")
    assert (receipt.amount, receipt.counterparty.code, receipt.entry_ref) == (
        Decimal("500000.00"),
        "SG1",
        "CHATS2611230099",
    )
    assert receipt.customer_reference == "LCX7782"


def test_an_amount_that_is_not_a_decimal_refuses_the_file_with_its_line(accounts):
    with pytest.raises(InvalidInput) as error:
        load(read("hk/hk_camt053_bad_amount.xml"), "bad.xml")

    assert "bad.xml: line 56: <Amt> '1,250.50' is not a decimal amount" in error.value.message
    assert not Movement.objects.exists() and not BankStatement.objects.exists()


def test_more_decimals_than_the_currency_allows_is_refused(accounts):
    data = read("hk/hk_mt940.sta").replace(b"D80,00NCHG", b"D80,005NCHG").replace(b"2238669,50", b"2238669,495")
    with pytest.raises(InvalidInput, match=r"line 8: entry amount 80.005 has more decimals than HKD allows \(2\)"):
        load(data)
    assert not Movement.objects.exists()


def test_a_broken_statement_refuses_the_whole_file_even_after_a_good_one(accounts):
    broken = read("mt940/betterplace_sepa_snippet_broken.sta")
    with pytest.raises(InvalidInput, match="line 6: :25: appears twice"):
        load(broken)
    combined = read("hk/hk_mt940.sta") + b"\r\n" + broken

    with pytest.raises(InvalidInput, match="line 18: :25: appears twice"):
        load(combined)

    assert not BankStatement.objects.exists() and not Movement.objects.exists()


def test_statements_for_unknown_or_foreign_accounts_or_in_the_wrong_currency_are_refused(accounts, network):
    with pytest.raises(InvalidInput, match="account '11111111' is not a registered bank account"):
        load(read("mt940/jejik_generic.sta"))
    foreign = read("hk/hk_camt053.xml").replace(HOME_HKD.encode(), SG1_HKD.encode(), 1)
    with pytest.raises(InvalidInput, match="belongs to SG1"):
        load(foreign)
    usd = read("hk/hk_camt053.xml").replace(b'Ccy="HKD"', b'Ccy="USD"').replace(b"<Ccy>HKD", b"<Ccy>USD")
    with pytest.raises(InvalidInput, match=r"is in USD; account 012-345678-001 .* is in HKD"):
        load(usd)
    assert not Movement.objects.exists()


def test_real_mt940_samples_import(network, eur):
    home_account(network, eur, "11111111")
    home_account(network, eur, "51230800/0000007055")
    home_account(network, eur, "0000007304")

    generic = load(read("mt940/jejik_generic.sta"))
    binary = load(read("mt940/betterplace_with_binary_character.sta"))

    assert [s["statement_ref"] for s in generic.statements] == ["GENERIC/1", "GENERIC/2"]
    assert [s["new_entries"] for s in binary.statements] == [3, 1]
    assert Movement.objects.filter(account__number="0000007304").get().amount == Decimal("1120.00")
    assert not Break.objects.exists()


def test_a_real_statement_that_does_not_add_up_is_imported_with_a_balance_break(network, eur):
    home_account(network, eur, "517852257")

    result = load(read("mt940/jejik_abnamro.sta"))

    assert all("does not add up" in s["balance_problem"] for s in result.statements)
    differences = sorted(Break.objects.filter(kind="balance_difference").values_list("amount", flat=True))
    assert differences == [Decimal("1002.60"), Decimal("2038.00")]  # e.g. 3236.28 - 321.44 - 876.84
    assert Movement.objects.count() == 10


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("mt940/betterplace_amount_formats.sta", "line 1: :60F: outside a statement"),
        ("mt940/betterplace_sepa_snippet_broken.sta", "line 6: :25: appears twice"),
    ],
)
def test_malformed_real_mt940_samples_are_refused_with_the_line(name, message):
    with pytest.raises(StatementError, match=message):
        parse_statement_file(read(name))


def test_the_asnb_sample_with_an_over_long_reference_is_refused_with_its_line():
    with pytest.raises(StatementError, match=r"line 6: :61: '2001010101D65,00NOVBNL47INGB9999999999' is not a valid"):
        parse_statement_file(shared("mt940/ASNB_mt940.txt"))


def test_real_camt053_samples_import(network, eur):
    home_account(network, eur, "NL77ABNA0574908765")
    chf = RailFactory(code="chf-sic", kind="bank", chain_id=None, confirmations=None, currency="CHF", calendars=[])
    AssetFactory(code="CHF", kind="fiat", scale=2, rail=chf)
    home_account(network, chf, "CH1111000000123456789")

    main = load(shared("camt/test-camt053.xml"), fmt="camt053")
    details = load(shared("camt/test-camt053-txdtls.xml"))

    assert main.statements[0]["new_entries"] == 3
    assert "does not add up" in main.statements[0]["balance_problem"]  # the published sample's balances disagree
    assert details.statements[0]["new_entries"] == 1
    credit = Movement.objects.get(account__number="CH1111000000123456789")
    assert (credit.amount, credit.side, credit.booking_date.isoformat()) == (Decimal("3483.00"), "credit", "2017-03-22")


def test_a_camt054_notification_is_refused():
    with pytest.raises(StatementError, match=r"camt\.054 debit/credit notification"):
        parse_statement_file(shared("camt/test-camt054.xml"))


def test_xml_that_is_not_well_formed_is_refused_with_its_line():
    with pytest.raises(StatementError, match=r"line 3: not well-formed XML"):
        parse_statement_file(
            b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">\n<Oops></Document>'
        )


def test_an_inbound_hkd_leg_confirms_from_the_bank_statement(accounts, network):
    from settlement.services.cycles import cycle_run
    from settlement.services.trades import trades_ingest
    from tests.factories import trade

    monday = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
    item = trade(base="BTC", quote="HKD", price="740000", quantity="1", buy=("SG1", "s-1"), sell=("HK1", "pro-1"))
    item["executed_at"] = (monday - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=monday - timedelta(minutes=59))
    cycle_run(kind="intraday", as_of=monday, actor="test")
    hkd = Leg.objects.get(asset__code="HKD")
    assert (hkd.direction, hkd.amount, hkd.status) == ("inbound", Decimal(740000), "instructed")

    statement_import(
        data=read("hk/hk_camt053.xml"), filename="hk.xml", format=None, actor="test", now=monday + timedelta(hours=8)
    )

    hkd.refresh_from_db()
    assert hkd.status == "confirmed"
    assert hkd.evidence["source"] == "bank"
    assert hkd.evidence["movements"][0]["entry_ref"] == "CHATS26112300042"
    assert Leg.objects.get(asset__code="BTC").status == "instructed"  # receive-first: released
