"""Netting properties (hypothesis): for any obligations, per counterparty and
asset, the legs carry exactly what is owed to home minus what home owes; and
a settled batch leaves none of its obligations open."""

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.models import Leg, Obligation
from settlement.selectors.exposure import exposure_get
from settlement.services.cycles import cycle_run
from settlement.services.exposure import exposure_verify
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
HKT = ZoneInfo("Asia/Hong_Kong")
_ids = iter(range(10**9))
_minutes = iter(range(10**6))


@st.composite
def trade_items(draw):
    base, quote = draw(st.sampled_from([("BTC", "HKD"), ("ETH", "USDC"), ("BTC", "USDC"), ("USDC", "HKD")]))
    quantity = Decimal(draw(st.integers(1, 10**7))).scaleb(-draw(st.integers(0, 4)))
    price = Decimal(draw(st.integers(1, 10**6))).scaleb(-draw(st.integers(0, 2)))
    counterparty = draw(st.sampled_from(["SG1", "JP1"]))
    home_buys = draw(st.booleans())
    home, other = ("HK1", "pro-1"), (counterparty, "c")
    return trade(
        trade_id=f"N{next(_ids)}",
        base=base,
        quote=quote,
        price=format(price, "f"),
        quantity=format(quantity, "f"),
        buy=home if home_buys else other,
        sell=other if home_buys else home,
    )


@pytest.mark.para(13)
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(items=st.lists(trade_items(), min_size=1, max_size=15))
def test_netting_conserves_every_asset_and_settlement_leaves_nothing_open(network, items):
    # Each example gets its own business-day minute; earlier examples' batches are settled already.
    at = datetime(2026, 11, 23, 9, 0, tzinfo=HKT) + timedelta(minutes=next(_minutes) % 400)
    executed = (at - timedelta(seconds=30)).isoformat()
    trades_ingest(items=[{**item, "executed_at": executed} for item in items], actor="property", now=at)
    owed = defaultdict(Decimal)
    for o in Obligation.objects.filter(status="open").select_related("counterparty", "asset"):
        owed[(o.counterparty.code, o.asset.code)] += o.amount if o.direction == "inbound" else -o.amount

    cycle = cycle_run(kind="intraday", as_of=at, actor="property")

    legs = defaultdict(Decimal)
    for leg in Leg.objects.filter(batch__cycle=cycle).select_related("batch__counterparty", "asset"):
        legs[(leg.batch.counterparty.code, leg.asset.code)] += leg.amount if leg.direction == "inbound" else -leg.amount
    assert {k: v for k, v in owed.items() if v} == dict(legs)

    for direction in ("inbound", "outbound"):
        for leg in Leg.objects.filter(batch__cycle=cycle, direction=direction):
            leg_confirm(leg_id=leg.id, evidence={"property": True}, actor="property", as_of=at)
    assert not Obligation.objects.filter(batch__cycle=cycle).exclude(status="settled").exists()
    assert not Obligation.objects.exclude(status="settled").exists()
    assert exposure_get(as_of=at).total_hkd == Decimal("0.00")
    assert exposure_verify(as_of=at).ok
