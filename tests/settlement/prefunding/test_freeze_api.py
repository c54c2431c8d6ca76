"""POST /ops/prefunding/freeze (at once) and .../freeze/{id}/lift (four eyes)."""

from decimal import Decimal

import pytest

from controls.models import AuditEvent
from settlement.models import PrefundingBalance, PrefundingFreeze, PrefundingHold
from tests.conftest import staff_client

pytestmark = [pytest.mark.django_db, pytest.mark.para(10)]

FREEZE = "/api/v1/ops/prefunding/freeze"
HOLDS = "/api/v1/prefunding/holds"


def hold(order_id, amount="10", account="pro-1", asset="HKD"):
    return {"order_id": order_id, "operator": "HK1", "account": account, "asset": asset, "amount": amount}


@pytest.fixture
def alice():
    return staff_client("alice", "ops_operator")


@pytest.fixture
def bob():
    return staff_client("bob", "ops_approver")


def test_a_freeze_of_an_operator_takes_effect_at_once_for_all_its_accounts(pf, engine, alice):
    pf.fund("HK1", "pro-1", "HKD", "100")
    pf.fund("HK1", "retail-in", "USDC", "100")

    response = alice.post(FREEZE, {"operator": "HK1", "reason": "custodian incident"}, format="json")

    assert response.status_code == 201
    body = response.json()
    assert (body["operator"], body["account"], body["asset"], body["status"]) == ("HK1", None, None, "active")
    assert isinstance(body["freeze_id"], int)
    for item in (hold("A"), hold("B", account="retail-in", asset="USDC")):
        refused = engine.post(HOLDS, item, format="json")
        assert (refused.status_code, refused.json()["code"]) == (409, "account_frozen")
    assert AuditEvent.objects.filter(action="prefunding.frozen").exists()


def test_a_freeze_of_one_asset_leaves_the_others_alone(pf, engine, alice):
    pf.fund("HK1", "pro-1", "HKD", "100")
    pf.fund("HK1", "pro-1", "USDC", "100")

    alice.post(FREEZE, {"operator": "HK1", "asset": "USDC"}, format="json")

    assert engine.post(HOLDS, hold("A", asset="USDC"), format="json").json()["code"] == "account_frozen"
    assert engine.post(HOLDS, hold("B"), format="json").status_code == 201


def test_a_freeze_can_release_the_open_holds_in_its_scope(pf, engine, alice):
    pf.fund("HK1", "pro-1", "HKD", "100")
    pf.fund("HK1", "retail-in", "HKD", "100")
    engine.post(HOLDS, hold("A", "30"), format="json")
    engine.post(HOLDS, hold("B", "40", account="retail-in"), format="json")

    response = alice.post(FREEZE, {"operator": "HK1", "account": "pro-1", "release_open_holds": True}, format="json")

    assert response.json()["released_holds"] == 1
    assert dict(PrefundingHold.objects.values_list("order_id", "status")) == {"A": "released", "B": "held"}
    assert PrefundingBalance.objects.get(account="pro-1", asset__code="HKD").held == Decimal(0)


def test_lifting_needs_a_second_person(pf, engine, alice, bob):
    pf.fund("HK1", "pro-1", "HKD", "100")
    freeze_id = alice.post(FREEZE, {"operator": "HK1", "account": "pro-1"}, format="json").json()["freeze_id"]

    asked = alice.post(f"{FREEZE}/{freeze_id}/lift", {"reason": "incident closed"}, format="json")
    approval_id = asked.json()["approval_id"]
    own = alice.post(f"/api/v1/ops/approvals/{approval_id}/approve", {}, format="json")
    still_frozen = engine.post(HOLDS, hold("A"), format="json")
    approved = bob.post(f"/api/v1/ops/approvals/{approval_id}/approve", {}, format="json")

    assert asked.status_code == 202
    assert (asked.json()["kind"], asked.json()["status"]) == ("prefunding_lift", "pending")
    assert own.status_code == 403
    assert still_frozen.json()["code"] == "account_frozen"
    assert approved.status_code == 200 and approved.json()["result"] == {"freeze_id": freeze_id, "status": "lifted"}
    freeze = PrefundingFreeze.objects.get()
    assert (freeze.status, freeze.lifted_by) == ("lifted", "user:bob")
    assert engine.post(HOLDS, hold("A"), format="json").status_code == 201


def test_lifting_a_lifted_or_unknown_freeze_is_refused(pf, alice, bob):
    freeze_id = alice.post(FREEZE, {"operator": "HK1"}, format="json").json()["freeze_id"]
    approval_id = alice.post(f"{FREEZE}/{freeze_id}/lift", {}, format="json").json()["approval_id"]
    bob.post(f"/api/v1/ops/approvals/{approval_id}/approve", {}, format="json")

    again = alice.post(f"{FREEZE}/{freeze_id}/lift", {}, format="json")
    unknown = alice.post(f"{FREEZE}/999999/lift", {}, format="json")

    assert (again.status_code, again.json()["code"]) == (409, "freeze_lifted")
    assert unknown.status_code == 404


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({}, 400, "operator"),
        ({"operator": "ZZ9"}, 400, "operator"),
        ({"operator": "HK1", "asset": "DOGE"}, 400, "asset"),
        ({"operator": "HK1", "release_open_holds": "yes"}, 400, "release_open_holds"),
    ],
)
def test_bad_freeze_input_is_a_400(pf, alice, body, status, field):
    response = alice.post(FREEZE, body, format="json")
    assert (response.status_code, response.json()["field"]) == (status, field)


def test_viewers_and_api_keys_cannot_freeze(pf, engine):
    viewer = staff_client("victor", "ops_viewer")
    assert viewer.post(FREEZE, {"operator": "HK1"}, format="json").status_code == 403
    assert engine.post(FREEZE, {"operator": "HK1"}, format="json").status_code in (401, 403)
    assert viewer.get("/api/v1/ops/prefunding/freezes").status_code == 200
    assert not PrefundingFreeze.objects.exists()
