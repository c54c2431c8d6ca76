"""Trades consume holds (buy.order_id / sell.order_id in POST /trades), a
trade is never refused for prefunding, and settlement clears what the holds
committed (DESIGN section 6a)."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from controls.models import Alert
from settlement.models import (
    ComplianceException,
    HoldEvent,
    Leg,
    PrefundingBalance,
    PrefundingHold,
    PrefundingSettlement,
)
from settlement.selectors.prefunding import prefunding_recompute
from settlement.services.cycles import cycle_run
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(10)]

MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def crossing(
    *,
    trade_id="T1",
    quantity="0.1",
    price="50000",
    buy_order="B1",
    sell_order="S1",
    buy=("HK1", "pro-1"),
    sell=("SG1", "sg-1"),
):
    """HK1's client buys BTC for USDC from SG1's client (crypto only: any day)."""
    item = trade(trade_id=trade_id, base="BTC", quote="USDC", price=price, quantity=quantity, buy=buy, sell=sell)
    if buy_order:
        item["buy"]["order_id"] = buy_order
    if sell_order:
        item["sell"]["order_id"] = sell_order
    return item


def ingest(*items, at=None):
    at = at or timezone.now()
    stamped = [{**item, "executed_at": (at - timedelta(seconds=1)).isoformat()} for item in items]
    result = trades_ingest(items=stamped, actor="engine", now=at)
    assert not result.rejected, result.rejected
    return result


def bal(operator, account, asset) -> tuple[Decimal, Decimal, Decimal]:
    b = PrefundingBalance.objects.filter(operator__code=operator, account=account, asset__code=asset).first()
    return (b.funded, b.held, b.committed) if b else (Decimal(0), Decimal(0), Decimal(0))


@pytest.fixture
def funded(pf):
    pf.fund("HK1", "pro-1", "USDC", "10000")
    pf.fund("SG1", "sg-1", "BTC", "1")
    pf.hold("B1", "10000", operator="HK1", account="pro-1", asset="USDC")
    pf.hold("S1", "1", operator="SG1", account="sg-1", asset="BTC")
    return pf


def test_a_trade_moves_both_holds_from_held_to_committed(funded):
    result = ingest(crossing(quantity="0.1"))  # 5,000 USDC for 0.1 BTC

    assert result.prefunding.as_json() == {"holds_consumed": 2, "exceptions": []}
    assert bal("HK1", "pro-1", "USDC") == (Decimal(10000), Decimal(5000), Decimal(5000))
    assert bal("SG1", "sg-1", "BTC") == (Decimal(1), Decimal("0.9"), Decimal("0.1"))
    holds = {h.order_id: h for h in PrefundingHold.objects.all()}
    assert (holds["B1"].status, holds["B1"].remaining, holds["B1"].consumed) == (
        "partially_consumed",
        Decimal(5000),
        Decimal(5000),
    )
    assert HoldEvent.objects.filter(kind="consumed").count() == 2
    assert not ComplianceException.objects.exists()
    assert prefunding_recompute() == []


def test_partial_fills_consume_again_until_nothing_remains(funded):
    ingest(crossing(trade_id="T1", quantity="0.4"), crossing(trade_id="T2", quantity="0.6"))

    hold = PrefundingHold.objects.get(order_id="S1")
    assert (hold.status, hold.remaining, hold.consumed) == ("consumed", Decimal(0), Decimal(1))
    assert bal("SG1", "sg-1", "BTC") == (Decimal(1), Decimal(0), Decimal(1))
    assert list(hold.events.filter(kind="consumed").values_list("amount", flat=True)) == [
        Decimal("0.4"),
        Decimal("0.6"),
    ]


def test_a_replayed_trade_consumes_once(funded):
    item, at = crossing(quantity="0.1"), timezone.now()
    ingest(item, at=at)
    again = trades_ingest(items=[{**item, "executed_at": (at - timedelta(seconds=1)).isoformat()}], actor="engine")

    assert again.duplicates == 1 and again.prefunding.consumed == 0
    assert bal("SG1", "sg-1", "BTC") == (Decimal(1), Decimal("0.9"), Decimal("0.1"))
    assert HoldEvent.objects.filter(kind="consumed").count() == 2


def test_a_trade_is_never_refused_for_prefunding_but_every_gap_is_flagged(funded, pf):
    pf.fund("SG1", "sg-2", "BTC", "1")
    pf.hold("S2", "0.25", operator="SG1", account="sg-2", asset="BTC")
    pf.hold("S3", "0.1", operator="SG1", account="sg-2", asset="BTC")
    from settlement.services.prefunding import hold_release

    hold_release(operator="SG1", order_id="S3", actor="test", now=timezone.now())
    items = [
        crossing(trade_id="NOORDER", sell=("SG1", "sg-1"), sell_order=None, buy_order=None),
        crossing(trade_id="UNKNOWN", sell_order="nope", buy_order=None),
        crossing(trade_id="SHORT", sell=("SG1", "sg-2"), sell_order="S2", quantity="0.3", buy_order=None),
        crossing(trade_id="RELEASED", sell=("SG1", "sg-2"), sell_order="S3", buy_order=None),
        crossing(trade_id="WRONGACCT", sell=("SG1", "sg-9"), sell_order="S1", buy_order=None),
    ]

    result = ingest(*items)

    assert result.accepted == 5
    flagged = {(e.trade.trade_id, e.account_ref): e.code for e in ComplianceException.objects.select_related("trade")}
    assert flagged == {
        # home is under prefunding too: its buy sides name no order
        **{(t, "pro-1"): "prefunding_missing" for t in ("NOORDER", "UNKNOWN", "SHORT", "RELEASED", "WRONGACCT")},
        ("NOORDER", "sg-1"): "prefunding_missing",
        ("UNKNOWN", "sg-1"): "prefunding_missing",
        ("SHORT", "sg-2"): "prefunding_shortfall",
        ("RELEASED", "sg-2"): "prefunding_missing",
        ("WRONGACCT", "sg-9"): "prefunding_missing",
    }
    assert PrefundingHold.objects.get(order_id="S2").status == "consumed"  # what it had, it gave
    alert = Alert.objects.get(kind="prefunding_exception")
    assert alert.details["counts"] == {"prefunding_missing": 9, "prefunding_shortfall": 1}
    assert len(result.prefunding.exceptions) == 10
    assert prefunding_recompute() == []


def test_an_expired_hold_is_expired_by_the_trade_that_finds_it_and_consumes_nothing(funded):
    PrefundingHold.objects.filter(order_id="S1").update(expires_at=timezone.now() - timedelta(seconds=1))

    ingest(crossing(quantity="0.1"))

    hold = PrefundingHold.objects.get(order_id="S1")
    assert (hold.status, hold.remaining) == ("expired", Decimal(0))
    assert bal("SG1", "sg-1", "BTC") == (Decimal(1), Decimal(0), Decimal(0))
    assert ComplianceException.objects.get(account_ref="sg-1").code == "prefunding_missing"
    assert prefunding_recompute() == []


def test_operators_not_under_prefunding_are_not_flagged_without_an_order(funded):
    # JP1 has no designated custodian account; home names its order
    ingest(crossing(sell=("JP1", "jp-1"), sell_order=None))

    assert not ComplianceException.objects.exists()


def test_a_trade_between_two_clients_of_one_operator_settles_on_its_books_at_once(funded, pf):
    pf.fund("HK1", "retail-in", "BTC", "1")
    pf.hold("S9", "1", operator="HK1", account="retail-in", asset="BTC")

    ingest(crossing(sell=("HK1", "retail-in"), sell_order="S9", quantity="0.2"))  # 10,000 USDC

    assert bal("HK1", "pro-1", "USDC") == (Decimal(0), Decimal(0), Decimal(0))
    assert bal("HK1", "pro-1", "BTC") == (Decimal("0.2"), Decimal(0), Decimal(0))
    assert bal("HK1", "retail-in", "BTC") == (Decimal("0.8"), Decimal("0.8"), Decimal(0))
    assert bal("HK1", "retail-in", "USDC") == (Decimal(10000), Decimal(0), Decimal(0))
    assert PrefundingSettlement.objects.filter(obligation__isnull=True).count() == 4
    assert prefunding_recompute() == []


@pytest.mark.para(13)
def test_settlement_clears_committed_and_moves_funded_from_payer_to_receiver(funded):
    ingest(crossing(quantity="0.1"), at=MONDAY - timedelta(minutes=5))
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    btc = batch.legs.get(asset__code="BTC")
    leg_confirm(leg_id=btc.id, evidence={"test": True}, actor="test", as_of=MONDAY + timedelta(minutes=1))
    assert bal("HK1", "pro-1", "USDC")[2] == Decimal(5000)  # nothing settles before the whole batch
    usdc = Leg.objects.get(batch=batch, asset__code="USDC")

    leg_confirm(leg_id=usdc.id, evidence={"test": True}, actor="test", as_of=MONDAY + timedelta(minutes=2))

    batch.refresh_from_db()
    assert batch.status == "settled"
    # home's client paid 5,000 USDC out of what its hold committed, and received 0.1 BTC
    assert bal("HK1", "pro-1", "USDC") == (Decimal(5000), Decimal(5000), Decimal(0))
    assert bal("HK1", "pro-1", "BTC") == (Decimal("0.1"), Decimal(0), Decimal(0))
    # SG1's client delivered 0.1 BTC and received 5,000 USDC
    assert bal("SG1", "sg-1", "BTC") == (Decimal("0.9"), Decimal("0.9"), Decimal(0))
    assert bal("SG1", "sg-1", "USDC") == (Decimal(5000), Decimal(0), Decimal(0))
    assert PrefundingSettlement.objects.filter(obligation__isnull=False).count() == 4
    assert prefunding_recompute() == []


def test_the_order_ids_are_kept_on_the_trade_and_part_of_its_content(funded):
    item = crossing(quantity="0.1")
    ingest(item)
    other = {**item, "sell": {**item["sell"], "order_id": "S-other"}}
    result = trades_ingest(items=[{**other, "executed_at": item.get("executed_at")}], actor="engine")

    from settlement.models import Trade

    stored = Trade.objects.get(trade_id="T1")
    assert (stored.buy_order_id, stored.sell_order_id) == ("B1", "S1")
    assert [r.code for r in result.rejected] == ["conflict"]


@pytest.mark.para(13)
def test_a_payer_without_a_hold_pays_out_of_its_available_as_far_as_it_goes(pf):
    pf.fund("HK1", "pro-1", "USDC", "3000")
    pf.fund("HK1", "pro-1", "BTC", "0.5")
    pf.hold("KEEP", "0.5", operator="HK1", account="pro-1", asset="BTC")  # held: not the payer's to give
    pf.fund("SG1", "sg-1", "BTC", "1")
    pf.hold("S1", "1", operator="SG1", account="sg-1", asset="BTC")
    ingest(crossing(quantity="0.1", buy_order=None), at=MONDAY - timedelta(minutes=5))  # 5,000 USDC, no hold
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    for code, minute in (("BTC", 1), ("USDC", 2)):
        leg = Leg.objects.get(batch=batch, asset__code=code)
        leg_confirm(leg_id=leg.id, evidence={"test": True}, actor="test", as_of=MONDAY + timedelta(minutes=minute))

    assert ComplianceException.objects.get(account_ref="pro-1").code == "prefunding_missing"
    # it paid what it had available (3,000 of 5,000); the rest was never prefunded
    assert bal("HK1", "pro-1", "USDC") == (Decimal(0), Decimal(0), Decimal(0))
    assert bal("HK1", "pro-1", "BTC") == (Decimal("0.6"), Decimal("0.5"), Decimal(0))
    debit = PrefundingSettlement.objects.get(kind="debit", balance__account="pro-1")
    assert (debit.amount, debit.committed) == (Decimal(3000), Decimal(0))
    assert prefunding_recompute() == []
