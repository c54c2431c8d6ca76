"""Bank statement import: Hong Kong-style camt.053/052/054 and MT940 written
for these tests (fixtures/statements/hk/), and real third-party MT940 samples
copied with their licences (fixtures/statements/mt940/). Nothing is read from
outside the checkout, so no test here skips for a missing file."""

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from controls.exceptions import Conflict, InvalidInput
from custody.models import BankStatement, Break, Movement
from custody.services.statements import statement_import
from custody.statements import StatementError, parse_statement_file
from registry.models import BankAccount, Rail
from settlement.models import Leg
from tests.factories import AssetFactory, RailFactory

pytestmark = pytest.mark.django_db
FIXTURES = Path(__file__).parent / "fixtures" / "statements"
HKT = ZoneInfo("Asia/Hong_Kong")
HOME_HKD = "012-345678-001"
SG1_HKD = "004-555555-838"
JP1_HKD = "003-778899-502"
HOME_CLIENT_HKD = "012-345678-002"
HOME_OPERATING_HKD = "003-447755-101"
HOME_EUR_IBAN = "DE85 3003 0880 4455 6677 00"  # registered with spaces; the statement gives it without
SG1_EUR_IBAN = "DE28100700000831245600"


def read(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


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


def test_an_mt940_reference_longer_than_16_characters_is_refused_with_its_line(accounts):
    bad = r"line 8: :61: '2611251125C250000,00NTRFLCXSETTLE20261125A//CHATS2611250042' is not a valid"
    with pytest.raises(StatementError, match=bad):
        parse_statement_file(read("hk/hk_mt940_long_reference.sta"))

    with pytest.raises(InvalidInput) as error:
        load(read("hk/hk_mt940_long_reference.sta"), "long.sta")
    assert error.value.message.startswith("long.sta: line 8: :61: ")
    assert not BankStatement.objects.exists() and not Movement.objects.exists()


def test_an_over_long_mt940_reference_is_refused_even_without_supplementary_details():
    data = read("hk/hk_mt940_long_reference.sta").replace(b"SHARED BOOK SETTLEMENT\r\n", b"")
    with pytest.raises(StatementError, match=r"line 8: :61: '2611251125C250000,00NTRFLCXSETTLE20261125A"):
        parse_statement_file(data)


def test_a_multi_page_hong_kong_mt940_with_several_entries_imports(accounts, network):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.jp1, rail=rail, number=JP1_HKD, bank="Standard Chartered (HK)")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_CLIENT_HKD, bank="HSBC Hong Kong")

    result = load(read("hk/hk_mt940_multi.sta"), "multi.sta")

    assert [(s["statement_ref"], s["new_entries"], s["balance_problem"]) for s in result.statements] == [
        ("HK26112501/330/1", 3, None),  # :60F: ... :62M:
        ("HK26112501/330/2", 2, None),  # :60M: ... :62F:, the same :20: and statement number
        ("HK26112601/331/1", 2, None),  # with :64: after :62F:
    ]
    moves = {m.entry_ref: m for m in Movement.objects.all()}
    assert {
        ref: (m.side, m.amount, m.direction, m.counterparty and m.counterparty.code) for ref, m in moves.items()
    } == {
        "CHATS2611250042": ("credit", Decimal("250000.00"), "inbound", "SG1"),  # SG1's account in the :86:
        "CHATS2611250107": ("debit", Decimal("1200000.00"), "outbound", "JP1"),  # JP1's account in the :86:
        "FEE2611250031": ("debit", Decimal("120.00"), "outbound", None),
        "RVSL2611250002": ("credit", Decimal("1200000.00"), "inbound", None),  # RD: the payout's debit reversed
        "CHATS2611250203": ("credit", Decimal("38000.00"), "internal", None),  # from home's client money account
        "HK26112601/331/1#1": ("credit", Decimal("64000.00"), "inbound", None),  # NONREF, no bank reference
        "FEE2611260004": ("debit", Decimal("380.50"), "outbound", None),
    }
    assert moves["CHATS2611250107"].counterparty_account == JP1_HKD
    assert moves["CHATS2611250107"].customer_reference == "HK1PAYOUT0051"
    assert moves["RVSL2611250002"].details.startswith("REJECTED BY BENEFICIARY BANK\nREVERSAL OF CHATS2611250107")
    assert moves["HK26112601/331/1#1"].booking_date.isoformat() == "2026-11-26"  # no entry date: the value date
    net = sum(m.amount if m.side == "credit" else -m.amount for m in moves.values())
    assert net == Decimal("3822489.00") - Decimal("3470989.50")  # the last closing less the first opening
    statements = BankStatement.objects.order_by("statement_ref")
    assert [(s.opening_balance, s.closing_balance) for s in statements] == [
        (Decimal("3470989.50"), Decimal("2520869.50")),
        (Decimal("2520869.50"), Decimal("3758869.50")),
        (Decimal("3758869.50"), Decimal("3822489.00")),
    ]
    assert not Break.objects.exists()


