"""POST /prefunding/funding-events (an operator's key, its own accounts),
GET /prefunding/accounts/{operator}/{account} and GET /prefunding/cover."""

from decimal import Decimal

import pytest
from django.utils import timezone

from settlement.models import FundingEvent, PrefundingBalance
from settlement.services.prefunding import freeze_create
from tests.conftest import api_client_for

pytestmark = [pytest.mark.django_db, pytest.mark.para(10)]

URL = "/api/v1/prefunding/funding-events"


def event(event_id="F1", kind="deposit", amount="100.00", **extra):
    return {
        "event_id": event_id,
        "account": "sg-1",
        "asset": "USDC",
        "kind": kind,
        "amount": amount,
        "occurred_at": timezone.now().isoformat(),
        "reference": "bank ref 1",
        **extra,
    }


def sg1_balance() -> PrefundingBalance:
    return PrefundingBalance.objects.get(operator__code="SG1", account="sg-1", asset__code="USDC")


def test_a_deposit_is_applied_once_and_a_replay_gets_the_stored_answer(pf, sg1_client):
    item = event()
    first = sg1_client.post(URL, item, format="json")
    again = sg1_client.post(URL, item, format="json")
    other = sg1_client.post(URL, {**item, "amount": "100.01"}, format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json() == again.json()
    assert first.json()["balance"] == {
        "asset": "USDC",
        "funded": "100.000000",
        "held": "0.000000",
        "committed": "0.000000",
        "available": "100.000000",
    }
    assert (other.status_code, other.json()["code"]) == (409, "conflict")
    assert sg1_balance().funded == Decimal(100)
    assert FundingEvent.objects.count() == 1


def test_withdrawals_are_two_phase_and_a_reserve_beyond_available_is_refused(pf, sg1_client):
    sg1_client.post(URL, event("D1", amount="100"), format="json")

    too_much = sg1_client.post(URL, event("W0", "withdrawal_reserve", "100.000001"), format="json")
    reserve = sg1_client.post(URL, event("W1", "withdrawal_reserve", "60"), format="json")
    during = sg1_balance()
    commit = sg1_client.post(URL, event("W1c", "withdrawal_commit", "50", reference="W1"), format="json")
    again = sg1_client.post(URL, event("W1c2", "withdrawal_commit", "50", reference="W1"), format="json")
    unknown = sg1_client.post(URL, event("W2c", "withdrawal_abort", "5", reference="nope"), format="json")

    assert (too_much.status_code, too_much.json()["code"]) == (409, "insufficient_prefunding")
    assert reserve.status_code == 201 and reserve.json()["balance"]["available"] == "40.000000"
    assert (during.funded, during.held) == (Decimal(100), Decimal(60))  # the reserve is a hold
    assert commit.status_code == 201
    # the commit took 50 out; the 10 it did not use is available again
    assert commit.json()["balance"] == {
        "asset": "USDC",
        "funded": "50.000000",
        "held": "0.000000",
        "committed": "0.000000",
        "available": "50.000000",
    }
    assert (again.status_code, again.json()["code"]) == (409, "withdrawal_finished")
    assert (unknown.status_code, unknown.json()["field"]) == (400, "reference")


def test_an_abort_voids_the_whole_reserve(pf, sg1_client):
    sg1_client.post(URL, event("D1", amount="100"), format="json")
    sg1_client.post(URL, event("W1", "withdrawal_reserve", "70"), format="json")

    partial = sg1_client.post(URL, event("W1a", "withdrawal_abort", "10", reference="W1"), format="json")
    abort = sg1_client.post(URL, event("W1b", "withdrawal_abort", "70", reference="W1"), format="json")

    assert (partial.status_code, partial.json()["field"]) == (400, "amount")
    assert abort.status_code == 201 and abort.json()["balance"]["available"] == "100.000000"
    b = sg1_balance()
    assert (b.funded, b.held) == (Decimal(100), Decimal(0))


def test_an_adjustment_may_be_negative_but_never_below_available(pf, sg1_client):
    sg1_client.post(URL, event("D1", amount="100"), format="json")

    down = sg1_client.post(URL, event("A1", "adjustment", "-30"), format="json")
    too_far = sg1_client.post(URL, event("A2", "adjustment", "-70.000001"), format="json")
    zero = sg1_client.post(URL, event("A3", "adjustment", "0"), format="json")

    assert down.status_code == 201 and down.json()["balance"]["funded"] == "70.000000"
    assert (too_far.status_code, too_far.json()["code"]) == (409, "insufficient_prefunding")
    assert zero.status_code == 400
    negative_deposit = sg1_client.post(URL, event("D2", amount="-1"), format="json")
    assert negative_deposit.status_code == 400


def test_a_withdrawal_cannot_be_reserved_on_a_frozen_account(pf, sg1_client):
    sg1_client.post(URL, event("D1", amount="100"), format="json")
    freeze_create(operator="SG1", account="sg-1", actor="test", now=timezone.now())

    response = sg1_client.post(URL, event("W1", "withdrawal_reserve", "10"), format="json")
    deposit = sg1_client.post(URL, event("D2", amount="5"), format="json")

    assert (response.status_code, response.json()["code"]) == (409, "account_frozen")
    assert deposit.status_code == 201


def test_an_operator_key_funds_its_own_accounts_only(pf, sg1_client, engine):
    other = sg1_client.post(URL, {**event(), "operator": "HK1"}, format="json")
    engine_try = engine.post(URL, event(), format="json")
    ops = api_client_for(pf.network.home, scope="operations")
    ops_without_operator = ops.post(URL, event("X1"), format="json")
    ops_for_sg1 = ops.post(URL, {**event("X2"), "operator": "SG1"}, format="json")

    assert other.status_code == 403
    assert engine_try.status_code == 403
    assert (ops_without_operator.status_code, ops_without_operator.json()["field"]) == (400, "operator")
    assert ops_for_sg1.status_code == 201 and ops_for_sg1.json()["operator"] == "SG1"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "gift"}, "kind"),
        ({"amount": 5}, "amount"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T00:00:00Z"}, "occurred_at"),
        ({"event_id": None}, "event_id"),
        ({"asset": "NOPE"}, "asset"),
        ({"kind": "withdrawal_commit", "reference": ""}, "reference"),
    ],
)
def test_bad_funding_input_is_a_400_naming_the_field(pf, sg1_client, change, field):
    response = sg1_client.post(URL, {**event(), **change}, format="json")
    assert response.status_code == 400 and response.json()["field"] == field


