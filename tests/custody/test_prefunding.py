"""Custody's side of prefunding (circular para 10): attestations from
custodian balance reports and from the chain watcher's reads of designated
wallets, cover breaks, and the reconciliation of the engine's open orders
with the open holds."""

import json
from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.models import Alert
from custody.models import BalanceReportLine, Break
from custody.services.balances import balance_report_record
from custody.services.prefunding import cover_check, open_orders_reconcile
from registry.models import Wallet
from settlement.models import CustodianAttestation, OpenOrdersSnapshot, PrefundingCover, PrefundingHold
from settlement.services.prefunding import hold_release, open_orders_receive
from tests.conftest import api_client_for, staff_client
from tests.settlement.prefunding.conftest import prefunding_network

from .chain import TUSD, in_process_web3, setup_chain

pytestmark = [pytest.mark.django_db, pytest.mark.para(10)]


@pytest.fixture
def pf(db):
    return prefunding_network()


@pytest.fixture
def engine(pf):
    return api_client_for(pf.network.home, scope="engine")


def report(pf, reference, lines, *, as_of=None):
    now = timezone.now()
    return balance_report_record(
        source="Lion Custody Pte Ltd", reference=reference, as_of=as_of or now, lines=lines, actor="test", now=now
    )


def sg1_usdc(pf, amount):
    return {"rail": "eth", "wallet": pf.wallets["SG1"].address, "asset": "USDC", "amount": amount}


def cover(operator="SG1", asset="USDC") -> PrefundingCover:
    return PrefundingCover.objects.get(operator__code=operator, asset__code=asset)


# --- balance reports -----------------------------------------------------------------------------


def test_a_report_on_another_operators_designated_wallet_is_an_attestation(pf):
    pf.fund("SG1", "sg-1", "USDC", "100")

    recorded, created = report(pf, "R1", [sg1_usdc(pf, "150")])

    assert created and recorded.lines.get().outcome == BalanceReportLine.Outcome.ATTESTED
    attestation = CustodianAttestation.objects.filter(operator__code="SG1", asset__code="USDC").order_by("-id").first()
    assert (attestation.amount, attestation.source) == (Decimal(150), "balance_report")
    assert (cover().attested, cover().state) == (Decimal(150), "covered")


def test_a_report_on_an_undesignated_wallet_of_another_operator_is_refused(pf):
    stranger = Wallet.objects.create(operator=pf.network.sg1, rail=pf.wallets["SG1"].rail, address="0x" + "ab" * 20)
    with pytest.raises(InvalidInput, match="designated custodian wallets"):
        report(pf, "R1", [{"rail": "eth", "wallet": stranger.address, "asset": "USDC", "amount": "1"}])


def test_a_home_designated_account_is_compared_with_the_books_and_attests(pf):
    recorded, _ = report(
        pf, "R1", [{"rail": "hkd-chats", "account": pf.accounts["HK1"].number, "asset": "HKD", "amount": "500"}]
    )

    assert recorded.lines.get().outcome == BalanceReportLine.Outcome.BASELINE
    assert cover("HK1", "HKD").attested == Decimal(500)


def test_a_breach_is_one_break_and_one_alert_until_the_cover_recovers(pf):
    pf.fund("SG1", "sg-1", "USDC", "100")

    report(pf, "R1", [sg1_usdc(pf, "80")])
    report(pf, "R2", [sg1_usdc(pf, "70")])  # still short: the same spell

    brk = Break.objects.get(kind="cover_breach")
    assert (brk.amount, brk.counterparty.code, brk.asset.code, brk.status) == (Decimal(30), "SG1", "USDC", "open")
    assert Alert.objects.filter(kind="prefunding_cover_breach").count() == 1
    assert cover().state == "breach"

    report(pf, "R3", [sg1_usdc(pf, "100")])

    brk.refresh_from_db()
    assert brk.status == "resolved" and "covered again" in brk.resolution
    assert cover().state == "covered"

    report(pf, "R4", [sg1_usdc(pf, "99")])  # a new spell: a new break, a new alert
    assert Break.objects.filter(kind="cover_breach", status="open").count() == 1
    assert Alert.objects.filter(kind="prefunding_cover_breach").count() == 2


