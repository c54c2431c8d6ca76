"""The loss waterfall on a default (DESIGN section 9, circular paras 16, 17).

The worked default example (tests/reserves/test_default_and_claims.py: SG1
defaults, close-out BTC 560,000; A loses 60,000, B 80,000, C received their
BTC and has no claim: 140,000 in all), extended:
  (a) SG1's own assets home controls: its clients' 0.0625 BTC committed to
      the unsettled trades, prefunded at a custodian that also holds home's
      wallets: 35,000 HKD at the close-out mark;
  (b) an insurance recovery of 14,000 HKD recorded before the claims are paid;
  (c) the fund pays the rest: 140,000 - 35,000 - 14,000 = 91,000.
Per claim, (a) and (b) pay their pro-rata share (A 3/7, B 4/7):
  A: own assets 15,000, insurance 6,000, fund 39,000
  B: own assets 20,000, insurance 8,000, fund 52,000
Afterwards the estate pays 10,000 HKD: it refills the fund.
(Carried credits and escrow locks are further layer (a) sources that arrive
with DVP; the prefunded source stands for them here.)
"""

from decimal import Decimal

import pytest
from django.utils import timezone

from registry.models import Custodian, Wallet
from reserves.models import Claim, Default, ReserveEntry
from reserves.selectors import reserve_balance_hkd
from settlement.models import PrefundingBalance
from tests.reserves.conftest import approve
from tests.reserves.test_default_and_claims import declare, defaulted_setup  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def with_prefunded_assets(defaulted_setup):  # noqa: F811
    network = defaulted_setup
    custodian = Custodian.objects.create(name="Harbour Custody Ltd")
    rail = network.btc.rail
    Wallet.objects.create(operator=network.home, rail=rail, address="0x" + "1" * 40, custodian=custodian)
    Wallet.objects.create(
        operator=network.sg1, rail=rail, address="0x" + "2" * 40, custodian=custodian, designated=True
    )
    PrefundingBalance.objects.create(
        operator=network.sg1,
        account="s1",
        asset=network.btc,
        funded=Decimal("0.0625"),
        committed=Decimal("0.0625"),
        updated_at=timezone.now(),
    )
    return network


def record_recovery(maker, checker, default_id: int, **body):
    return approve(maker.post(f"/api/v1/ops/defaults/{default_id}/recoveries", body, format="json"), checker)


@pytest.mark.para(16, 17)
def test_the_waterfall_meets_the_loss_from_own_assets_then_insurance_then_the_fund(
    with_prefunded_assets, maker, checker
):
    declare(maker, checker)
    default = Default.objects.get()
    assert (default.total_loss_hkd, default.own_assets_hkd) == (Decimal("140000.00"), Decimal("35000.00"))

    record_recovery(maker, checker, default.id, source="insurance", amount_hkd="14000.00", reference="INS-1")
    balance_before = reserve_balance_hkd()
    for claim in Claim.objects.order_by("account_ref"):
        approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)

    claims = {c.account_ref: c for c in Claim.objects.all()}
    assert claims["pro-1"].paid_by == {"own_assets": "15000.00", "insurance": "6000.00", "reserve_fund": "39000.00"}
    assert claims["retail-in"].paid_by == {
        "own_assets": "20000.00",
        "insurance": "8000.00",
        "reserve_fund": "52000.00",
    }
    assert all(c.paid_hkd == c.loss_hkd and c.shortfall_hkd == 0 for c in claims.values())
    assert balance_before - reserve_balance_hkd() == Decimal("91000.00")  # the fund paid only layer (c)

    body = maker.get(f"/api/v1/ops/defaults/{default.id}").json()
    assert body["waterfall"] == [
        {"layer": "own_assets", "amount_hkd": "35000.00"},
        {"layer": "insurance", "amount_hkd": "14000.00"},
        {"layer": "reserve_fund", "amount_hkd": "91000.00"},
        {"layer": "refill", "amount_hkd": "0.00"},
    ]
    assert {s["source"] for s in body["steps"] if s["layer"] == "own_assets"} == {"prefunded:BTC"}
    claim_body = maker.get(f"/api/v1/ops/claims/{claims['pro-1'].id}").json()
    assert claim_body["paid_by"] == [
        {"layer": "own_assets", "amount_hkd": "15000.00"},
        {"layer": "insurance", "amount_hkd": "6000.00"},
        {"layer": "reserve_fund", "amount_hkd": "39000.00"},
    ]


@pytest.mark.para(17)
def test_a_later_recovery_refills_the_fund_under_four_eyes(with_prefunded_assets, maker, checker):
    declare(maker, checker)
    default = Default.objects.get()
    for claim in Claim.objects.order_by("account_ref"):
        approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)
    before = reserve_balance_hkd()

    asked = maker.post(
        f"/api/v1/ops/defaults/{default.id}/recoveries",
        {"source": "estate", "amount_hkd": "10000.00", "reference": "ESTATE-1"},
        format="json",
    )
    assert reserve_balance_hkd() == before  # nothing until a second person approves
    assert maker.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve").status_code == 403
    approve(asked, checker)

    assert reserve_balance_hkd() == before + Decimal("10000.00")
    assert ReserveEntry.objects.get(reference=f"recovery:{default.id}:ESTATE-1").kind == "contribution"
    waterfall = {
        w["layer"]: w["amount_hkd"] for w in maker.get("/api/v1/ops/defaults").json()["results"][0]["waterfall"]
    }
    assert waterfall["refill"] == "10000.00"
    assert waterfall["insurance"] == "0.00"
    # an insurance recovery after the claims were paid refills the fund too
    record_recovery(maker, checker, default.id, source="insurance", amount_hkd="500.00", reference="INS-LATE")
    assert reserve_balance_hkd() == before + Decimal("10500.00")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "lottery", "amount_hkd": "1.00", "reference": "X"}, "source"),
        ({"source": "estate", "amount_hkd": "-1", "reference": "X"}, "amount_hkd"),
        ({"source": "estate", "amount_hkd": 10, "reference": "X"}, "amount_hkd"),
        ({"source": "estate", "amount_hkd": "1.00"}, "reference"),
    ],
)
def test_a_bad_recovery_is_refused_naming_the_field(defaulted_setup, maker, checker, body, field):  # noqa: F811
    declare(maker, checker)

    response = maker.post(f"/api/v1/ops/defaults/{Default.objects.get().id}/recoveries", body, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_a_recovery_for_an_unknown_default_is_404(network, maker):
    response = maker.post(
        "/api/v1/ops/defaults/999/recoveries", {"source": "estate", "amount_hkd": "1", "reference": "X"}, format="json"
    )
    assert response.status_code == 404
    assert maker.get("/api/v1/ops/defaults/999").status_code == 404
