import pytest
from django.contrib.auth.models import User

from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db


def test_the_site_root_and_the_admins_view_site_open_the_dashboard(client, network):
    assert client.get("/")["Location"] == "/ops/"
    client.force_login(User.objects.create_superuser("root-admin", "r@example.invalid", "pw-root-1"))
    assert 'href="/ops/"' in client.get("/admin/").content.decode()


def test_dashboard_needs_a_staff_login(client, network):
    response = client.get("/ops/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.para(15)
def test_dashboard_shows_state_counterparties_and_queues(client, network):
    trades_ingest(items=[trade(quantity="170"), trade(base="DOGE")], actor="test")  # settling, one rejection
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/").content.decode()

    assert '<section id="banner" class="banner settling"' in page
    assert "85,000,000.00 HKD of an effective cap of 100,000,000.00 HKD (85.0 %)" in page
    assert "SG1" in page and "JP1" in page
    assert "unknown_asset" in page


def test_dashboard_shows_batches_and_the_reserve(client, network):
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from settlement.services.cycles import cycle_run

    at = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))
    trades_ingest(items=[{**trade(), "executed_at": (at - timedelta(hours=1)).isoformat()}], actor="test", now=at)
    cycle_run(kind="intraday", as_of=at, actor="test")
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/").content.decode()

    assert "inbound 1 BTC: <b>instructed</b>" in page and "outbound 500,000 HKD: <b>pending</b>" in page
    assert "fund 120,000,000.00 HKD &middot; coverage of the cap 1.20x" in page


@pytest.mark.para(15)
def test_dashboard_draws_exposure_through_the_day(client, network):
    from django.utils import timezone

    from reserves.services.monitoring import exposure_snapshot_take

    now = timezone.now()
    exposure_snapshot_take(now=now - timezone.timedelta(minutes=2))
    exposure_snapshot_take(now=now - timezone.timedelta(minutes=1))
    client.force_login(User.objects.create_user("ops", is_staff=True))

    day = client.get("/ops/data.json").json()["day"]

    # two snapshots and the live figure, on an axis from the first sample (at most 30 min back) to now
    assert day["samples"] == 3
    exposure = next(s for s in day["datasets"] if s["key"] == "total_hkd")
    assert len(exposure["data"]) == 3
    # exposure with haircuts (what the cap checks) and at plain marks, under the cap and its thresholds
    assert {s["key"] for s in day["datasets"]} == {
        "total_hkd",
        "total_at_marks_hkd",
        "cap",
        "warn_at",
        "settle_at",
        "halt_at",
    }
    warn = next(s for s in day["datasets"] if s["key"] == "warn_at")
    assert warn["data"][0]["y"] == 70_000_000.0  # 0.70 of the effective cap
    span_minutes = (day["end"] - day["start"]) / 60_000
    assert 30 <= span_minutes <= 33  # not a whole day: the samples fill the chart


@pytest.mark.para(15)
def test_a_counterparty_over_its_limit_stands_out(client, network):
    network.sg1.limit_hkd = 40_000_000
    network.sg1.save()
    trades_ingest(items=[trade(quantity="120")], actor="test")  # SG1 owes 60,000,000 HKD of BTC
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/tables").content.decode()
    data = client.get("/ops/data.json").json()["counterparties"]

    row = page[page.index('<tr class="over-limit">') :]
    assert row.index("SG1") < row.index("over limit") < row.index("60,000,000.00") < row.index("150 %")
    assert page.count('class="over-limit"') == 1
    assert dict(zip(data["labels"], data["over"], strict=True)) == {"JP1": False, "SG1": True}


@pytest.mark.para(15, 23)
def test_pending_approvals_say_what_they_would_do(client, network):
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from controls.services.approvals import approval_request

    asker = User.objects.create_user("alice", is_staff=True)
    asker.groups.add(Group.objects.get(name="ops_operator"))
    approval_request(
        kind="default", payload={"operator": "SG1", "reason": "missed three batches"}, user=asker, now=timezone.now()
    )
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/").content.decode()

    assert "declare SG1 in default: suspend it and close out its 0 unsettled obligation(s)" in page
    assert "reason: missed three batches" in page and "alice" in page
    assert "{&quot;operator&quot;" not in page and '{"operator"' not in page.split("dashboard-data")[0]


def test_the_charts_data_and_tables_need_a_staff_login(client, network):
    for url in ("/ops/data.json", "/ops/tables"):
        answer = client.get(url)
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