def test_the_scheduled_check_turns_an_old_attestation_into_a_break(pf, settings):
    pf.fund("SG1", "sg-1", "USDC", "100")
    settings.PREFUNDING_ATTESTATION_MAX_AGE_SECONDS = {**settings.PREFUNDING_ATTESTATION_MAX_AGE_SECONDS, "evm": 60}

    result = cover_check(as_of=timezone.now() + timedelta(seconds=61))

    assert result["states"].get("stale", 0) >= 1
    brk = Break.objects.get(kind="attestation_stale", counterparty__code="SG1", asset__code="USDC")
    assert brk.amount == Decimal(100)
    assert Alert.objects.filter(kind="prefunding_attestation_stale", operator_code="SG1").exists()
    assert cover().state == "stale"

    cover_check(as_of=timezone.now() + timedelta(seconds=62))  # no change: nothing new
    assert Break.objects.filter(kind="attestation_stale", counterparty__code="SG1", asset__code="USDC").count() == 1


def test_unsettled_outbound_not_set_aside_by_holds_must_be_covered_too(pf):
    from settlement.services.trades import trades_ingest
    from tests.factories import trade

    pf.fund("SG1", "sg-1", "USDC", "100")
    report(pf, "R1", [sg1_usdc(pf, "120")])
    pf.hold("O1", "90", operator="SG1", account="sg-1", asset="USDC")
    # another SG1 client buys BTC from home for 60 USDC without a hold: SG1 owes 60 USDC
    item = trade(base="BTC", quote="USDC", price="60", quantity="1", buy=("SG1", "sg-2"), sell=("HK1", "pro-1"))
    trades_ingest(items=[item], actor="engine")

    cover_check(as_of=timezone.now())

    c = cover()
    assert (c.funded, c.held, c.unsettled_outbound) == (Decimal(100), Decimal(90), Decimal(60))
    # 120 attested covers funded (100) but not held + committed + outbound (150)
    assert c.state == "breach" and c.headroom == Decimal(-30)


def test_the_prefunding_cover_command_prints_the_cover(pf):
    out = StringIO()
    call_command("prefunding_cover", stdout=out)
    assert "SG1" in out.getvalue() and "covered" in out.getvalue()


# --- the chain watcher ---------------------------------------------------------------------------


def test_the_watcher_attests_designated_wallets_at_the_head(network, settings):
    chain = setup_chain(in_process_web3(), network)
    Wallet.objects.filter(address=chain.sg1.lower()).update(designated=True)
    chain.mint(chain.sg1, 1000 * TUSD)

    first = chain.poll()
    again = chain.poll()  # unchanged and just attested: nothing new
    chain.transfer(chain.sg1, chain.home, 250 * TUSD)
    changed = chain.poll()

    assert (first.attested, again.attested, changed.attested) == (2, 0, 2)  # TUSD and the native TETH
    tusd = CustodianAttestation.objects.filter(operator__code="SG1", asset__code="TUSD", source="chain").order_by("id")
    assert [a.amount for a in tusd] == [Decimal(1000), Decimal(750)]
    assert tusd.last().reference == f"tchain block {changed.head}"
    assert PrefundingCover.objects.get(operator__code="SG1", asset__code="TUSD").attested == Decimal(750)
    assert not CustodianAttestation.objects.filter(operator__code="HK1").exists()  # home's wallet is not designated


# --- open orders ---------------------------------------------------------------------------------