def test_a_camt053_001_02_message_for_a_local_and_an_iban_account_imports(accounts, network, eur):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.jp1, rail=rail, number=JP1_HKD, bank="Standard Chartered (HK)")
    home_account(network, eur, HOME_EUR_IBAN)
    BankAccount.objects.create(operator=network.sg1, rail=eur, number=SG1_EUR_IBAN, bank="Deutsche Bank Berlin")

    result = load(read("hk/hk_camt053_v02_two_accounts.xml"), "two.xml", fmt="camt053")

    assert [(s["account"], s["statement_ref"], s["new_entries"], s["balance_problem"]) for s in result.statements] == [
        (HOME_HKD, "STMT-012345678001-20261124/329", 6, None),  # <ElctrncSeqNb>
        (HOME_EUR_IBAN, "STMT-EUR-4455667700-20261124/214", 2, None),  # <LglSeqNb>
    ]
    assert result.statements[0]["pending_skipped"] == 1  # PDNG: counted when a statement books it
    hkd = {m.entry_ref: m for m in Movement.objects.filter(account__number=HOME_HKD)}
    ref = "STMT-012345678001-20261124/329"
    assert {r: (m.side, m.amount, m.direction, m.counterparty and m.counterparty.code) for r, m in hkd.items()} == {
        "CHATS26112400117": ("credit", Decimal("1480000.00"), "inbound", "SG1"),
        "CHATS26112400342": ("debit", Decimal("260000.00"), "outbound", "JP1"),
        "FPS26112400981": ("credit", Decimal("12500.00"), "inbound", None),  # a batch from two payers
        f"{ref}#4": ("credit", Decimal("35000.00"), "inbound", None),  # the credit and its reversal share
        f"{ref}#5": ("debit", Decimal("35000.00"), "outbound", None),  # a bank reference: keyed by position
        "FEE26112400019": ("debit", Decimal("180.00"), "outbound", None),
    }  # the PDNG (CHATS26112400460) and INFO (FX26112400008) entries are not movements
    receipt = hkd["CHATS26112400117"]
    assert (receipt.customer_reference, receipt.counterparty_account) == ("LCX-SETTLE-7790", SG1_HKD)
    assert receipt.details == "LCXI-20261124-0007\nSHARED BOOK SETTLEMENT CYCLE 2026-11-24"
    batch = hkd["FPS26112400981"]
    assert (batch.customer_reference, batch.counterparty_account) == ("RTL-IN-88120", "")
    assert batch.details == "RTL-IN-88121\nFPS TOP-UP RETAIL-IN"
    assert hkd[f"{ref}#5"].bank_reference == "CHATS26112400215"
    assert hkd["FEE26112400019"].occurred_at == datetime(2026, 11, 24, 16, 45, 12, tzinfo=HKT)  # <BookgDt><DtTm>
    eur_credit = Movement.objects.get(account__number=HOME_EUR_IBAN, side="credit")
    assert (eur_credit.amount, eur_credit.counterparty.code, eur_credit.counterparty_account) == (
        Decimal("25000.00"),
        "SG1",
        SG1_EUR_IBAN,
    )
    assert (eur_credit.customer_reference, eur_credit.booking_date.isoformat()) == ("SG1-EUR-20261124-01", "2026-11-24")
    assert eur_credit.asset.code == "EUR"
    assert not Break.objects.exists()

    again = load(read("hk/hk_camt053_v02_two_accounts.xml"), "two.xml")
    assert [s["result"] for s in again.statements] == ["duplicate", "duplicate"]
    assert Movement.objects.count() == 8


