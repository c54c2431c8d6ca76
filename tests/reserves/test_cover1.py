"""Cover-1, live (circular paras 16, 17; PFMI principle 4): the loss home's
clients would suffer if each counterparty defaulted now, at stressed marks,
against the fund.

Worked example. BTC marked 500,000 HKD with a 10 % haircut: stressed 550,000.
  client A (pro-1) bought 1 BTC from SG1 at 500,000: owed 1 BTC = 550,000;
      home retained A's 500,000 HKD -> loss 50,000.00
  client B (retail-in) sold 2 BTC to SG1 at 600,000: owed 1,200,000 HKD;
      home retained B's 2 BTC = 1,100,000 -> loss 100,000.00
  SG1's loss if it defaulted now: 150,000.00; JP1 owes nothing: 0.00.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controls.models import Alert
from registry.models import Asset, Mark, Operator
from reserves.models import Claim
from reserves.reports import reserve_report
from reserves.services.defaults import default_close_out
from reserves.services.losses import losses_if_default, stressed_marks
from reserves.services.monitoring import cover1_check
from settlement.services.trades import trades_ingest
from tests import factories
from tests.conftest import staff_client
from tests.factories import trade

pytestmark = pytest.mark.django_db


def worked_example(network) -> None:
    network.btc.haircut = Decimal("0.10")
    network.btc.save(update_fields=["haircut"])
    trades_ingest(
        items=[
            trade(trade_id="A1", buy=("HK1", "pro-1"), sell=("SG1", "s1"), quantity="1", price="500000"),
            trade(trade_id="B1", buy=("SG1", "s2"), sell=("HK1", "retail-in"), quantity="2", price="600000"),
        ],
        actor="engine",
    )


@pytest.mark.para(16, 17)
def test_loss_if_default_is_owed_minus_retained_per_client_at_stressed_marks(network):
    worked_example(network)

    losses = {r.operator: r for r in losses_if_default(as_of=timezone.now())}

    assert losses["SG1"].loss_hkd == Decimal("150000.00")
    assert losses["SG1"].clients == {"pro-1": Decimal("50000.00"), "retail-in": Decimal("100000.00")}
    assert losses["JP1"].loss_hkd == Decimal("0.00")


@pytest.mark.para(17)
def test_get_reserve_shows_cover1_and_the_ratio(network):
    worked_example(network)

    body = staff_client("viewer", "ops_viewer").get("/api/v1/ops/reserve").json()

    assert body["loss_if_default"][0] == {
        "operator": "SG1",
        "loss_hkd": "150000.00",
        "clients": 2,
        "unvalued_assets": [],
    }
    assert body["largest_loss_if_default_hkd"] == "150000.00"
    assert body["cover1_ratio"] == "800.0000"  # 120,000,000 available / 150,000
    assert body["cover1_covered"] is True


@pytest.mark.para(17)
def test_the_dashboard_shows_cover1(network, client):
    worked_example(network)
    from django.contrib.auth.models import User

    client.force_login(User.objects.create_superuser("boss", "b@example.com", "x"))

    page = client.get("/ops/").content.decode()

    assert 'id="cover1"' in page
    assert "150,000.00" in page or "150000.00" in page


@pytest.mark.para(17)
def test_an_alert_fires_once_when_the_fund_no_longer_covers_the_largest_loss(db):
    network = factories.build_network(cap="100000", reserve="100000")
    worked_example(network)
    now = timezone.now()

    alert = cover1_check(now=now, actor="celery")

    assert alert is not None and alert.kind == "cover1_shortfall"
    assert "does not cover the 150000.00 HKD loss if SG1 defaulted now" in alert.message
    assert cover1_check(now=now + timedelta(minutes=1), actor="celery") is None  # once per breach
    assert Alert.objects.filter(kind="cover1_shortfall").count() == 1
    report = reserve_report(as_of=now)
    assert report["cover1_covered"] is False
    # the sizing report recommends a fund that covers the largest loss
    assert report["recommended_hkd"] >= Decimal("150000.00")
    assert any(line.startswith("cover-1: if SG1 defaulted now") for line in report["method"])


def test_a_covered_fund_raises_no_alert(network):
    worked_example(network)
    assert cover1_check(now=timezone.now(), actor="celery") is None


# --- property: the live figure is what a default at the same marks assesses -------------

PAIRS = [("BTC", "HKD", 8), ("ETH", "USDC", 18), ("USDC", "HKD", 6), ("BTC", "USDC", 8)]
CLIENTS = ["pro-1", "retail-in", "retail-out"]
_ids = iter(range(10**9))


@st.composite
def trades_with_sg1(draw):
    base, quote, scale = draw(st.sampled_from(PAIRS))
    places = draw(st.integers(min_value=0, max_value=min(scale, 6)))
    quantity = Decimal(draw(st.integers(min_value=1, max_value=10**6))).scaleb(-places)
    price = Decimal(draw(st.integers(min_value=1, max_value=10**6))).scaleb(-draw(st.integers(0, 2)))
    home = ("HK1", draw(st.sampled_from(CLIENTS)))
    other = (draw(st.sampled_from(["SG1", "JP1"])), "c")
    buy, sell = (home, other) if draw(st.booleans()) else (other, home)
    return trade(
        trade_id=f"L{next(_ids)}",
        base=base,
        quote=quote,
        price=format(price, "f"),
        quantity=format(quantity, "f"),
        buy=buy,
        sell=sell,
    )


HAIRCUTS = st.decimals(min_value=0, max_value=1, places=4)


@pytest.mark.para(16, 17)
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    items=st.lists(trades_with_sg1(), min_size=1, max_size=10),
    haircuts=st.tuples(HAIRCUTS, HAIRCUTS, HAIRCUTS),
    defaulter=st.sampled_from(["SG1", "JP1"]),
)
def test_loss_if_default_equals_the_claims_a_default_at_the_same_marks_assesses(network, items, haircuts, defaulter):
    with transaction.atomic():
        for code, haircut in zip(("BTC", "ETH", "USDC"), haircuts, strict=True):
            Asset.objects.filter(code=code).update(haircut=haircut)
        trades_ingest(items=items, actor="property")
        now = timezone.now()
        live = next(r for r in losses_if_default(as_of=now) if r.operator == defaulter)

        # a default at the same (stressed) marks
        marks = stressed_marks(as_of=now)
        for asset in Asset.objects.exclude(code="HKD"):
            Mark.objects.create(asset=asset, price_hkd=marks[asset.id], as_of=now, source="stress", received_at=now)
        default = default_close_out(
            operator_code=defaulter,
            reason="property",
            as_of=now,
            declared_by="a",
            approved_by="b",
            approval=None,
            now=now,
        )

        claims = {c.account_ref: c.loss_hkd for c in Claim.objects.filter(default=default)}
        assert live.loss_hkd == default.total_loss_hkd
        assert live.clients == claims
        assert Operator.objects.get(code=defaulter).status == "defaulted"
        transaction.set_rollback(True)
