"""Close-out at replacement cost (DESIGN section 9, circular para 16): the
price operations actually paid to buy a client's asset back replaces the
close-out mark in the claim, with the evidence, under four eyes.

From the worked default example: client A (pro-1) bought 1 BTC from SG1 at
500,000; close-out mark 560,000, so A lost 60,000. Operations bought the BTC
back at 575,000: A's loss is 75,000 and the default's 155,000."""

from decimal import Decimal

import pytest

from reserves.models import Claim, Default
from tests.reserves.conftest import approve
from tests.reserves.test_default_and_claims import declare, defaulted_setup  # noqa: F401

pytestmark = pytest.mark.django_db


def buy_in(maker, claim: Claim, **body):
    return maker.post(f"/api/v1/ops/claims/{claim.id}/buy-ins", body, format="json")


@pytest.mark.para(16)
def test_a_buy_in_price_replaces_the_mark_in_the_claim_and_says_so(defaulted_setup, maker, checker):  # noqa: F811
    declare(maker, checker)
    claim = Claim.objects.get(account_ref="pro-1")

    asked = buy_in(maker, claim, trade_id="A1", price_hkd="575000", evidence="OTC confirm BX-77, 24 Nov 2026")
    claim.refresh_from_db()
    assert claim.loss_hkd == Decimal("60000.00")  # nothing changes before a second person approves
    approve(asked, checker)

    claim.refresh_from_db()
    assert claim.loss_hkd == Decimal("75000.00")
    assert Default.objects.get().total_loss_hkd == Decimal("155000.00")
    line = maker.get(f"/api/v1/ops/claims/{claim.id}").json()["lines"][0]
    assert line["owed"]["value_hkd"] == "575000.00"
    assert line["loss_hkd"] == "75000.00"
    assert line["owed_valued_at"] == "buy_in"
    assert line["buy_in"] == {
        "price_hkd": "575000",
        "close_out_mark_hkd": "560000",
        "evidence": "OTC confirm BX-77, 24 Nov 2026",
    }
    paid = approve(maker.post(f"/api/v1/ops/claims/{claim.id}/approve"), checker)
    assert paid["result"]["paid_hkd"] == "75000.00"


@pytest.mark.parametrize(
    ("body", "status", "field_or_code"),
    [
        ({"trade_id": "A1", "price_hkd": "575000"}, 400, "evidence"),
        ({"trade_id": "NOPE", "price_hkd": "575000", "evidence": "x"}, 400, "trade_id"),
        ({"trade_id": "A1", "price_hkd": 575000, "evidence": "x"}, 400, "price_hkd"),
        ({"trade_id": "A1", "price_hkd": "400000", "evidence": "x"}, 409, "no_loss_after_buy_in"),
    ],
)
def test_a_bad_buy_in_is_refused(defaulted_setup, maker, checker, body, status, field_or_code):  # noqa: F811
    declare(maker, checker)

    response = buy_in(maker, Claim.objects.get(account_ref="pro-1"), **body)

    assert response.status_code == status, response.content
    assert field_or_code in (response.json().get("field"), response.json()["code"])


def test_no_buy_in_once_the_claims_are_being_paid(defaulted_setup, maker, checker):  # noqa: F811
    declare(maker, checker)
    approve(maker.post(f"/api/v1/ops/claims/{Claim.objects.get(account_ref='retail-in').id}/approve"), checker)

    response = buy_in(maker, Claim.objects.get(account_ref="pro-1"), trade_id="A1", price_hkd="575000", evidence="x")

    assert response.status_code == 409 and response.json()["code"] == "payouts_started"
