"""POST /api/v1/trades: the contract the matching engine is written against."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from controls.models import AuditEvent
from settlement.models import ComplianceException, ExposurePosition, Obligation, Trade, TradeException
from tests import factories
from tests.factories import trade

pytestmark = pytest.mark.django_db

URL = "/api/v1/trades"


def post(client, *items, raw=None):
    if raw is not None:
        return client.post(URL, data=raw, content_type="application/json")
    return client.post(URL, {"trades": list(items)}, format="json")


@pytest.mark.para(12)
def test_cross_trade_creates_two_obligations_and_exposure(engine_client, network):
    response = post(engine_client, trade(trade_id="T1", price="500000", quantity="2"))

    assert response.status_code == 200
    body = response.json()
    assert (body["accepted"], body["duplicates"], body["rejected"]) == (1, 0, [])
    by_asset = {o.asset.code: o for o in Obligation.objects.select_related("asset", "debtor", "creditor")}
    # Home bought BTC: SG1 delivers 2 BTC to home; home pays 1,000,000 HKD to SG1.
    assert (by_asset["BTC"].debtor.code, by_asset["BTC"].creditor.code, by_asset["BTC"].direction) == (
        "SG1",
        "HK1",
        "inbound",
    )
    assert by_asset["BTC"].amount == Decimal("2")
    assert (by_asset["HKD"].debtor.code, by_asset["HKD"].direction, by_asset["HKD"].amount) == (
        "HK1",
        "outbound",
        Decimal("1000000"),
    )
    sg1 = next(c for c in body["exposure"]["by_counterparty"] if c["operator"] == "SG1")
    assert sg1 == {
        "operator": "SG1",
        "exposure_hkd": "1000000.00",
        "exposure_at_marks_hkd": "1000000.00",  # no haircut on BTC here
        "reserved_hkd": "0.00",
        "limit_hkd": None,
        "open_obligations": 2,
        "eligible": True,
    }
    assert body["exposure"]["total_hkd"] == "1000000.00"


@pytest.mark.para(12)
def test_home_selling_makes_the_quote_owed_to_home(engine_client, network):
    post(
        engine_client,
        trade(trade_id="T1", buy=("SG1", "c1"), sell=("HK1", "pro-1"), price="7.8", quantity="1000", base="USDC"),
    )

    inbound = Obligation.objects.get(direction="inbound")
    assert (inbound.asset.code, inbound.amount, inbound.debtor.code) == ("HKD", Decimal("7800.00"), "SG1")


def test_quote_amount_is_rounded_half_even_to_the_quote_scale(engine_client, network):
    # 0.125 x 1 = 0.125 HKD -> 0.12 (half-even), 0.135 -> 0.14
    post(
        engine_client,
        trade(trade_id="A", base="USDC", price="0.125", quantity="1"),
        trade(trade_id="B", base="USDC", price="0.135", quantity="1"),
    )
    amounts = dict(Trade.objects.values_list("trade_id", "quote_amount"))
    assert amounts == {"A": Decimal("0.12"), "B": Decimal("0.14")}


@pytest.mark.para(12, 22)
def test_home_internal_trade_is_recorded_without_obligations(engine_client, network):
    response = post(engine_client, trade(trade_id="T1", buy=("HK1", "pro-1"), sell=("HK1", "retail-in")))

    assert response.json()["accepted"] == 1
    assert Trade.objects.get(trade_id="T1").is_cross is False
    assert Obligation.objects.count() == 0


@pytest.mark.para(12)
def test_same_content_again_is_a_duplicate_and_other_content_a_conflict(engine_client, network):
    original = trade(trade_id="T1", quantity="1")
    post(engine_client, original)

    again = post(engine_client, original).json()
    changed = post(engine_client, {**original, "quantity": "2"}).json()

    assert (again["accepted"], again["duplicates"], again["rejected"]) == (0, 1, [])
    assert changed["accepted"] == 0
    assert changed["rejected"][0]["code"] == "conflict"
    assert Trade.objects.count() == 1
    assert Obligation.objects.count() == 2
    assert TradeException.objects.get().code == "conflict"


@pytest.mark.para(12)
def test_equal_decimals_written_differently_are_the_same_content(engine_client, network):
    post(engine_client, trade(trade_id="T1", quantity="1.5", executed_at="2026-11-20T01:00:00Z"))

    again = post(engine_client, trade(trade_id="T1", quantity="1.50", executed_at="2026-11-20T09:00:00+08:00")).json()

    assert again["duplicates"] == 1


@pytest.mark.para(12)
def test_repeated_id_inside_one_request(engine_client, network):
    item = trade(trade_id="T1")
    body = post(engine_client, item, item, {**item, "price": "1"}).json()

    assert (body["accepted"], body["duplicates"]) == (1, 1)
    assert [(r["index"], r["code"]) for r in body["rejected"]] == [(2, "conflict")]


@pytest.mark.para(12, 22)
def test_valid_items_are_stored_when_others_fail_and_rejections_are_queued(engine_client, network):
    bad = trade(trade_id="BAD", base="DOGE")
    body = post(engine_client, trade(trade_id="OK1"), bad, trade(trade_id="OK2")).json()

    assert body["accepted"] == 2
    assert body["rejected"] == [
        {
            "index": 1,
            "trade_id": "BAD",
            "code": "unknown_asset",
            "message": "base_asset 'DOGE' is not a registered asset",
            "field": "base_asset",
        }
    ]
    queued = TradeException.objects.get()
    assert (queued.code, queued.trade_id, queued.status) == ("unknown_asset", "BAD", "open")
    assert queued.payload == bad  # the raw item, so nothing the engine executed is lost


def now_plus(seconds):
    return (timezone.now() + timedelta(seconds=seconds)).isoformat()


REJECTIONS = [
    ("unknown_asset", {"quote_asset": "XYZ"}),
    ("same_asset", {"quote_asset": "BTC"}),
    ("number_not_string", {"price": 500000}),
    ("number_not_string", {"quantity": 1.5}),
    ("invalid_decimal", {"price": "NaN"}),
    ("invalid_decimal", {"price": "Infinity"}),
    ("invalid_decimal", {"price": "1e999999999"}),
    ("invalid_decimal", {"quantity": "one"}),
    ("out_of_range", {"price": "1" * 25}),
    ("non_positive", {"price": "0"}),
    ("non_positive", {"quantity": "-1"}),
    ("too_many_decimals", {"quantity": "0.000000001"}),  # BTC scale is 8
    ("quote_amount_zero", {"base": "USDC", "price": "0.001", "quantity": "1"}),
    ("missing_field", {"trade_id": None}),
    ("invalid_field", {"trade_id": 42}),
    ("missing_field", {"executed_at": None}),
    ("invalid_timestamp", {"executed_at": "yesterday"}),
    ("invalid_timestamp", {"executed_at": "2026-11-20T01:00:00"}),  # no time zone
    ("future_executed_at", {"executed_at": "FUTURE"}),
    ("unknown_operator", {"sell": ("XX9", "c")}),
    ("not_home_trade", {"buy": ("SG1", "a"), "sell": ("JP1", "b")}),
]


@pytest.mark.parametrize(("code", "change"), REJECTIONS, ids=[f"{c}-{'-'.join(ch)}" for c, ch in REJECTIONS])
def test_rejection_codes(engine_client, network, code, change):
    fields = {k: v for k, v in change.items() if k in ("base", "quote", "buy", "sell")}
    item = trade(**fields)
    for key, value in change.items():
        if key not in fields:
            item[key] = now_plus(3600) if value == "FUTURE" else value
    if item.get("trade_id", "") is None:
        del item["trade_id"]
    if item.get("executed_at", "") is None:
        del item["executed_at"]

    body = post(engine_client, item).json()

    assert body["accepted"] == 0
    assert body["rejected"][0]["code"] == code, body["rejected"][0]
    assert TradeException.objects.filter(code=code).count() == 1
    assert Trade.objects.count() == 0


def test_a_bare_nan_literal_rejects_only_its_item(engine_client, network):
    nan_item = json.dumps(trade(trade_id="NAN", price="500000")).replace('"500000"', "NaN")
    raw = '{"trades": [' + json.dumps(trade(trade_id="GOOD")) + ", " + nan_item + "]}"
    body = post(engine_client, raw=raw).json()

    assert body["accepted"] == 1
    assert body["rejected"][0]["code"] == "number_not_string"


@pytest.mark.para(7, 16)
@pytest.mark.parametrize("status", ["suspended", "defaulted"])
def test_suspended_or_defaulted_counterparty_is_rejected(engine_client, network, status):
    network.sg1.status = status
    network.sg1.save()

    body = post(engine_client, trade()).json()

    assert body["rejected"][0]["code"] == f"counterparty_{status}"


@pytest.mark.para(7)
def test_ineligible_counterparty_is_rejected_with_the_reasons(engine_client, network):
    network.jp1.jurisdiction = factories.jurisdiction("KP", fatf_member=False, call_for_action=True)
    network.jp1.save()
    network.sg1.sfc_approval = ""
    network.sg1.save()

    body = post(engine_client, trade(sell=("JP1", "x")), trade(sell=("SG1", "y"))).json()

    assert [r["code"] for r in body["rejected"]] == ["counterparty_ineligible", "counterparty_ineligible"]
    assert "call-for-action" in body["rejected"][0]["message"]
    assert "no SFC approval" in body["rejected"][1]["message"]


@pytest.mark.para(25)
def test_retail_home_client_without_opt_in_is_accepted_and_flagged(engine_client, network):
    body = post(
        engine_client,
        trade(trade_id="R1", buy=("HK1", "retail-out")),
        trade(trade_id="R2", buy=("HK1", "retail-in")),
        trade(trade_id="R3", buy=("HK1", "never-seen")),
    ).json()

    assert body["accepted"] == 3
    flagged = dict(ComplianceException.objects.values_list("trade__trade_id", "code"))
    assert flagged == {"R1": "retail_without_opt_in", "R3": "unregistered_home_account"}


def test_request_shape_errors(engine_client, network):
    assert post(engine_client, raw="{not json").json()["code"] == "invalid_json"
    assert post(engine_client, raw="[]").json()["code"] == "invalid_request"
    assert post(engine_client, raw='{"trades": []}').json()["code"] == "empty_batch"
    too_many = engine_client.post(URL, {"trades": [{}] * 10_001}, format="json")
    assert (too_many.status_code, too_many.json()["code"]) == (400, "too_many_items")
    assert Trade.objects.count() == TradeException.objects.count() == 0


def test_every_item_that_is_not_an_object_is_rejected(engine_client, network):
    body = post(engine_client, "x", 3, None, [1]).json()
    assert [r["code"] for r in body["rejected"]] == ["invalid_item"] * 4


@pytest.mark.para(22)
def test_ingest_writes_one_audit_event_listing_the_trades(engine_client, network):
    post(engine_client, trade(trade_id="A"), trade(trade_id="B"))

    event = AuditEvent.objects.get(action="trades.ingested")
    assert event.after["trade_ids"] == ["A", "B"]
    assert event.actor.startswith("api-key:")


def test_auth_and_scope(network, ops_client):
    from rest_framework.test import APIClient

    anonymous = APIClient().post(URL, {"trades": [trade()]}, format="json")
    wrong_key = APIClient()
    wrong_key.credentials(HTTP_AUTHORIZATION="Api-Key nope.nope")
    _, sg_key = factories.api_key(network.sg1, scope="operator")
    overseas = APIClient()
    overseas.credentials(HTTP_AUTHORIZATION=f"Api-Key {sg_key}")

    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "not_authenticated")
    assert wrong_key.post(URL, {}, format="json").status_code == 401
    assert overseas.post(URL, {"trades": [trade()]}, format="json").status_code == 403
    assert ops_client.post(URL, {"trades": [trade()]}, format="json").status_code == 403


@pytest.mark.para(12)
def test_positions_track_obligations(engine_client, network):
    post(engine_client, trade(quantity="1"), trade(quantity="0.5"), trade(sell=("JP1", "j"), quantity="0.25"))

    rows = {
        (p.counterparty.code, p.asset.code): (p.receivable, p.payable, p.receivable_count, p.payable_count)
        for p in ExposurePosition.objects.select_related("counterparty", "asset")
    }
    assert rows[("SG1", "BTC")] == (Decimal("1.5"), Decimal(0), 2, 0)
    assert rows[("SG1", "HKD")] == (Decimal(0), Decimal("750000"), 0, 2)
    assert rows[("JP1", "BTC")] == (Decimal("0.25"), Decimal(0), 1, 0)


def test_hot_path_query_count_does_not_grow_with_the_batch(engine_client, network):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(n: int, prefix: str) -> int:
        items = [
            trade(
                trade_id=f"{prefix}{i}",
                quantity="0.001",
                buy=("HK1", f"pro-{i}"),
                sell=("SG1" if i % 2 else "JP1", "c"),
            )
            for i in range(n)
        ]
        with CaptureQueriesContext(connection) as captured:
            assert post(engine_client, *items).json()["accepted"] == n
        return len(captured)

    small, large = queries_for(4, "S"), queries_for(400, "L")
    # The same statements whatever the size; bulk inserts may split into
    # chunks (SQLite caps bound parameters), but nothing is done per trade.
    assert large - small < (400 - 4) / 20, (small, large)
