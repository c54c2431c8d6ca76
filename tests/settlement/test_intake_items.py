"""One bad item never takes down a trade batch (DESIGN section 6; circular
paras 12 and 22: every executed trade is kept, the refused ones in the
exceptions queue). Each item below used to answer 500 for the whole batch,
store nothing and queue no exception; or was accepted and then broke every
read. Now it is that item's rejection, and the valid trade beside it is
stored."""

import json
from decimal import Decimal

import pytest

from settlement.models import Obligation, Trade, TradeException
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(12), pytest.mark.para(22)]

URL = "/api/v1/trades"


def post_raw(client, items: list[dict], **extra):
    """The items as JSON text, escapes kept (a lone surrogate is "\\ud800")."""
    return client.post(URL, data=json.dumps({"trades": items}), content_type="application/json", **extra)


def good() -> dict:
    return trade(trade_id="GOOD-1")


BAD_ITEMS = {
    "year 1 at +14:00": ({"executed_at": "0001-01-01T00:00:00+14:00"}, "invalid_timestamp", "executed_at"),
    "year 9999 at -14:00": ({"executed_at": "9999-12-31T23:59:59-14:00"}, "invalid_timestamp", "executed_at"),
    "lone surrogate in trade_id": ({"trade_id": "\ud800"}, "invalid_text", "trade_id"),
    "lone surrogate in an account": (
        {"buy": {"operator": "HK1", "account": "a\udfffb"}},
        "invalid_text",
        "buy.account",
    ),
    "lone surrogate as an unknown key": ({"\ud800": 1}, "invalid_text", "\\ud800"),
    "lone surrogate in an unknown key's value": ({"note": ["\udbff"]}, "invalid_text", "note[0]"),
    "full-width digits as a price": ({"price": "\uff16\uff14\uff10\uff10\uff10"}, "invalid_decimal", "price"),
    "Arabic-Indic digits as a quantity": ({"quantity": "\u0661"}, "invalid_decimal", "quantity"),
    "an ETH quantity of 29 significant digits": (
        {"base_asset": "ETH", "price": "20000", "quantity": "12345678901.5"},
        "out_of_range",
        "quantity",
    ),
    "a quantity of a quadrillion": ({"quantity": "1000000000000000"}, "out_of_range", "quantity"),
    "worth more than a quadrillion HKD": ({"price": "999999999", "quantity": "1100000"}, "out_of_range", "price"),
    "a number too large for a float": ({"quantity": 1e400}, "number_not_string", "quantity"),
}


@pytest.mark.parametrize("name", BAD_ITEMS)
def test_a_bad_item_is_that_items_rejection_and_the_rest_of_the_batch_is_stored(engine_client, network, name):
    change, code, field = BAD_ITEMS[name]
    bad = {**trade(trade_id="BAD-1"), **change}

    response = post_raw(engine_client, [good(), bad])

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted"] == 1
    (rejection,) = body["rejected"]
    assert (rejection["index"], rejection["code"], rejection.get("field")) == (1, code, field)
    assert list(Trade.objects.values_list("trade_id", flat=True)) == ["GOOD-1"]
    exception = TradeException.objects.get()
    assert (exception.index, exception.code) == (1, code)
    assert isinstance(exception.payload, dict)  # kept, as far as PostgreSQL can hold it


def test_a_refused_payload_is_kept_with_its_unstorable_text_escaped(engine_client, network):
    post_raw(engine_client, [good(), {**trade(trade_id="\ud800x"), "\udfff": "\ud800"}])

    exception = TradeException.objects.get()
    assert exception.trade_id == "\\ud800x"
    assert exception.payload["trade_id"] == "\\ud800x" and exception.payload["\\udfff"] == "\\ud800"


@pytest.mark.parametrize("content_type", ["text/plain", None, "application/x-www-form-urlencoded"])
def test_a_nul_in_a_body_of_any_content_type_is_refused_not_a_500(engine_client, network, content_type):
    body = json.dumps({"trades": [good(), {**trade(trade_id="NUL"), "note": "\u0000"}]})
    extra = {"content_type": content_type} if content_type else {}
    response = engine_client.generic("POST", URL, body.encode(), **extra)

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_request"
    assert not Trade.objects.exists()


@pytest.mark.para(15)
def test_every_read_survives_an_amount_past_28_significant_digits_at_its_scale(engine_client, ops_client, network):
    """Stored before intake refused it (12345678901.5 ETH is 29 digits at
    18 places): the obligations list, a cycle and running one still answer."""
    assert post_raw(engine_client, [trade(trade_id="ETH-1", base="ETH", price="20000", quantity="1")]).json()[
        "accepted"
    ]
    Trade.objects.filter(trade_id="ETH-1").update(quantity=Decimal("12345678901.5"))
    Obligation.objects.filter(asset__code="ETH").update(amount=Decimal("12345678901.5"))

    listed = engine_client.get("/api/v1/obligations")
    ran = ops_client.post("/api/v1/cycles", {"kind": "intraday"}, format="json")
    shown = engine_client.get(f"/api/v1/cycles/{ran.json()['id']}")

    assert listed.status_code == 200, listed.content
    eth = next(o for o in listed.json()["results"] if o["asset"] == "ETH")
    assert eth["amount"] == "12345678901.500000000000000000"
    assert ran.status_code == 201, ran.content
    assert shown.status_code == 200, shown.content
    legs = [leg for batch in shown.json()["batches"] for leg in batch["legs"]]
    assert "12345678901.500000000000000000" in {leg["amount"] for leg in legs}


def test_backslashes_are_stored_as_sent(engine_client, network):
    """The intake writes its rows as COPY text, where a backslash is an escape."""
    item = trade(trade_id="A\\B\\\\C", buy=("HK1", "pro\\1"))
    item["sell"]["order_id"] = "ord\\tx"

    assert post_raw(engine_client, [item]).json()["accepted"] == 1
    stored = Trade.objects.get()
    assert (stored.trade_id, stored.buy_account, stored.sell_order_id) == ("A\\B\\\\C", "pro\\1", "ord\\tx")
    assert stored.obligations.count() == 2
