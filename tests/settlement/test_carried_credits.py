"""Nothing delivered is stranded (DESIGN section 7): what moved for a batch
that then failed becomes a credit of its counterparty, counted in exposure
at once, netted into its next batch and settled only with it.

Times are Hong Kong local; Monday 23 Nov 2026 is a business day before the
HKD cut-off (17:30). BTC is marked at 500,000 HKD."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from controls.models import Alert
from settlement.models import CarriedCredit, Leg, Obligation
from settlement.selectors.credits import counterparty_credits
from settlement.selectors.exposure import exposure_get
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.exposure import exposure_verify
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.conftest import api_client_for
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
HKT = ZoneInfo("Asia/Hong_Kong")
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)


def ingest(*items, at: datetime = MONDAY - timedelta(hours=1)) -> None:
    stamped = [{**item, "executed_at": at.isoformat()} for item in items]
    assert not trades_ingest(items=stamped, actor="engine", now=at + timedelta(seconds=1)).rejected


def run(at: datetime):
    return cycle_run(kind="intraday", as_of=at, actor="test").batches.get()


def confirm(leg: Leg, at: datetime) -> None:
    leg_confirm(leg_id=leg.id, evidence={"test": True}, actor="test", as_of=at)


def legs_of(batch) -> dict[str, tuple[str, Decimal, str]]:
    return {leg.asset.code: (leg.direction, leg.amount, leg.status) for leg in batch.legs.select_related("asset")}


def test_a_delivery_into_a_batch_that_failed_is_carried_counted_at_once_and_netted_into_the_next(network):
    ingest(trade(quantity="1"))  # home buys 1 BTC from SG1 for 500,000 HKD
    first = run(MONDAY)
    confirm(first.legs.get(asset__code="BTC"), MONDAY + timedelta(minutes=10))  # SG1 delivered
    hkd = first.legs.get(asset__code="HKD")
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("500000.00")  # nothing settles before the batch

    deadlines_check(as_of=hkd.deadline + timedelta(minutes=1), actor="test")  # home's HKD was late

    credit = CarriedCredit.objects.get()
    assert (credit.direction, credit.amount, credit.status, credit.source_leg.asset.code) == (
        "inbound",
        Decimal(1),
        "open",
        "BTC",
    )
    assert counterparty_credits(counterparty_id=network.sg1.id) == {"BTC": Decimal(1)}
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("0.00")  # home holds the BTC already
    assert exposure_verify(as_of=MONDAY).ok
    assert not Alert.objects.filter(kind="failed_batch_with_movements").exists()  # nobody has to find it

    tuesday = MONDAY + timedelta(days=1)
    second = run(tuesday)

    assert legs_of(second) == {"HKD": ("outbound", Decimal(500000), "instructed")}  # BTC settles by netting
    assert [c.id for c in second.credits_applied.all()] == [credit.id]
    confirm(second.legs.get(), tuesday + timedelta(minutes=30))

    second.refresh_from_db()
    credit.refresh_from_db()
    assert (second.status, credit.status, credit.applied_batch_id) == ("settled", "settled", second.id)
    assert set(Obligation.objects.values_list("status", flat=True)) == {"settled"}
    assert counterparty_credits(counterparty_id=network.sg1.id) == {}
    assert exposure_verify(as_of=tuesday).ok


def test_a_credit_larger_than_what_is_owed_comes_back_as_an_outbound_leg(network):
    ingest(trade(quantity="1"))
    first = run(MONDAY)
    confirm(first.legs.get(asset__code="BTC"), MONDAY + timedelta(minutes=10))
    deadlines_check(as_of=first.legs.get(asset__code="HKD").deadline + timedelta(minutes=1), actor="test")
    ingest(trade(buy=("SG1", "s"), sell=("HK1", "pro-1"), quantity="0.5"), at=MONDAY + timedelta(hours=20))

    second = run(MONDAY + timedelta(days=1))

    # owed: in 1 BTC (again) - out 0.5 BTC - carried 1 BTC = home returns 0.5 BTC, under DVP
    assert legs_of(second)["BTC"] == ("outbound", Decimal("0.5"), "instructed")
    assert legs_of(second)["HKD"] == ("outbound", Decimal(250000), "instructed")


def test_a_batch_that_fails_again_opens_its_credits_again(network):
    ingest(trade(quantity="1"), trade(base="ETH", price="20000", quantity="10"))
    first = run(MONDAY)
    confirm(first.legs.get(asset__code="BTC"), MONDAY + timedelta(minutes=10))
    deadlines_check(as_of=MONDAY + timedelta(minutes=61), actor="test")  # SG1's ETH never came
    assert CarriedCredit.objects.get().status == "open"

    second = run(MONDAY + timedelta(hours=2))
    assert legs_of(second)["ETH"] == ("inbound", Decimal(10), "instructed") and "BTC" not in legs_of(second)
    assert CarriedCredit.objects.get().status == "applied"
    deadlines_check(as_of=MONDAY + timedelta(hours=3, minutes=1), actor="test")

    credit = CarriedCredit.objects.get()
    assert (credit.status, credit.applied_batch) == ("open", None)
    assert exposure_get(as_of=MONDAY).total_hkd == Decimal("200000.00")  # only the ETH still at risk


def test_credits_are_visible_in_the_api_to_their_counterparty_only(network):
    ingest(trade(quantity="1"))
    first = run(MONDAY)
    confirm(first.legs.get(asset__code="BTC"), MONDAY + timedelta(minutes=10))
    deadlines_check(as_of=first.legs.get(asset__code="HKD").deadline + timedelta(minutes=1), actor="test")

    own = api_client_for(network.sg1, scope="operator").get("/api/v1/credits?status=open").json()["results"]
    other = api_client_for(network.jp1, scope="operator").get("/api/v1/credits").json()["results"]

    assert [(c["counterparty"], c["asset"], c["direction"], c["amount"], c["source_batch"]) for c in own] == [
        ("SG1", "BTC", "inbound", "1.00000000", first.id)
    ]
    assert other == []
