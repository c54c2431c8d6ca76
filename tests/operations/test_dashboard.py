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

    assert "settling" in page
    assert "85,000,000.00 HKD of 100,000,000.00 HKD (85.00%)" in page
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
    assert "fund 120,000,000.00 HKD against a cap of 100,000,000.00 HKD" in page


@pytest.mark.para(15)
def test_dashboard_draws_exposure_through_the_day(client, network):
    from django.utils import timezone

    from reserves.services.monitoring import exposure_snapshot_take

    now = timezone.now()
    exposure_snapshot_take(now=now - timezone.timedelta(minutes=2))
    exposure_snapshot_take(now=now - timezone.timedelta(minutes=1))
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/").content.decode()

    assert 'aria-label="exposure today"' in page and "over 2 snapshots" in page
