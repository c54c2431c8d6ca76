"""The DVP endpoints of DESIGN section 6 and 7: the counterparty lists,
affirms and disputes its own batches; operations hold and release a batch
and exclude a counterparty at once, taking it back with four eyes."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from custody.models import Break
from settlement.models import Batch
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.conftest import api_client_for, staff_client
from tests.factories import trade

pytestmark = [pytest.mark.django_db, pytest.mark.para(13)]
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


@pytest.fixture
def batches(network) -> dict[str, Batch]:
    items = [trade(trade_id="T1"), trade(trade_id="T2", sell=("JP1", "j"))]
    at = (MONDAY - timedelta(hours=1)).isoformat()
    trades_ingest(items=[{**item, "executed_at": at} for item in items], actor="engine", now=MONDAY)
    cycle = cycle_run(kind="intraday", as_of=MONDAY, actor="test")
    return {b.counterparty.code: b for b in cycle.batches.select_related("counterparty")}


def test_a_counterparty_lists_only_its_own_batches_by_status(network, batches):
    sg1 = api_client_for(network.sg1, scope="operator")

    listed = sg1.get("/api/v1/batches?status=open").json()["results"]

    assert [(b["id"], b["counterparty"], b["affirmation"]) for b in listed] == [
        (batches["SG1"].id, "SG1", "not_required")
    ]
    assert {leg["asset"] for leg in listed[0]["legs"]} == {"BTC", "HKD"}
    assert sg1.get("/api/v1/batches?status=settled").json()["results"] == []
    bad = sg1.get("/api/v1/batches?status=lost")
    assert (bad.status_code, bad.json()["field"]) == (400, "status")


def test_listing_batches_costs_the_same_queries_however_many_there_are(network, batches, django_assert_max_num_queries):
    for hour in range(1, 6):
        at = MONDAY + timedelta(hours=hour)
        trades_ingest(items=[{**trade(), "executed_at": at.isoformat()}], actor="engine", now=at)
        cycle_run(kind="intraday", as_of=at + timedelta(minutes=1), actor="test")
    ops = api_client_for(network.home, scope="operations")

    with django_assert_max_num_queries(12):
        listed = ops.get("/api/v1/batches").json()["results"]

    assert len(listed) == 7 and all(len(b["legs"]) == 2 and b["obligations"] == 2 for b in listed)


def test_affirm_and_dispute_answer_for_the_own_batch_only(network, batches):
    sg1 = api_client_for(network.sg1, scope="operator")

    assert sg1.post(f"/api/v1/batches/{batches['JP1'].id}/affirm").status_code == 404
    affirmed = sg1.post(f"/api/v1/batches/{batches['SG1'].id}/affirm")
    assert (affirmed.status_code, affirmed.json()["affirmation"]) == (200, "affirmed")
    assert sg1.post(f"/api/v1/batches/{batches['SG1'].id}/affirm").status_code == 200  # again: unchanged


def test_a_dispute_needs_a_reason_and_holds_the_batch(network, batches):
    sg1 = api_client_for(network.sg1, scope="operator")
    url = f"/api/v1/batches/{batches['SG1'].id}/dispute"

    missing = sg1.post(url, {}, format="json")
    assert (missing.status_code, missing.json()["field"]) == (400, "reason")
    disputed = sg1.post(url, {"reason": "T1 is not ours"}, format="json")

    body = disputed.json()
    assert (disputed.status_code, body["affirmation"], body["held"]) == (200, "disputed", True)
    assert body["dispute_reason"] == "T1 is not ours"
    assert Break.objects.filter(kind="batch_disputed", counterparty=network.sg1).count() == 1


def test_operations_hold_and_release_a_batch(batches):
    olga = staff_client("olga", "ops_operator")
    url = f"/api/v1/ops/batches/{batches['SG1'].id}"

    assert olga.post(f"{url}/hold", {}, format="json").json()["field"] == "reason"
    held = olga.post(f"{url}/hold", {"reason": "wallet migration at SG1"}, format="json").json()
    assert (held["held"], held["hold_reason"]) == (True, "wallet migration at SG1")
    released = olga.post(f"{url}/release", {"reason": "done"}, format="json").json()
    assert (released["held"], released["status"]) == (False, "open")
    assert olga.post("/api/v1/ops/batches/999999/hold", {"reason": "x"}, format="json").status_code == 404


@pytest.mark.para(9)
def test_exclude_at_once_and_include_with_four_eyes(network, batches):
    olga, pat = staff_client("olga", "ops_operator"), staff_client("pat", "ops_approver")

    excluded = olga.post("/api/v1/ops/counterparties/SG1/exclude", {"reason": "screening"}, format="json")
    assert (excluded.status_code, excluded.json()["status"]) == (201, "active")
    assert olga.post("/api/v1/ops/counterparties/SG1/exclude", {"reason": "x"}, format="json").status_code == 200
    assert olga.post("/api/v1/ops/counterparties/XX9/exclude", {"reason": "x"}, format="json").status_code == 404

    asked = olga.post("/api/v1/ops/counterparties/SG1/include", {"reason": "cleared"}, format="json")
    assert asked.status_code == 202
    assert olga.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve").status_code in (403, 409)
    approved = pat.post(f"/api/v1/ops/approvals/{asked.json()['approval_id']}/approve")
    assert approved.status_code == 200
    assert olga.post("/api/v1/ops/counterparties/SG1/include", {}, format="json").status_code == 409
