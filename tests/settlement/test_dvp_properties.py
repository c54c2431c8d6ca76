"""DVP conservation (hypothesis): over random cycles, deliveries, fails,
carried credits and settlements, for every counterparty and asset, what
home received minus what it paid equals the net of the settled obligations
plus the open credits; and nothing settles twice.

Crypto pairs only, so any minute is a settlement time (calendars are
proven in test_cycles); the eth rail's window is 60 minutes."""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db.models import Count, F
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from settlement.models import Batch, BatchItem, CarriedCredit, Leg, Obligation
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.exposure import exposure_verify
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")
_ids = iter(range(10**9))
_hours = iter(range(10**6))


@st.composite
def trade_items(draw):
    base, quote = draw(st.sampled_from([("ETH", "USDC"), ("BTC", "USDC"), ("BTC", "ETH")]))
    counterparty = draw(st.sampled_from(["SG1", "JP1"]))
    home, other = ("HK1", "pro-1"), (counterparty, "c")
    home_buys = draw(st.booleans())
    return trade(
        trade_id=f"P{next(_ids)}",
        base=base,
        quote=quote,
        price=str(draw(st.integers(1, 50))),
        quantity=str(draw(st.integers(1, 5))),
        buy=home if home_buys else other,
        sell=other if home_buys else home,
    )


def _signed(rows) -> dict[tuple[str, str], Decimal]:
    sums: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for code, asset, direction, amount in rows:
        sums[(code, asset)] += amount if direction == "inbound" else -amount
    return {key: value for key, value in sums.items() if value}


def _moved() -> dict:
    legs = Leg.objects.filter(status="confirmed")
    return _signed(legs.values_list("batch__counterparty__code", "asset__code", "direction", "amount"))


def _settled_plus_credits() -> dict:
    settled = Obligation.objects.filter(status="settled").values_list(
        "counterparty__code", "asset__code", "direction", "amount"
    )
    credits = CarriedCredit.objects.filter(status__in=CarriedCredit.UNSETTLED).values_list(
        "counterparty__code", "asset__code", "direction", "amount"
    )
    return _signed([*settled, *credits])


@pytest.mark.para(13)
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    rounds=st.lists(st.lists(trade_items(), max_size=4), min_size=1, max_size=4),
    deliveries=st.lists(st.booleans(), min_size=1, max_size=40),
)
def test_what_moved_is_what_settled_plus_what_is_carried_and_nothing_settles_twice(network, rounds, deliveries):
    # the examples share one database: earlier credits net into later batches, so how
    # many legs there are depends on the past; decisions are drawn up front and cycled
    decide = iter(deliveries * 1000)
    for items in rounds:
        at = datetime(2026, 11, 23, 9, 0, tzinfo=HKT) + timedelta(hours=3 * next(_hours))
        if items:
            executed = (at - timedelta(seconds=30)).isoformat()
            trades_ingest(items=[{**i, "executed_at": executed} for i in items], actor="property", now=at)
        cycle = cycle_run(kind="intraday", as_of=at, actor="property")
        # each leg, in id order, is delivered or not; home's released legs too
        for step in (1, 2):
            instructed = Leg.objects.filter(batch__cycle=cycle, status="instructed").order_by("id")
            for leg in instructed:
                if next(decide):
                    leg_confirm(leg_id=leg.id, evidence={"p": 1}, actor="property", as_of=at + timedelta(minutes=step))
        deadlines_check(as_of=at + timedelta(hours=2, minutes=30), actor="property")
        assert not Batch.objects.filter(cycle=cycle, status="open").exists()

        assert _moved() == _settled_plus_credits()
        # an obligation settles with the one batch it is in; the batches it
        # left unsettled (the history) are failed ones, never that batch
        assert not Obligation.objects.filter(status="settled").exclude(batch__status="settled").exists()
        assert not BatchItem.objects.exclude(batch__status="failed").exists()
        assert not BatchItem.objects.filter(obligation__batch=F("batch")).exists()
        # what the indexes read as unsettled (no batch, or an open one) is the status's unsettled
        assert not Obligation.objects.filter(status="in_batch").exclude(batch__status="open").exists()
        assert set(Obligation.objects.unsettled().values_list("id", flat=True)) == set(
            Obligation.objects.filter(status__in=Obligation.UNSETTLED).values_list("id", flat=True)
        )
        recycled = BatchItem.objects.values("obligation").annotate(n=Count("id"))
        assert all(Obligation.objects.get(pk=r["obligation"]).fail_count <= r["n"] for r in recycled)
        assert exposure_verify(as_of=at).ok
    for status in ("open", "applied", "settled"):
        if CarriedCredit.objects.filter(status=status).exists():
            event(f"a credit {status}")
