"""Custodian balance reports against the books (opening + final movements)."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from controls.exceptions import Conflict, InvalidInput
from custody.models import BalanceReportLine, Break
from custody.services.balances import balance_report_record
from custody.services.statements import statement_import
from registry.models import BankAccount, Rail, WalletBalance

from .chain import TETH, TUSD, in_process_web3, setup_chain
from .test_statements import HOME_HKD, read

pytestmark = pytest.mark.django_db


@pytest.fixture
def chain(network):
    chain = setup_chain(in_process_web3(), network)
    chain.mint(chain.sg1, 1000 * TUSD)
    chain.mint(chain.home, 100 * TUSD)
    return chain


def report(reference: str, lines: list[dict], *, as_of=None, now=None):
    now = now or timezone.now()
    return balance_report_record(
        source="Harbour Custody Ltd", reference=reference, as_of=as_of or now, lines=lines, actor="test", now=now
    )


def chain_time(chain):
    """The latest block's time: a busy test chain runs a little ahead of the clock."""
    return datetime.fromtimestamp(chain.w3.eth.get_block("latest")["timestamp"], tz=UTC)


def tusd_line(chain, amount: str) -> dict:
    return {"rail": "tchain", "wallet": chain.home, "asset": "TUSD", "amount": amount}


@pytest.mark.para(12)
def test_the_first_report_is_the_opening_and_later_ones_are_compared_with_the_books(chain):
    chain.poll()
    at = chain_time(chain)
    opened, _ = report("R1", [tusd_line(chain, "100")], as_of=at, now=max(at, timezone.now()))
    assert opened.lines.get().outcome == "baseline"

    chain.transfer(chain.sg1, chain.home, 250 * TUSD)
    chain.transfer(chain.home, chain.sg1, 30 * TUSD)
    chain.mine(2)
    chain.poll()
    later = chain_time(chain)

    match, _ = report("R2", [tusd_line(chain, "320")], as_of=later, now=max(later, timezone.now()))
    short, _ = report("R3", [tusd_line(chain, "319.5")], as_of=later, now=max(later, timezone.now()))

    assert (match.lines.get().outcome, match.lines.get().expected) == ("match", Decimal(320))
    line = short.lines.get()
    assert (line.outcome, line.difference) == ("difference", Decimal("-0.5"))
    brk = Break.objects.get(kind="balance_difference")
    assert (brk.amount, brk.balance_line_id, brk.asset.code) == (Decimal("0.5"), line.id, "TUSD")
    assert WalletBalance.objects.get(wallet__address=chain.home.lower()).amount == Decimal("319.5")


def test_gas_paid_by_home_is_in_the_books_of_the_native_coin(chain):
    chain.poll()
    start = chain.w3.eth.get_balance(chain.home)
    at = chain_time(chain)
    teth = {"rail": "tchain", "wallet": chain.home, "asset": "TETH"}
    report("R1", [{**teth, "amount": str(Decimal(start).scaleb(-18))}], as_of=at, now=max(at, timezone.now()))
    chain.send(chain.home, chain.sg1, TETH // 4)
    chain.mine(2)
    chain.poll()
    now = chain_time(chain)
    held = Decimal(chain.w3.eth.get_balance(chain.home)).scaleb(-18)

    result, _ = report("R2", [{**teth, "amount": str(held)}], as_of=now, now=max(now, timezone.now()))

    assert result.lines.get().outcome == "match"


def test_the_same_report_again_is_a_duplicate_and_other_content_is_a_conflict(chain):
    now = timezone.now()
    first, created = report("R1", [tusd_line(chain, "100")], as_of=now, now=now)
    again, created_again = report("R1", [tusd_line(chain, "100.000")], as_of=now, now=now)

    assert (created, created_again, first.pk) == (True, False, again.pk)
    with pytest.raises(Conflict):
        report("R1", [tusd_line(chain, "101")], as_of=now, now=now)
    assert BalanceReportLine.objects.count() == 1


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            {"rail": "tchain", "wallet": "0x" + "9" * 40, "asset": "TUSD", "amount": "1"},
            "is not a wallet on rail tchain",
        ),
        ({"rail": "tchain", "wallet": "SG1", "asset": "TUSD", "amount": "1"}, "is not a wallet"),
        ({"rail": "tchain", "asset": "TUSD", "amount": "1"}, "exactly one of wallet or account"),
        ({"rail": "nope", "wallet": "0x", "asset": "TUSD", "amount": "1"}, "no rail 'nope'"),
        ({"rail": "tchain", "wallet": "HOME", "asset": "HKD", "amount": "1"}, "no asset 'HKD' on rail tchain"),
        ({"rail": "tchain", "wallet": "HOME", "asset": "TUSD", "amount": "1.0000001"}, "at most 6 allowed"),
        ({"rail": "tchain", "wallet": "HOME", "asset": "TUSD", "amount": 5}, "is a JSON number"),
        ({"rail": "tchain", "wallet": "HOME", "asset": "TUSD", "amount": "-1"}, "must not be negative"),
    ],
)
def test_bad_lines_are_refused_and_nothing_is_recorded(chain, line, message):
    if line.get("wallet") == "HOME":
        line = {**line, "wallet": chain.home}
    with pytest.raises(InvalidInput, match=message):
        report("BAD", [tusd_line(chain, "1"), line])
    assert not BalanceReportLine.objects.exists()


def test_a_counterparty_wallet_is_not_ours_to_report(chain):
    with pytest.raises(InvalidInput, match="home's own wallets and accounts"):
        report("R", [{"rail": "tchain", "wallet": chain.sg1, "asset": "TUSD", "amount": "1"}])


@pytest.mark.para(12)
def test_a_bank_account_balance_is_compared_with_the_statement_entries(network):
    rail = Rail.objects.get(code="hkd-chats")
    BankAccount.objects.create(operator=network.home, rail=rail, number=HOME_HKD, bank="HSBC")
    opening = datetime(2026, 11, 19, 18, 0, tzinfo=UTC)
    line = {"rail": "hkd-chats", "account": "012345678001", "asset": "HKD", "amount": "1000000.00"}
    report("B1", [line], as_of=opening)
    friday = read("hk/hk_camt053.xml").replace(b"2026-11-23", b"2026-11-20")  # booked a few days ago
    statement_import(data=friday, filename="s", format=None, actor="test", now=timezone.now(), reconcile=False)

    closing, _ = report("B2", [{**line, "amount": "1738749.50"}], as_of=datetime(2026, 11, 20, 18, 0, tzinfo=UTC))

    assert closing.lines.get().outcome == "match"