def test_holds_without_orders_and_orders_without_holds_become_breaks(pf, engine, django_capture_on_commit_callbacks):
    pf.fund("SG1", "sg-1", "USDC", "100")
    for order in ("A", "B", "C"):
        pf.hold(order, "10", operator="SG1", account="sg-1", asset="USDC")
    hold_release(operator="SG1", order_id="C", actor="test", now=timezone.now())
    as_of = timezone.now()
    pf.hold("LATE", "10", operator="SG1", account="sg-1", asset="USDC", now=as_of + timedelta(seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        response = engine.post(
            "/api/v1/prefunding/open-orders",
            {"as_of": as_of.isoformat(), "order_ids": ["A", {"operator": "SG1", "order_id": "C"}, "GHOST"]},
            format="json",
        )

    assert response.status_code == 202
    assert (response.json()["status"], response.json()["orders"]) == ("received", 3)
    body = engine.get(f"/api/v1/prefunding/open-orders/{response.json()['snapshot_id']}").json()
    assert body["status"] == "reconciled"  # queued when the list was committed
    assert (body["result"]["holds_without_order"], body["result"]["orders_without_hold"]) == (1, 2)
    breaks = {
        (b.kind, b.key.split(":")[-1])
        for b in Break.objects.filter(kind__in=["hold_without_order", "order_without_hold"])
    }
    hold_b = PrefundingHold.objects.get(order_id="B").id
    assert breaks == {("hold_without_order", str(hold_b)), ("order_without_hold", "C"), ("order_without_hold", "GHOST")}
    ghost = Break.objects.get(key="order_without_hold:*:GHOST")
    assert ghost.asset is None and ghost.amount == 0


def test_a_newer_list_without_the_difference_closes_its_break(pf):
    pf.fund("SG1", "sg-1", "USDC", "100")
    pf.hold("B", "10", operator="SG1", account="sg-1", asset="USDC")
    first = open_orders_receive(as_of=timezone.now().isoformat(), order_ids=[], actor="engine", now=timezone.now())
    open_orders_reconcile(snapshot_id=first.id, now=timezone.now())
    assert Break.objects.get(kind="hold_without_order").status == "open"

    later = timezone.now() + timedelta(seconds=5)
    second = open_orders_receive(as_of=later.isoformat(), order_ids=["B"], actor="engine", now=later)
    result = open_orders_reconcile(snapshot_id=second.id, now=later)
    replay = open_orders_reconcile(snapshot_id=second.id, now=later)

    assert result.closed and Break.objects.get(kind="hold_without_order").status == "resolved"
    assert replay.already and replay.closed == result.closed


def test_the_command_reconciles_what_waits_and_a_file(pf, tmp_path):
    pf.fund("SG1", "sg-1", "USDC", "100")
    pf.hold("B", "10", operator="SG1", account="sg-1", asset="USDC")
    open_orders_receive(as_of=timezone.now().isoformat(), order_ids=["B"], actor="engine", now=timezone.now())
    path = tmp_path / "open.json"
    path.write_text(json.dumps({"as_of": timezone.now().isoformat(), "order_ids": ["B", "X"]}))

    out = StringIO()
    call_command("reconcile_open_orders", stdout=out)
    call_command("reconcile_open_orders", "--file", str(path), stdout=out)

    text = out.getvalue()
    assert "0 hold(s) without an order, 0 order(s) without a hold" in text
    assert "1 order(s) without a hold" in text
    assert not OpenOrdersSnapshot.objects.filter(status="received").exists()


def test_the_open_orders_list_is_checked(pf, engine):
    bad = [
        {"as_of": "2026-01-01T00:00:00Z", "order_ids": "A"},
        {"as_of": "soon", "order_ids": []},
        {"as_of": "2999-01-01T00:00:00Z", "order_ids": []},
        {"as_of": "2026-01-01T00:00:00Z", "order_ids": [{"order_id": "A"}]},
        {"as_of": "2026-01-01T00:00:00Z"},
    ]
    for body in bad:
        assert engine.post("/api/v1/prefunding/open-orders", body, format="json").status_code == 400
    ops = staff_client("olga", "ops_operator")
    assert ops.post(
        "/api/v1/prefunding/open-orders", {"as_of": "2026-01-01T00:00:00Z", "order_ids": []}, format="json"
    ).status_code in (401, 403)
