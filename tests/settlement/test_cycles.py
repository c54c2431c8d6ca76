"""Netting cycles and DVP (DESIGN section 7), with real calendar dates.

Times are Hong Kong local unless marked Z. The test network's HKD rail is
CHATS-like: HK General Holidays, closed Saturday and Sunday, cut-off 17:30.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from controls.models import Alert
from registry.models import Rail
from settlement.models import Batch, BatchItem, Cycle, Leg, Obligation
from settlement.selectors.exposure import exposure_get
from settlement.services import cycles
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.exposure import exposure_verify
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")


def hkt(*args) -> datetime:
    return datetime(*args, tzinfo=HKT)


def ingest(*items, at: datetime):
    """Trades executed at ``at``, reported a moment later."""
    stamped = [{**item, "executed_at": at.isoformat()} for item in items]
    result = trades_ingest(items=stamped, actor="engine", now=at + timedelta(seconds=1))
    assert not result.rejected, result.rejected
    return result


def run(at: datetime, kind: str = "intraday") -> Cycle:
    return cycle_run(kind=kind, as_of=at, actor="test")


def legs_of(batch: Batch) -> dict[str, tuple[str, Decimal, str]]:
    return {leg.asset.code: (leg.direction, leg.amount, leg.status) for leg in batch.legs.select_related("asset")}


def confirm(leg: Leg, at: datetime) -> Leg:
    return leg_confirm(leg_id=leg.id, evidence={"test": True}, actor="test", as_of=at)


MONDAY = hkt(2026, 11, 23, 10, 0)  # a business day, before the HKD cut-off


def test_a_cycle_nets_each_counterparty_per_asset(network):
    ingest(
        trade(quantity="2", price="500000"),  # home buys 2 BTC from SG1 for 1,000,000 HKD
        trade(buy=("SG1", "s"), sell=("HK1", "pro-1"), quantity="0.5", price="520000"),  # sells 0.5 BTC for 260,000
        trade(sell=("JP1", "j"), quantity="1", price="500000"),
        at=MONDAY - timedelta(hours=1),
    )

    cycle = run(MONDAY)

    batches = {b.counterparty.code: b for b in cycle.batches.all()}
    assert legs_of(batches["SG1"]) == {
        "BTC": ("inbound", Decimal("1.5"), "instructed"),
        "HKD": ("outbound", Decimal("740000"), "pending"),  # receive-first: waits for the BTC
    }
    assert legs_of(batches["JP1"]) == {
        "BTC": ("inbound", Decimal(1), "instructed"),
        "HKD": ("outbound", Decimal(500000), "pending"),
    }
    assert Obligation.objects.filter(status="in_batch").count() == 6
    assert (cycle.status, cycle.obligations_taken, cycle.obligations_deferred) == ("done", 6, 0)


def test_receive_first_releases_outbound_only_after_every_inbound_leg_and_settles_as_one(network):
    ingest(trade(quantity="2"), trade(base="ETH", price="20000", quantity="10"), at=MONDAY - timedelta(hours=1))
    batch = run(MONDAY).batches.get()
    btc, eth, hkd = (batch.legs.get(asset__code=code) for code in ("BTC", "ETH", "HKD"))

    confirm(btc, MONDAY + timedelta(minutes=5))
    assert Leg.objects.get(pk=hkd.pk).status == "pending"  # ETH not yet in
    confirm(eth, MONDAY + timedelta(minutes=6))
    assert Leg.objects.get(pk=hkd.pk).status == "instructed"
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("1200000.00")  # nothing settles before the whole batch

    confirm(hkd, MONDAY + timedelta(minutes=20))

    batch.refresh_from_db()
    assert batch.status == "settled"
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("0.00")
    assert exposure_verify(as_of=MONDAY).ok


def test_escrow_instructs_both_sides_together(network):
    network.sg1.dvp_policy = "escrow"
    network.sg1.save()
    ingest(trade(quantity="1"), at=MONDAY - timedelta(hours=1))

    batch = run(MONDAY).batches.get()

    assert batch.dvp_policy == "escrow"
    assert {status for _, _, status in legs_of(batch).values()} == {"instructed"}


def test_an_all_zero_batch_is_settled_by_netting_at_once(network):
    ingest(
        trade(quantity="1", price="500000"),
        trade(buy=("SG1", "s"), sell=("HK1", "pro-1"), quantity="1", price="500000"),
        at=MONDAY - timedelta(hours=1),
    )

    batch = run(MONDAY).batches.get()

    assert (batch.status, batch.settled_by_netting, batch.legs.count()) == ("settled", True, 0)
    assert Obligation.objects.filter(status="settled").count() == 4
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("0.00")


def test_the_same_kind_and_as_of_twice_makes_one_cycle(network):
    ingest(trade(), at=MONDAY - timedelta(hours=1))

    first, second = run(MONDAY), run(MONDAY)

    assert first.pk == second.pk
    assert Batch.objects.count() == 1 and Leg.objects.count() == 2


def test_a_cycle_takes_only_trades_executed_by_its_as_of(network):
    ingest(trade(trade_id="EARLY"), at=MONDAY - timedelta(minutes=1))
    ingest(trade(trade_id="LATE"), at=MONDAY + timedelta(minutes=1))

    run(MONDAY)

    assert set(Obligation.objects.filter(status="in_batch").values_list("trade__trade_id", flat=True)) == {"EARLY"}


def test_an_hkd_trade_after_the_christmas_eve_cut_off_waits_for_monday(network):
    ingest(trade(trade_id="XMAS", base="BTC", quote="HKD"), at=hkt(2025, 12, 24, 17, 45))

    skipped = [
        run(moment)
        for moment in (
            hkt(2025, 12, 24, 18, 0),
            hkt(2025, 12, 25, 10, 0),
            hkt(2025, 12, 26, 10, 0),
            hkt(2025, 12, 27, 10, 0),
            hkt(2025, 12, 28, 10, 0),
        )
    ]
    monday = run(hkt(2025, 12, 29, 10, 0))

    assert [c.batches.count() for c in skipped] == [0, 0, 0, 0, 0]
    assert [c.obligations_deferred for c in skipped] == [2, 2, 2, 2, 2]
    assert monday.obligations_taken == 2
    hkd_leg = Leg.objects.get(asset__code="HKD")
    assert hkd_leg.value_date.isoformat() == "2025-12-29"
    assert hkd_leg.deadline == hkt(2025, 12, 29, 17, 30)  # the CHATS cut-off that day


def test_a_crypto_only_trade_is_taken_on_a_sunday_and_on_christmas(network):
    ingest(trade(trade_id="SUN", base="BTC", quote="USDC", price="64000"), at=hkt(2025, 12, 28, 9, 0))
    ingest(trade(trade_id="XMAS", base="ETH", quote="USDC", price="2500"), at=hkt(2025, 12, 25, 9, 0))

    assert run(hkt(2025, 12, 25, 10, 0)).obligations_taken == 2
    assert run(hkt(2025, 12, 28, 10, 0)).obligations_taken == 2


def test_a_usd_leg_waits_over_a_federal_reserve_holiday(network):
    from tests.factories import AssetFactory, RailFactory, set_mark

    usd_rail = RailFactory(
        code="usd-chats",
        kind="bank",
        chain_id=None,
        confirmations=None,
        currency="USD",
        calendars=["HK", "FIN:XFED"],
        timezone="Asia/Hong_Kong",
        weekend=[6, 7],
    )
    set_mark(AssetFactory(code="USD", kind="fiat", scale=2, rail=usd_rail), "7.80")
    thanksgiving = hkt(2026, 11, 26, 10, 0)  # a Hong Kong business day, a Fed holiday
    ingest(trade(trade_id="USD1", base="BTC", quote="USD", price="64000"), at=thanksgiving - timedelta(hours=1))
    ingest(trade(trade_id="HKD1", base="BTC", quote="HKD", price="500000"), at=thanksgiving - timedelta(hours=1))

    thursday = run(thanksgiving)
    friday = run(hkt(2026, 11, 27, 10, 0))

    assert set(Obligation.objects.filter(batch__cycle=thursday).values_list("trade__trade_id", flat=True)) == {"HKD1"}
    assert set(Obligation.objects.filter(batch__cycle=friday).values_list("trade__trade_id", flat=True)) == {"USD1"}


def test_a_halted_rail_defers_new_work(network):
    Rail.objects.filter(code="eth").update(status="halted", status_reason="node down")
    ingest(trade(), at=MONDAY - timedelta(hours=1))

    assert run(MONDAY).obligations_taken == 0


def test_a_missed_deadline_fails_the_batch_and_the_next_cycle_takes_the_obligations_again(network):
    ingest(trade(quantity="1"), at=MONDAY - timedelta(hours=1))
    first = run(MONDAY).batches.get()
    btc = first.legs.get(asset__code="BTC")
    assert btc.deadline == MONDAY + timedelta(minutes=60)  # the eth rail's window

    assert deadlines_check(as_of=MONDAY + timedelta(minutes=59), actor="test").failed == []
    result = deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")

    first.refresh_from_db()
    assert result.failed == [first.id]
    assert first.status == "failed"
    assert legs_of(first) == {
        "BTC": ("inbound", Decimal(1), "failed"),
        "HKD": ("outbound", Decimal(500000), "cancelled"),
    }
    assert set(Obligation.objects.values_list("status", "fail_count")) == {("open", 1)}
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("500000.00")  # still owed

    second = run(MONDAY + timedelta(hours=2)).batches.get()
    assert second.obligations.count() == 2
    # history kept: the batch each obligation left unsettled, beside the one it is in now
    assert set(BatchItem.objects.values_list("batch_id", "obligation_id")) == {
        (first.id, o.id) for o in Obligation.objects.all()
    }
    assert exposure_verify(as_of=MONDAY).ok


def test_a_degraded_rail_pauses_the_deadline_and_the_batch_says_why(network):
    ingest(trade(quantity="1"), at=MONDAY - timedelta(hours=1))
    batch = run(MONDAY).batches.get()
    Rail.objects.filter(code="eth").update(status="degraded", status_reason="no new block for 10 minutes")

    result = deadlines_check(as_of=MONDAY + timedelta(hours=3), actor="test")

    batch.refresh_from_db()
    assert (result.failed, result.waiting) == ([], [batch.id])
    assert batch.status == "open"
    assert "rail eth is degraded: deadline paused" in batch.waiting_reason

    Rail.objects.filter(code="eth").update(status="up")
    assert deadlines_check(as_of=MONDAY + timedelta(hours=3), actor="test").failed == [batch.id]


def test_repeated_fails_flag_the_counterparty_for_default_review_but_do_not_default_it(network, settings):
    settings.DEFAULT_REVIEW_FAILS = 2
    ingest(trade(quantity="1"), at=MONDAY - timedelta(hours=1))
    for n in range(2):
        start = MONDAY + timedelta(hours=2 * n)
        run(start)
        deadlines_check(as_of=start + timedelta(minutes=61), actor="test")

    alert = Alert.objects.get(kind="default_review")
    network.sg1.refresh_from_db()
    assert alert.operator_code == "SG1"
    assert network.sg1.status == "active"


def test_a_cycle_interrupted_half_way_leaves_nothing_and_a_rerun_settles_each_obligation_once(network, monkeypatch):
    ingest(trade(sell=("SG1", "a")), trade(sell=("JP1", "b")), at=MONDAY - timedelta(hours=1))
    real = cycles._batch_create
    calls = []

    def dies_on_the_second_batch(**kwargs):
        calls.append(kwargs["batch"].counterparty.code)
        if len(calls) == 2:
            raise RuntimeError("worker killed")
        return real(**kwargs)

    monkeypatch.setattr(cycles, "_batch_create", dies_on_the_second_batch)
    with pytest.raises(RuntimeError):
        run(MONDAY)
    assert (Cycle.objects.count(), Batch.objects.count(), Obligation.objects.filter(status="open").count()) == (0, 0, 4)

    monkeypatch.setattr(cycles, "_batch_create", real)
    cycle = run(MONDAY)
    for leg in Leg.objects.filter(batch__cycle=cycle, direction="inbound"):
        confirm(leg, MONDAY + timedelta(minutes=5))
    for leg in Leg.objects.filter(batch__cycle=cycle, direction="outbound"):
        confirm(leg, MONDAY + timedelta(minutes=10))
        confirm(leg, MONDAY + timedelta(minutes=11))  # a duplicate confirmation changes nothing

    assert Obligation.objects.filter(status="settled").count() == 4
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("0.00")
    assert exposure_verify(as_of=MONDAY).ok


def test_a_pending_leg_cannot_be_confirmed(network):
    ingest(trade(), at=MONDAY - timedelta(hours=1))
    hkd = run(MONDAY).batches.get().legs.get(asset__code="HKD")

    from controls.exceptions import Conflict

    with pytest.raises(Conflict, match="pending"):
        confirm(hkd, MONDAY)


def test_cold_to_hot_lead_time_extends_an_outbound_leg(network):
    from registry.models import Wallet, WalletBalance

    hot = Wallet.objects.create(
        operator=network.home, rail_id=network.btc.rail_id, address="0x" + "1" * 40, temperature="hot"
    )
    Wallet.objects.create(
        operator=network.home,
        rail_id=network.btc.rail_id,
        address="0x" + "2" * 40,
        temperature="cold",
        lead_time_minutes=120,
    )
    WalletBalance.objects.create(wallet=hot, asset=network.btc, amount=Decimal("0.5"), as_of=timezone.now())
    ingest(trade(buy=("SG1", "s"), sell=("HK1", "pro-1"), quantity="2"), at=MONDAY - timedelta(hours=1))

    btc = run(MONDAY).batches.get().legs.get(asset__code="BTC")

    assert (btc.direction, btc.lead_time_minutes) == ("outbound", 120)
    assert btc.deadline == MONDAY + timedelta(minutes=60 + 120)


def test_an_outbound_leg_is_written_to_the_custodian_outbox_when_it_is_instructed(network):
    from custody.models import Instruction

    ingest(trade(quantity="1"), at=MONDAY - timedelta(hours=1))
    batch = run(MONDAY).batches.get()
    assert not Instruction.objects.exists()  # receive-first: nothing to send yet

    confirm(batch.legs.get(asset__code="BTC"), MONDAY + timedelta(minutes=5))

    instruction = Instruction.objects.get()
    assert (instruction.leg.asset.code, instruction.amount, instruction.reference) == (
        "HKD",
        Decimal("500000"),
        f"SOB-{batch.id}-{instruction.leg_id}",
    )