def test_camt053_entries_keep_their_position_and_the_reversal_mark():
    hkd, eur = parse_statement_file(read("hk/hk_camt053_v02_two_accounts.xml"))

    assert [(e.index, e.side, e.booked, e.reversal) for e in hkd.entries] == [
        (1, "credit", True, False),
        (2, "debit", True, False),
        (3, "credit", True, False),
        (4, "credit", True, False),
        (5, "debit", True, True),  # <RvslInd>true</RvslInd>
        (6, "credit", False, False),  # PDNG
        (8, "debit", True, False),  # 7 is INFO: no money moved
    ]
    assert hkd.entries[5].value_date.isoformat() == "2026-11-25"
    assert (hkd.opening, hkd.closing, eur.opening, eur.closing) == (
        Decimal("2238669.50"),
        Decimal("3470989.50"),
        Decimal("184250.00"),  # PRCD: the previous closing balance
        Decimal("209237.50"),
    )
    assert [e.counterparty_name for e in hkd.entries[:2]] == [
        "Lion City Exchange Pte Ltd",  # 001.02: <Dbtr><Nm>, not <Dbtr><Pty><Nm>
        "Sakura Digital Exchange KK",
    ]


def test_a_pending_camt053_entry_with_only_a_value_date_is_skipped_as_pending():
    data = read("hk/hk_camt053_v02_two_accounts.xml").replace(
        b"<Sts>PDNG</Sts>\n        <BookgDt><Dt>2026-11-24</Dt></BookgDt>", b"<Sts>PDNG</Sts>"
    )
    assert data != read("hk/hk_camt053_v02_two_accounts.xml")

    hkd, _ = parse_statement_file(data)

    pending = [e for e in hkd.entries if not e.booked]
    assert [(e.amount, e.value_date.isoformat()) for e in pending] == [(Decimal("90000.00"), "2026-11-25")]


def test_a_camt053_that_does_not_add_up_is_imported_with_a_balance_break(accounts, network):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_OPERATING_HKD, bank="Standard Chartered")

    result = load(read("hk/hk_camt053_does_not_add_up.xml"), "scb.xml")

    (statement,) = result.statements
    assert statement["balance_problem"] == (
        "statement 003447755101-20261124/88 does not add up: opening 4000.00 + booked entries -7500.00 = -3500.00, "
        "but the closing balance is -4200.00"  # PRCD credit, CLBD debit; the PDNG 300.00 is not counted
    )
    assert (statement["result"], statement["new_entries"], statement["pending_skipped"]) == ("created", 2, 1)
    record = BankStatement.objects.get()
    assert (record.opening_balance, record.closing_balance) == (Decimal("4000.00"), Decimal("-4200.00"))
    gap = Break.objects.get(kind="balance_difference")
    assert gap.amount == Decimal("700.00")
    assert "does not add up" in gap.description and HOME_OPERATING_HKD in gap.description
    assert set(gap.movements.all()) == set(Movement.objects.all())
    vendor = Movement.objects.get(side="debit")
    assert (vendor.amount, vendor.direction, vendor.counterparty, vendor.counterparty_account) == (
        Decimal("9500.00"),
        "outbound",
        None,
        "024-500123-001",  # <CdtrAcct>, not a registered account
    )
    assert vendor.customer_reference == "HK1-AP-2026-1187"
    top_up = Movement.objects.get(side="credit")
    assert (top_up.direction, top_up.counterparty_account) == ("internal", HOME_HKD)  # named in the entry's text


def test_a_camt054_notification_is_refused():
    with pytest.raises(StatementError, match=r"line 2: this is a camt\.054 debit/credit notification"):
        parse_statement_file(read("hk/hk_camt054.xml"))


def test_a_camt052_account_report_is_refused_naming_its_namespace(accounts):
    namespace = r"'urn:iso:std:iso:20022:tech:xsd:camt\.052\.001\.08'"
    with pytest.raises(
        StatementError, match=rf"line 2: not a camt\.053 statement: the document namespace is {namespace}"
    ):
        parse_statement_file(read("hk/hk_camt052.xml"))

    with pytest.raises(InvalidInput, match=r"^intraday\.xml: line 2: not a camt\.053 statement: .*camt\.052\.001\.08"):
        load(read("hk/hk_camt052.xml"), "intraday.xml")
    assert not BankStatement.objects.exists() and not Movement.objects.exists()


def test_xml_that_is_not_well_formed_is_refused_with_its_line():
    with pytest.raises(StatementError, match=r"line 3: not well-formed XML"):
        parse_statement_file(
            b'<?xml version="1.0"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">\n<Oops></Document>'
        )


@pytest.mark.para(13)
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
