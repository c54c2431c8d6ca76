"""GET /exposure, POST /exposure/check, /marks, /obligations, /whoami, schema."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from controls.models import AuditEvent
from registry.models import Mark
from settlement.services.trades import trades_ingest
from tests import factories
from tests.conftest import api_client_for
from tests.factories import trade

pytestmark = pytest.mark.django_db


def soon(seconds: int) -> str:
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


def check(client, **body):
    return client.post("/api/v1/exposure/check", body, format="json")


def test_get_exposure_contract(engine_client, network):
    trades_ingest(items=[trade(quantity="2")], actor="test")

    body = engine_client.get("/api/v1/exposure").json()

    assert set(body) >= {
        "as_of",
        "method",
        "state",
        "reasons",
        "total_hkd",
        "cap_hkd",
        "effective_cap_hkd",
        "reserve_available_hkd",
        "utilisation",
        "by_counterparty",
    }
    assert (body["method"], body["state"], body["total_hkd"], body["utilisation"]) == (
        "gross",
        "normal",
        "1000000.00",
        "0.0100",
    )
    assert (body["cap_hkd"], body["effective_cap_hkd"], body["reserve_available_hkd"]) == (
        "100000000.00",
        "100000000.00",
        "120000000.00",
    )
    assert [c["operator"] for c in body["by_counterparty"]] == ["JP1", "SG1"]


def test_get_exposure_rejects_an_unknown_method(engine_client, network):
    response = engine_client.get("/api/v1/exposure?method=fancy")
    assert (response.status_code, response.json()["field"]) == (400, "method")


@pytest.mark.para(15)
def test_check_allows_within_headroom(engine_client, network):
    body = check(engine_client, counterparty="SG1", asset="BTC", amount="1").json()

    assert body == {
        "allowed": True,
        "reason": None,
        "exposure_hkd": "0.00",
        "added_hkd": "500000.00",
        "headroom_hkd": "100000000.00",
        "state": "normal",
    }


@pytest.mark.para(15)
def test_check_denies_beyond_the_cap(engine_client, network):
    trades_ingest(items=[trade(quantity="150")], actor="test")  # 75,000,000 HKD

    body = check(engine_client, counterparty="JP1", asset="BTC", amount="51").json()  # +25,500,000

    assert body["allowed"] is False
    assert body["reason"].startswith("cap_exceeded")
    assert body["headroom_hkd"] == "25000000.00"


@pytest.mark.para(15)
def test_check_denies_beyond_the_counterparty_limit(engine_client, network):
    network.sg1.limit_hkd = Decimal("1000000")
    network.sg1.save()

    body = check(engine_client, counterparty="SG1", asset="BTC", amount="3").json()

    assert (body["allowed"], body["reason"].split(":")[0], body["headroom_hkd"]) == (
        False,
        "limit_exceeded",
        "1000000.00",
    )


@pytest.mark.para(15)
def test_check_denies_when_halted(engine_client, network):
    trades_ingest(items=[trade(quantity="200")], actor="test")

    body = check(engine_client, counterparty="JP1", asset="HKD", amount="1").json()

    assert (body["allowed"], body["state"]) == (False, "halted")
    assert body["reason"].startswith("halted: utilisation 1.0000")


@pytest.mark.para(7)
def test_check_denies_an_ineligible_counterparty(engine_client, network):
    network.sg1.status = "suspended"
    network.sg1.save()

    body = check(engine_client, counterparty="SG1", asset="BTC", amount="1").json()

    assert body["allowed"] is False
    assert body["reason"] == "counterparty_ineligible: operator SG1 is suspended"


@pytest.mark.para(25)
@pytest.mark.parametrize(
    ("account", "allowed", "reason"),
    [
        ("pro-1", True, None),
        ("retail-in", True, None),
        ("retail-out", False, "retail_without_opt_in"),
        ("ghost", False, "account_unregistered"),
    ],
)
def test_check_with_a_home_account_checks_opt_in(engine_client, network, account, allowed, reason):
    body = check(engine_client, counterparty="SG1", asset="BTC", amount="1", account=account).json()

    assert body["allowed"] is allowed
    assert (body["reason"] or "").split(":")[0] == (reason or "")


@pytest.mark.para(15)
def test_check_denies_an_asset_without_a_mark(engine_client, network):
    network.eth.mark_hkd = None
    network.eth.save()

    body = check(engine_client, counterparty="SG1", asset="ETH", amount="1").json()

    assert (body["allowed"], body["added_hkd"]) == (False, None)
    assert body["reason"].startswith("no_mark")


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"counterparty": "ZZ9", "asset": "BTC", "amount": "1"}, "unknown_operator", "counterparty"),
        ({"counterparty": "SG1", "asset": "DOGE", "amount": "1"}, "unknown_asset", "asset"),
        ({"counterparty": "SG1", "asset": "BTC", "amount": 1}, "number_not_string", "amount"),
        ({"counterparty": "SG1", "asset": "BTC", "amount": "0.000000001"}, "too_many_decimals", "amount"),
        ({"counterparty": "SG1", "asset": "BTC", "amount": "-1"}, "non_positive", "amount"),
        ({"counterparty": "SG1", "asset": "BTC"}, "invalid_decimal", "amount"),
        ({"counterparty": "SG1", "asset": "BTC", "amount": "1", "account": 7}, "invalid_field", "account"),
    ],
)
def test_check_input_errors(engine_client, network, body, code, field):
    response = check(engine_client, **body)

    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_post_marks_replaces_the_current_mark_and_keeps_history(engine_client, network):
    response = engine_client.post(
        "/api/v1/marks",
        {"marks": [{"asset": "BTC", "price_hkd": "510000.5", "as_of": soon(0), "source": "engine"}]},
        format="json",
    )

    assert response.status_code == 200
    network.btc.refresh_from_db()
    assert (network.btc.mark_hkd, network.btc.mark_source) == (Decimal("510000.5"), "engine")
    assert Mark.objects.filter(asset=network.btc).count() == 1
    assert AuditEvent.objects.filter(action="mark.updated", object_id="BTC").exists()


def test_an_older_mark_is_kept_as_history_but_does_not_replace_the_newer(engine_client, network):
    post = lambda price, at: engine_client.post(  # noqa: E731
        "/api/v1/marks", {"marks": [{"asset": "ETH", "price_hkd": price, "as_of": at}]}, format="json"
    )
    post("21000", soon(0))
    post("19000", soon(-60))

    network.eth.refresh_from_db()
    assert network.eth.mark_hkd == Decimal("21000")
    assert Mark.objects.filter(asset=network.eth).count() == 2


@pytest.mark.parametrize(
    ("marks", "code"),
    [
        ([{"asset": "BTC", "price_hkd": 1}], "number_not_string"),
        ([{"asset": "BTC", "price_hkd": "0"}], "non_positive"),
        ([{"asset": "NOPE", "price_hkd": "1"}], "unknown_asset"),
        ([{"asset": "HKD", "price_hkd": "1"}], "invalid_field"),
        ([{"asset": "BTC", "price_hkd": "1", "as_of": "soon"}], "invalid_timestamp"),
        ([], "invalid_field"),
    ],
)
def test_bad_marks_change_nothing(engine_client, network, marks, code):
    good = {"asset": "ETH", "price_hkd": "1"}
    response = engine_client.post("/api/v1/marks", {"marks": [good, *marks] if marks else []}, format="json")

    assert (response.status_code, response.json()["code"]) == (400, code)
    assert Mark.objects.count() == 0


def test_get_marks_lists_current_marks(engine_client, network):
    marks = {m["asset"]: m for m in engine_client.get("/api/v1/marks").json()["marks"]}
    assert marks["HKD"]["price_hkd"] == "1"
    assert marks["BTC"]["price_hkd"] == "500000"
    assert marks["BTC"]["stale"] is False


def test_obligations_filters_and_pagination(engine_client, network):
    trades_ingest(
        items=[trade(trade_id=f"T{i}", sell=("SG1" if i % 2 else "JP1", "c")) for i in range(6)], actor="test"
    )

    everything = engine_client.get("/api/v1/obligations?page_size=5").json()
    sg1 = engine_client.get("/api/v1/obligations?counterparty=SG1&status=open").json()
    one = engine_client.get("/api/v1/obligations?trade_id=T3").json()

    assert len(everything["results"]) == 5 and everything["next"]
    assert len(engine_client.get(everything["next"]).json()["results"]) == 5
    assert {o["counterparty"] for o in sg1["results"]} == {"SG1"} and len(sg1["results"]) == 6
    assert sorted((o["asset"], o["amount"], o["direction"]) for o in one["results"]) == [
        ("BTC", "1.00000000", "inbound"),
        ("HKD", "500000.00", "outbound"),
    ]


def test_obligations_reject_a_bad_filter(engine_client, network):
    response = engine_client.get("/api/v1/obligations?status=lost")
    assert (response.status_code, response.json()["field"]) == (400, "status")


def test_an_overseas_key_sees_only_its_own_obligations(network):
    trades_ingest(items=[trade(sell=("SG1", "a")), trade(sell=("JP1", "b"))], actor="test")
    sg1_client = api_client_for(network.sg1, scope="operator")

    results = sg1_client.get("/api/v1/obligations").json()["results"]
    forbidden = sg1_client.get("/api/v1/exposure")

    assert {o["counterparty"] for o in results} == {"SG1"}
    assert forbidden.status_code == 403


def test_whoami(engine_client):
    assert engine_client.get("/api/v1/whoami").json()["operator"] == "HK1"


def test_schema_and_docs_are_served(client, network):
    schema = client.get("/api/v1/schema/")
    docs = client.get("/api/v1/docs/")

    assert schema.status_code == 200 and b"/api/v1/trades" in schema.content
    assert docs.status_code == 200


@pytest.mark.parametrize("debug", [False, True])
def test_unknown_endpoint_is_a_json_404(engine_client, settings, debug):
    settings.DEBUG = debug
    response = engine_client.get("/api/v1/nothing-here")
    assert (response.status_code, response.json()["code"]) == (404, "not_found")


def test_the_openapi_schema_generates_without_warnings(tmp_path):
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
    assert "/api/v1/ops/approvals/{approval_id}/approve" in (tmp_path / "schema.yml").read_text()


def test_wrong_method_is_405_json(engine_client, network):
    response = engine_client.delete("/api/v1/trades")
    assert (response.status_code, response.json()["code"]) == (405, "method_not_allowed")


def test_a_revoked_key_is_refused(network):
    key, secret = factories.api_key(network.home, scope="engine")
    key.revoked = True
    key.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {secret}")
    assert client.get("/api/v1/whoami").status_code == 401