def test_a_deposit_beyond_what_the_custodian_attests_breaches_the_cover_at_once(pf, sg1_client, engine):
    pf.attest("SG1", "USDC", "150")

    sg1_client.post(URL, event("D1", amount="100"), format="json")
    fine = engine.post(
        "/api/v1/prefunding/holds",
        {"order_id": "O1", "operator": "SG1", "account": "sg-1", "asset": "USDC", "amount": "10"},
        format="json",
    )
    sg1_client.post(URL, event("D2", amount="60"), format="json")  # funded 160 > attested 150
    refused = engine.post(
        "/api/v1/prefunding/holds",
        {"order_id": "O2", "operator": "SG1", "account": "sg-1", "asset": "USDC", "amount": "10"},
        format="json",
    )

    assert fine.status_code == 201
    assert (refused.status_code, refused.json()["code"]) == (409, "cover_breach")


# --- reads ---------------------------------------------------------------------------------------


def test_an_account_read_shows_every_asset_of_the_account(pf, engine, sg1_client):
    pf.fund("SG1", "sg-1", "USDC", "10")
    pf.fund("SG1", "sg-1", "BTC", "0.5")
    pf.hold("O1", "4", operator="SG1", account="sg-1", asset="USDC")

    own = sg1_client.get("/api/v1/prefunding/accounts/SG1/sg-1")
    by_engine = engine.get("/api/v1/prefunding/accounts/SG1/sg-1")
    other = sg1_client.get("/api/v1/prefunding/accounts/HK1/pro-1")
    unknown = engine.get("/api/v1/prefunding/accounts/ZZ9/x")
    empty = engine.get("/api/v1/prefunding/accounts/SG1/never")

    assert own.status_code == 200 and own.json() == by_engine.json()
    assert own.json()["balances"] == [
        {
            "asset": "BTC",
            "funded": "0.50000000",
            "held": "0.00000000",
            "committed": "0.00000000",
            "available": "0.50000000",
        },
        {"asset": "USDC", "funded": "10.000000", "held": "4.000000", "committed": "0.000000", "available": "6.000000"},
    ]
    assert other.status_code == 403
    assert unknown.status_code == 404
    assert empty.status_code == 200 and empty.json()["balances"] == []


def test_the_cover_read_shows_every_field_and_an_operator_sees_its_own(pf, engine, sg1_client):
    pf.fund("SG1", "sg-1", "USDC", "10")

    everything = engine.get("/api/v1/prefunding/cover").json()
    own = sg1_client.get("/api/v1/prefunding/cover").json()
    other = sg1_client.get("/api/v1/prefunding/cover?operator=HK1")

    usdc = next(c for c in everything["cover"] if (c["operator"], c["asset"]) == ("SG1", "USDC"))
    assert set(usdc) >= {
        "operator",
        "asset",
        "attested",
        "attested_at",
        "funded",
        "held",
        "committed",
        "unsettled_outbound",
        "headroom",
        "state",
    }
    assert (usdc["funded"], usdc["state"]) == ("10.000000", "covered")
    assert {c["operator"] for c in everything["cover"]} == {"HK1", "SG1"}
    assert {c["operator"] for c in own["cover"]} == {"SG1"}
    assert other.status_code == 403


def test_the_largest_amounts_the_api_takes_are_shown_exactly(pf, sg1_client, engine):
    """28 significant digits at ETH's 18 decimals (beyond a float, at the edge
    of the default decimal precision) round-trip exactly; one digit more is
    refused ``out_of_range`` by name, never rounded."""
    pf.attest("SG1", "ETH", "99999999999999999999")
    big = "9999999999.123456789012345678"
    response = sg1_client.post(URL, {**event(asset="ETH", amount=big), "account": "whale"}, format="json")
    hold = engine.post(
        "/api/v1/prefunding/holds",
        {"order_id": "W1", "operator": "SG1", "account": "whale", "asset": "ETH", "amount": big},
        format="json",
    )
    too_big = sg1_client.post(
        URL, {**event("F2", asset="ETH", amount="12345678901.123456789012345678"), "account": "whale"}, format="json"
    )

    assert response.status_code == 201 and response.json()["balance"]["funded"] == big
    assert hold.status_code == 201 and hold.json()["available_after"] == "0.000000000000000000"
    assert too_big.status_code == 400
    assert too_big.json()["code"] == "out_of_range" and too_big.json()["field"] == "amount"
