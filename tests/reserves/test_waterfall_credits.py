"""A carried credit is the defaulter's own asset that home holds (DESIGN
sections 7 and 9, circular paras 13, 16, 17): layer (a) of the waterfall
takes it before the fund pays anything.

Monday 23 Nov 2026, Hong Kong: home's client pro-1 buys 1 BTC from SG1 for
500,000 HKD. SG1 delivers the BTC, home's HKD leg is late, the batch fails:
home holds SG1's 1 BTC as a carried credit. SG1 then defaults; at the
close-out mark of 560,000 the client's loss is 560,000 - 500,000 = 60,000
HKD, all of it met from the carried BTC (worth 560,000): the fund pays 0."""

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from registry.models import Mark
from reserves.models import Claim, Default
from reserves.selectors import reserve_balance_hkd
from settlement.models import CarriedCredit
from settlement.services.cycles import cycle_run
from settlement.services.deadlines import deadlines_check
from settlement.services.legs import leg_confirm
from settlement.services.trades import trades_ingest
from tests.factories import trade
from tests.reserves.conftest import approve

pytestmark = [pytest.mark.django_db, pytest.mark.para(16), pytest.mark.para(17)]
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


def test_the_carried_credit_meets_the_loss_before_the_fund(network, maker, checker):
    executed = MONDAY - timedelta(hours=1)
    item = {
        **trade(trade_id="A1", quantity="1", buy=("HK1", "pro-1"), sell=("SG1", "s1")),
        "executed_at": executed.isoformat(),
    }
    assert not trades_ingest(items=[item], actor="engine", now=executed).rejected
    batch = cycle_run(kind="intraday", as_of=MONDAY, actor="test").batches.get()
    btc = batch.legs.get(asset__code="BTC")
    leg_confirm(leg_id=btc.id, evidence={"test": True}, actor="test", as_of=MONDAY + timedelta(minutes=10))
    deadlines_check(as_of=batch.legs.get(asset__code="HKD").deadline + timedelta(minutes=1), actor="test")
    assert CarriedCredit.objects.get().amount == Decimal(1)
    as_of = MONDAY + timedelta(hours=8)
    Mark.objects.create(
        asset=network.btc, price_hkd=Decimal("560000"), as_of=as_of, source="close-out", received_at=as_of
    )
    fund_before = reserve_balance_hkd()

    approve(
        maker.post(
            "/api/v1/ops/defaults",
            {"operator": "SG1", "reason": "insolvency filing", "as_of": as_of.isoformat()},
            format="json",
        ),
        checker,
    )
    default = Default.objects.get()
    claim = Claim.objects.get()
    approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)

    claim.refresh_from_db()
    assert (default.total_loss_hkd, default.own_assets_hkd) == (Decimal("60000.00"), Decimal("60000.00"))
    steps = maker.get(f"/api/v1/ops/defaults/{default.id}").json()["steps"]
    assert [(s["layer"], s["source"], s["amount_hkd"]) for s in steps if s["layer"] == "own_assets"] == [
        ("own_assets", "carried_credit:BTC", "60000.00")
    ]
    assert claim.paid_hkd == Decimal("60000.00") and claim.paid_by["own_assets"] == "60000.00"
    assert reserve_balance_hkd() == fund_before  # the fund paid nothing
