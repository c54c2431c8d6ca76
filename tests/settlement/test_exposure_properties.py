"""Property: for any sequence of trades, in any batching, with repeats, the
running exposure equals a full recompute from the obligations."""

from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from settlement.selectors.exposure import exposure_get, exposure_recompute
from settlement.services.exposure import exposure_verify
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db

COUNTERPARTIES = ["SG1", "JP1"]
PAIRS = [("BTC", "HKD", 8), ("ETH", "USDC", 18), ("USDC", "HKD", 6), ("BTC", "USDC", 8)]
_ids = iter(range(10**9))


# NUMERIC is exact at any size: amounts up to 18 decimals, sums of many.
MAX_UNITS, MAX_PLACES, MAX_PRICE = 10**6, 18, 10**7


@st.composite
def trade_items(draw):
    base, quote, scale = draw(st.sampled_from(PAIRS))
    places = draw(st.integers(min_value=0, max_value=min(scale, MAX_PLACES)))
    units = draw(st.integers(min_value=1, max_value=MAX_UNITS))
    quantity = Decimal(units).scaleb(-places)
    price = Decimal(draw(st.integers(min_value=1, max_value=MAX_PRICE))).scaleb(-draw(st.integers(0, 4)))
    counterparty = draw(st.sampled_from(COUNTERPARTIES))
    home_side = draw(st.sampled_from(["buy", "sell", "both"]))
    home = ("HK1", "pro-1")
    other = (counterparty, "client")
    buy, sell = {"buy": (home, other), "sell": (other, home), "both": (home, ("HK1", "retail-in"))}[home_side]
    return trade(
        trade_id=f"P{next(_ids)}",
        base=base,
        quote=quote,
        price=format(price, "f"),
        quantity=format(quantity, "f"),
        buy=buy,
        sell=sell,
    )


@pytest.mark.para(12, 15)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    batches=st.lists(st.lists(trade_items(), min_size=1, max_size=12), min_size=1, max_size=4),
    repeat=st.booleans(),
)
def test_incremental_exposure_equals_recompute(network, batches, repeat):
    for batch in batches:
        trades_ingest(items=batch + (batch[:2] if repeat else []), actor="property")

    now = timezone.now()
    assert exposure_get(as_of=now).as_json() == exposure_recompute(as_of=now).as_json()
    assert exposure_get(as_of=now, method="net").as_json() == exposure_recompute(as_of=now, method="net").as_json()
    assert exposure_verify(as_of=now).ok
