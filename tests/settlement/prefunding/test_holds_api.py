"""The holds contract (DESIGN section 6a) the matching engine is written
against: POST /prefunding/holds and /holds/batch, PATCH, DELETE and GET of
/prefunding/holds/{operator}/{order_id}, every refusal code."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from controls.models import AuditEvent
from registry.models import Jurisdiction, Operator
from settlement.models import HoldEvent, PrefundingBalance, PrefundingHold
from settlement.services.prefunding import freeze_create
from tests.conftest import api_client_for

from .conftest import later

pytestmark = [pytest.mark.django_db, pytest.mark.para(10)]

URL = "/api/v1/prefunding/holds"


def hold(order_id="O1", amount="100.00", **extra):
    return {"order_id": order_id, "operator": "HK1", "account": "pro-1", "asset": "HKD", "amount": amount, **extra}


def balance(operator="HK1", account="pro-1", asset="HKD") -> PrefundingBalance:
    return PrefundingBalance.objects.get(operator__code=operator, account=account, asset__code=asset)


def test_a_hold_within_available_is_placed_and_counts_against_available_at_once(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")

    response = engine.post(URL, hold(amount="600.50"), format="json")

    assert response.status_code == 201
    body = response.json()
    assert {k: body[k] for k in ("order_id", "operator", "account", "asset", "amount", "remaining", "status")} == {
        "order_id": "O1",
        "operator": "HK1",
        "account": "pro-1",
        "asset": "HKD",
        "amount": "600.50",
        "remaining": "600.50",
        "status": "held",
    }
    assert body["available_after"] == "399.50"
    assert isinstance(body["hold_id"], int) and body["expires_at"].endswith("Z")
    b = balance()
    assert (b.funded, b.held, b.committed) == (Decimal("1000"), Decimal("600.50"), Decimal(0))
    assert HoldEvent.objects.get().kind == "created"
    assert AuditEvent.objects.filter(action="prefunding.holds_placed").exists()


def test_the_same_order_again_answers_its_current_state_and_other_content_is_a_conflict(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    first = engine.post(URL, hold(amount="100"), format="json")

    again = engine.post(URL, hold(amount="100.00"), format="json")  # the same amount, written otherwise
    other = engine.post(URL, hold(amount="200"), format="json")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["hold_id"] == first.json()["hold_id"] and again.json()["status"] == "held"
    assert other.status_code == 409 and other.json()["code"] == "conflict"
    assert PrefundingHold.objects.count() == 1
    assert balance().held == Decimal(100)


def test_insufficient_prefunding_says_what_is_available(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "50.00")

    response = engine.post(URL, hold(amount="50.01"), format="json")

    assert response.status_code == 409
    assert response.json()["code"] == "insufficient_prefunding"
    assert response.json()["available"] == "50.00"
    assert not PrefundingHold.objects.exists()


def test_an_account_never_funded_has_nothing_available(pf, engine):
    response = engine.post(URL, hold(account="nobody"), format="json")
    assert response.status_code == 409
    assert (response.json()["code"], response.json()["available"]) == ("insufficient_prefunding", "0.00")


def test_a_breached_cover_refuses_new_holds_and_keeps_the_existing_ones(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    engine.post(URL, hold("O1", "100"), format="json")
    pf.attest("HK1", "HKD", "999.99")  # the custodian holds less than is funded

    response = engine.post(URL, hold("O2", "100"), format="json")

    assert response.status_code == 409 and response.json()["code"] == "cover_breach"
    assert PrefundingHold.objects.get(order_id="O1").status == "held"


def test_an_old_attestation_refuses_new_holds(pf, engine, settings):
    settings.PREFUNDING_ATTESTATION_MAX_AGE_SECONDS = {**settings.PREFUNDING_ATTESTATION_MAX_AGE_SECONDS, "bank": 60}
    pf.designate("JP1")
    pf.attest("JP1", "HKD", "5000", as_of=timezone.now() - timedelta(seconds=61))
    pf.fund("JP1", "jp-1", "HKD", "1000.00")

    stale = engine.post(URL, hold(operator="JP1", account="jp-1"), format="json")
    pf.attest("JP1", "HKD", "5000")
    fresh = engine.post(URL, hold(operator="JP1", account="jp-1"), format="json")

    assert stale.status_code == 409 and stale.json()["code"] == "attestation_stale"
    assert "s old" in stale.json()["message"]
    assert fresh.status_code == 201


def test_an_operator_without_any_attestation_cannot_place_holds(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")  # funded, never attested in JP1's custody
    pf.fund("JP1", "jp-1", "HKD", "1000.00")

    response = engine.post(URL, hold(operator="JP1", account="jp-1"), format="json")

    assert response.status_code == 409 and response.json()["code"] == "attestation_stale"


def test_a_frozen_account_refuses_new_holds(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    freeze_create(operator="HK1", account="pro-1", actor="test", now=timezone.now())

    response = engine.post(URL, hold(), format="json")
    other_account = engine.post(URL, hold(account="retail-in"), format="json")

    assert response.status_code == 409 and response.json()["code"] == "account_frozen"
    assert other_account.json()["code"] == "insufficient_prefunding"  # not frozen, just empty


@pytest.mark.parametrize("status", ["suspended", "defaulted"])
def test_a_suspended_or_defaulted_operator_cannot_place_holds(pf, engine, status):
    pf.fund("SG1", "sg-1", "USDC", "1000")
    Operator.objects.filter(code="SG1").update(status=status)

    response = engine.post(URL, hold(operator="SG1", account="sg-1", asset="USDC"), format="json")

    assert response.status_code == 409 and response.json()["code"] == f"counterparty_{status}"


def test_an_ineligible_operator_cannot_place_holds(pf, engine):
    pf.fund("SG1", "sg-1", "USDC", "1000")
    Jurisdiction.objects.filter(code="SG").update(call_for_action=True)

    response = engine.post(URL, hold(operator="SG1", account="sg-1", asset="USDC"), format="json")

    assert response.status_code == 409 and response.json()["code"] == "counterparty_ineligible"


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"amount": 100}, "number_not_string", "amount"),
        ({"amount": "1.001"}, "too_many_decimals", "amount"),
        ({"amount": "0"}, "non_positive", "amount"),
        ({"operator": "XX9"}, "unknown_operator", "operator"),
        ({"asset": "DOGE"}, "unknown_asset", "asset"),
        ({"order_id": ""}, "invalid_field", "order_id"),
        ({"expires_at": "2026-01-01T00:00:00"}, "invalid_timestamp", "expires_at"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(pf, engine, change, code, field):
    response = engine.post(URL, {**hold(), **change}, format="json")
    assert response.status_code == 400
    assert (response.json()["code"], response.json()["field"]) == (code, field)


def test_expires_at_defaults_to_and_may_not_pass_the_maximum_time_to_live(pf, engine, settings):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    settings.PREFUNDING_HOLD_DEFAULT_TTL_SECONDS = 3600
    settings.PREFUNDING_HOLD_MAX_TTL_SECONDS = 7200

    default = engine.post(URL, hold("O1"), format="json").json()
    too_late = engine.post(URL, hold("O2", expires_at=later(seconds=7300).isoformat()), format="json")
    past = engine.post(URL, hold("O3", expires_at=later(seconds=-1).isoformat()), format="json")

    expires = PrefundingHold.objects.get(order_id="O1").expires_at
    assert timedelta(minutes=59) < expires - timezone.now() <= timedelta(hours=1)
    assert default["expires_at"].endswith("Z")
    assert (too_late.status_code, too_late.json()["field"]) == (400, "expires_at")
    assert (past.status_code, past.json()["field"]) == (400, "expires_at")


def test_holds_are_for_the_engine_key_only(pf):
    pf.fund("SG1", "sg-1", "USDC", "10")
    for scope in ("operator", "operations"):
        client = api_client_for(pf.network.sg1, scope=scope)
        response = client.post(URL, hold(operator="SG1", account="sg-1", asset="USDC", amount="1"), format="json")
        assert response.status_code == 403
    assert not PrefundingHold.objects.exists()


# --- batch ---------------------------------------------------------------------------------------


def test_a_batch_judges_each_item_on_its_own_in_order(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "100.00")
    pf.fund("SG1", "sg-1", "USDC", "5")
    items = [
        hold("A", "60"),
        hold("B", "60"),  # only 40 left after A
        hold("C", "40"),
        {**hold("D", "1"), "amount": 1},  # a JSON number
        hold("A", "60"),  # the same order again, same content: A's answer
        hold("A", "61"),  # other content
        {"order_id": "E", "operator": "SG1", "account": "sg-1", "asset": "USDC", "amount": "5"},
        "not an object",
    ]

    response = engine.post(URL + "/batch", {"holds": items}, format="json")

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["index"] for r in results] == list(range(len(items)))
    outcome = [r.get("result") or r["code"] for r in results]
    assert outcome == [
        "created",
        "insufficient_prefunding",
        "created",
        "number_not_string",
        "duplicate",
        "conflict",
        "created",
        "invalid_item",
    ]
    assert results[0]["available_after"] == "40.00" and results[2]["available_after"] == "0.00"
    assert results[4]["hold_id"] == results[0]["hold_id"]
    assert results[1]["available"] == "40.00"
    assert balance().held == Decimal(100) and balance("SG1", "sg-1", "USDC").held == Decimal(5)
    assert PrefundingHold.objects.count() == 3
    assert HoldEvent.objects.count() == 3


def test_a_batch_takes_1_to_1000_items(pf, engine):
    empty = engine.post(URL + "/batch", {"holds": []}, format="json")
    too_many = engine.post(URL + "/batch", {"holds": [hold(f"O{i}", "1") for i in range(1001)]}, format="json")
    not_a_list = engine.post(URL + "/batch", {"holds": {"order_id": "x"}}, format="json")

    assert (empty.status_code, empty.json()["code"]) == (400, "empty_batch")
    assert (too_many.status_code, too_many.json()["code"]) == (400, "too_many_items")
    assert (not_a_list.status_code, not_a_list.json()["code"]) == (400, "invalid_request")


def test_a_full_batch_of_1000_is_a_handful_of_queries(pf, engine, django_assert_max_num_queries):
    pf.fund("HK1", "pro-1", "HKD", "1000000.00")
    items = [hold(f"O{i}", "1") for i in range(1000)]

    with django_assert_max_num_queries(20):
        response = engine.post(URL + "/batch", {"holds": items}, format="json")

    assert [r["result"] for r in response.json()["results"]] == ["created"] * 1000
    assert balance().held == Decimal(1000)


# --- one hold: GET, PATCH, DELETE ----------------------------------------------------------------


def one(order_id="O1", operator="HK1"):
    return f"{URL}/{operator}/{order_id}"


def test_amend_down_gives_back_to_available_and_never_goes_up(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    engine.post(URL, hold(amount="500"), format="json")

    down = engine.patch(one(), {"amount": "300.00"}, format="json")
    same = engine.patch(one(), {"amount": "300"}, format="json")
    up = engine.patch(one(), {"amount": "301"}, format="json")

    assert down.status_code == 200
    assert (down.json()["amount"], down.json()["remaining"], down.json()["available_after"]) == (
        "300.00",
        "300.00",
        "700.00",
    )
    assert same.status_code == 200 and same.json()["amount"] == "300.00"
    assert (up.status_code, up.json()["field"]) == (400, "amount")
    assert balance().held == Decimal(300)
    assert list(HoldEvent.objects.order_by("id").values_list("kind", "amount")) == [
        ("created", Decimal(500)),
        ("amended", Decimal(200)),
    ]


def test_extend_moves_expiry_later_only_and_within_the_maximum(pf, engine, settings):
    settings.PREFUNDING_HOLD_MAX_TTL_SECONDS = 7200
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    engine.post(URL, hold(expires_at=later(seconds=600).isoformat()), format="json")

    extended = engine.patch(one(), {"expires_at": later(seconds=3600).isoformat()}, format="json")
    earlier = engine.patch(one(), {"expires_at": later(seconds=1800).isoformat()}, format="json")
    beyond = engine.patch(one(), {"expires_at": later(seconds=7300).isoformat()}, format="json")

    assert extended.status_code == 200
    assert (earlier.status_code, earlier.json()["field"]) == (400, "expires_at")
    assert (beyond.status_code, beyond.json()["field"]) == (400, "expires_at")
    assert PrefundingHold.objects.get().expires_at > timezone.now() + timedelta(seconds=3500)


def test_release_gives_back_what_remains_once_however_often_it_is_called(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "1000.00")
    engine.post(URL, hold(amount="400"), format="json")

    first = engine.delete(one())
    second = engine.delete(one())
    amend = engine.patch(one(), {"amount": "100"}, format="json")

    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["status"] == second.json()["status"] == "released"
    assert second.json()["remaining"] == "0.00" and second.json()["available_after"] == "1000.00"
    assert balance().held == 0
    assert HoldEvent.objects.filter(kind="released").count() == 1
    assert (amend.status_code, amend.json()["code"]) == (409, "hold_closed")


def test_an_unknown_hold_is_a_404(pf, engine):
    assert engine.delete(one("nope")).status_code == 404
    assert engine.patch(one("nope"), {"amount": "1"}, format="json").status_code == 404
    assert engine.get(one("nope")).status_code == 404


def test_an_operator_key_reads_its_own_holds_only_and_cannot_change_them(pf, engine, sg1_client):
    pf.fund("SG1", "sg-1", "USDC", "10")
    engine.post(URL, hold(operator="SG1", account="sg-1", asset="USDC", amount="1"), format="json")

    own = sg1_client.get(one(operator="SG1"))
    other = sg1_client.get(one(operator="HK1"))
    release = sg1_client.delete(one(operator="SG1"))

    assert own.status_code == 200 and own.json()["status"] == "held"
    assert other.status_code == 403
    assert release.status_code == 403


def test_an_expired_hold_never_counts_even_before_the_sweep(pf, engine):
    pf.fund("HK1", "pro-1", "HKD", "100.00")
    engine.post(URL, hold("OLD", "100"), format="json")
    PrefundingHold.objects.filter(order_id="OLD").update(expires_at=timezone.now() - timedelta(seconds=1))

    read = engine.get(one("OLD")).json()
    account = engine.get("/api/v1/prefunding/accounts/HK1/pro-1").json()["balances"][0]
    placed = engine.post(URL, hold("NEW", "100"), format="json")

    assert (read["status"], read["remaining"]) == ("expired", "0.00")
    assert (account["held"], account["available"]) == ("0.00", "100.00")
    assert placed.status_code == 201  # the expired hold was swept out of its way
    assert PrefundingHold.objects.get(order_id="OLD").status == "expired"
    assert balance().held == Decimal(100)


def test_the_sweep_expires_holds_past_their_time_and_only_those(pf, engine):
    from settlement.tasks import prefunding_expire_task

    pf.fund("HK1", "pro-1", "HKD", "100.00")
    engine.post(URL, hold("A", "30"), format="json")
    engine.post(URL, hold("B", "30"), format="json")
    PrefundingHold.objects.filter(order_id="A").update(expires_at=timezone.now() - timedelta(seconds=1))

    assert prefunding_expire_task.delay().get() == 1
    assert prefunding_expire_task.delay().get() == 0

    assert dict(PrefundingHold.objects.values_list("order_id", "status")) == {"A": "expired", "B": "held"}
    assert balance().held == Decimal(30)
    assert HoldEvent.objects.filter(kind="expired").count() == 1
