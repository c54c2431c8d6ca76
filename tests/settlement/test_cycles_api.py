"""Cycles, deliveries and the operations API with four eyes (DESIGN section 6)."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from controls.models import ApprovalRequest, AuditEvent
from settlement.models import Leg
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.conftest import api_client_for, staff_client
from tests.factories import trade

pytestmark = pytest.mark.django_db
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


staff = staff_client


@pytest.fixture
def cycle(network):
    trades_ingest(
        items=[{**trade(trade_id="T1"), "executed_at": (MONDAY - timedelta(hours=1)).isoformat()}],
        actor="engine",
        now=MONDAY,
    )
    trades_ingest(
        items=[{**trade(trade_id="T2", sell=("JP1", "j")), "executed_at": (MONDAY - timedelta(hours=1)).isoformat()}],
        actor="engine",
        now=MONDAY,
    )
    return cycle_run(kind="intraday", as_of=MONDAY, actor="test")


def test_get_cycles_and_one_cycle(engine_client, cycle):
    listing = engine_client.get("/api/v1/cycles").json()
    detail = engine_client.get(f"/api/v1/cycles/{cycle.id}").json()

    assert listing["results"][0]["id"] == cycle.id
    assert detail["status"] == "done" and detail["kind"] == "intraday"
    sg1 = next(b for b in detail["batches"] if b["counterparty"] == "SG1")
    assert sg1["status"] == "open" and sg1["dvp_policy"] == "receive_first"
    assert [(leg["asset"], leg["direction"], leg["amount"], leg["status"]) for leg in sg1["legs"]] == [
        ("BTC", "inbound", "1.00000000", "instructed"),
        ("HKD", "outbound", "500000.00", "pending"),
    ]
    assert sg1["legs"][0]["deadline"] == "2026-11-23T03:00:00Z" and sg1["legs"][1]["value_date"] == "2026-11-23"


def test_an_overseas_key_sees_only_its_own_batches(network, cycle):
    detail = api_client_for(network.sg1, scope="operator").get(f"/api/v1/cycles/{cycle.id}").json()
    assert [b["counterparty"] for b in detail["batches"]] == ["SG1"]


def test_unknown_cycle_is_404(engine_client, network):
    assert engine_client.get("/api/v1/cycles/999").json()["code"] == "not_found"


def test_post_cycles_needs_an_operations_key(engine_client, ops_client, network):
    assert engine_client.post("/api/v1/cycles", {"kind": "intraday"}, format="json").status_code == 403
    made = ops_client.post("/api/v1/cycles", {"kind": "intraday"}, format="json")
    again = ops_client.post("/api/v1/cycles", {"kind": "nightly"}, format="json")

    assert made.status_code == 201 and made.json()["kind"] == "intraday"
    assert (again.status_code, again.json()["field"]) == (400, "kind")


@pytest.mark.para(13)
def test_a_counterparty_reports_a_delivery_as_a_hint(network, cycle):
    sg1_client = api_client_for(network.sg1, scope="operator")
    btc = Leg.objects.get(batch__counterparty=network.sg1, asset__code="BTC")
    jp1_leg = Leg.objects.get(batch__counterparty=network.jp1, asset__code="BTC")
    tx = "0x" + "ab" * 32

    first = sg1_client.post(f"/api/v1/legs/{btc.id}/deliveries", {"tx_hash": tx}, format="json")
    again = sg1_client.post(
        f"/api/v1/legs/{btc.id}/deliveries", {"tx_hash": tx.upper().replace("0X", "0x")}, format="json"
    )
    not_mine = sg1_client.post(f"/api/v1/legs/{jp1_leg.id}/deliveries", {"tx_hash": tx}, format="json")
    bad = sg1_client.post(f"/api/v1/legs/{btc.id}/deliveries", {"tx_hash": "0x123"}, format="json")
    both = sg1_client.post(f"/api/v1/legs/{btc.id}/deliveries", {"tx_hash": tx, "bank_reference": "R1"}, format="json")

    assert (first.status_code, again.status_code, not_mine.status_code) == (201, 200, 404)
    assert (bad.status_code, bad.json()["field"]) == (400, "tx_hash")
    assert both.status_code == 400
    btc.refresh_from_db()
    assert btc.status == "instructed"  # a hint never confirms


@pytest.mark.para(13, 23)
def test_manual_confirmation_needs_a_second_person(network, cycle):
    maker, checker, viewer = (
        staff("maker", "ops_operator"),
        staff("checker", "ops_approver"),
        staff("viewer", "ops_viewer"),
    )
    btc = Leg.objects.get(batch__counterparty=network.sg1, asset__code="BTC")

    asked = maker.post(
        f"/api/v1/ops/legs/{btc.id}/confirm", {"evidence": "custodian statement 2026-11-23 #44"}, format="json"
    )
    approval_id = asked.json()["approval_id"]
    self_approval = maker.post(f"/api/v1/ops/approvals/{approval_id}/approve")
    viewer_approval = viewer.post(f"/api/v1/ops/approvals/{approval_id}/approve")
    pending = viewer.get("/api/v1/ops/approvals?status=pending").json()["results"]

    assert asked.status_code == 202
    assert self_approval.status_code == 403  # not an approver (and the requester)
    assert viewer_approval.status_code == 403
    assert [a["approval_id"] for a in pending] == [approval_id]
    btc.refresh_from_db()
    assert btc.status == "instructed"

    approved = checker.post(f"/api/v1/ops/approvals/{approval_id}/approve")

    assert approved.status_code == 200
    assert approved.json()["result"]["leg_status"] == "confirmed"
    btc.refresh_from_db()
    assert (
        btc.status == "confirmed"
        and btc.evidence["approved_by"] == "checker"
        and btc.evidence["requested_by"] == "maker"
    )
    assert Leg.objects.get(batch=btc.batch, asset__code="HKD").status == "instructed"  # receive-first released it
    assert checker.post(f"/api/v1/ops/approvals/{approval_id}/approve").status_code == 409  # decided already


@pytest.mark.para(23)
def test_an_approver_cannot_approve_their_own_request(network, cycle):
    checker = staff("checker", "ops_approver")
    btc = Leg.objects.get(batch__counterparty=network.sg1, asset__code="BTC")
    approval_id = checker.post(f"/api/v1/ops/legs/{btc.id}/confirm", {"evidence": "x"}, format="json").json()[
        "approval_id"
    ]

    response = checker.post(f"/api/v1/ops/approvals/{approval_id}/approve")

    assert (response.status_code, response.json()["code"]) == (403, "four_eyes")


@pytest.mark.para(23)
def test_reject_needs_a_reason_and_changes_nothing(network, cycle):
    maker, checker = staff("maker", "ops_operator"), staff("checker", "ops_approver")
    btc = Leg.objects.get(batch__counterparty=network.sg1, asset__code="BTC")
    approval_id = maker.post(f"/api/v1/ops/legs/{btc.id}/confirm", {"evidence": "x"}, format="json").json()[
        "approval_id"
    ]

    no_reason = checker.post(f"/api/v1/ops/approvals/{approval_id}/reject", {}, format="json")
    rejected = checker.post(
        f"/api/v1/ops/approvals/{approval_id}/reject", {"reason": "statement shows nothing"}, format="json"
    )

    assert no_reason.status_code == 400
    assert rejected.json()["status"] == "rejected"
    btc.refresh_from_db()
    assert btc.status == "instructed"
    assert AuditEvent.objects.filter(action="approval.rejected").count() == 1


@pytest.mark.para(13)
def test_a_pending_leg_cannot_even_be_asked_for(network, cycle):
    maker = staff("maker", "ops_operator")
    hkd = Leg.objects.get(batch__counterparty=network.sg1, asset__code="HKD")

    response = maker.post(f"/api/v1/ops/legs/{hkd.id}/confirm", {"evidence": "x"}, format="json")

    assert (response.status_code, response.json()["code"]) == (409, "leg_not_confirmable")
    assert ApprovalRequest.objects.count() == 0


@pytest.mark.para(14)
def test_ops_run_a_missed_cycle_for_the_time_it_should_have_run(network):
    trades_ingest(
        items=[{**trade(), "executed_at": (MONDAY - timedelta(hours=1)).isoformat()}], actor="engine", now=MONDAY
    )
    maker = staff("maker", "ops_operator")

    response = maker.post("/api/v1/ops/cycles", {"kind": "eod", "as_of": MONDAY.isoformat()}, format="json")
    future = maker.post("/api/v1/ops/cycles", {"kind": "eod", "as_of": "2999-01-01T00:00:00Z"}, format="json")

    assert response.status_code == 201 and response.json()["as_of"] == "2026-11-23T02:00:00Z"
    assert response.json()["obligations_taken"] == 2
    assert future.status_code == 400


@pytest.mark.para(13)
def test_ops_set_a_rail_status(network):
    maker, viewer = staff("maker", "ops_operator"), staff("viewer", "ops_viewer")

    ok = maker.post("/api/v1/ops/rails/eth/status", {"status": "degraded", "reason": "node lagging"}, format="json")
    bad = maker.post("/api/v1/ops/rails/eth/status", {"status": "broken", "reason": "x"}, format="json")
    missing = maker.post("/api/v1/ops/rails/nope/status", {"status": "up", "reason": "x"}, format="json")
    viewer_try = viewer.post("/api/v1/ops/rails/eth/status", {"status": "up", "reason": "x"}, format="json")

    assert ok.json() == {"rail": "eth", "status": "degraded", "reason": "node lagging"}
    assert (bad.status_code, missing.status_code, viewer_try.status_code) == (400, 404, 403)
    assert AuditEvent.objects.filter(action="rail.status", object_id="eth").count() == 1


def test_ops_api_refuses_api_keys_and_anonymous(ops_client, network):
    assert ops_client.get("/api/v1/ops/approvals").status_code == 401
    assert APIClient().get("/api/v1/ops/approvals").status_code == 401


def test_create_staff_user_refuses_a_second_user_of_the_same_name(network):
    from django.core.management.base import CommandError

    staff("maker", "ops_operator")
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_staff_user", "--username", "maker", "--group", "ops_operator")
