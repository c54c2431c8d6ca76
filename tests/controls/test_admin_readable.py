"""The admin as an operations team reads it (issue 14): amounts at their
asset's scale with thousands separators, codes instead of ids, Hong Kong
time with UTC on hover, and approvals that say what they would do."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth.models import Group, User
from django.utils import timezone

from controls.services.approvals import approval_request
from settlement.models import Batch, Leg
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


@pytest.fixture
def settled_day(network):
    item = trade(quantity="0.5", price="128000.5", quote="HKD", sell=("SG1", "c"))
    trades_ingest(items=[{**item, "executed_at": (MONDAY - timedelta(hours=1)).isoformat()}], actor="t", now=MONDAY)
    return cycle_run(kind="intraday", as_of=MONDAY, actor="test")


def test_lists_show_amounts_at_scale_codes_and_hong_kong_time(admin_client, settled_day):
    legs = admin_client.get("/admin/settlement/leg/").content.decode()
    batches = admin_client.get("/admin/settlement/batch/").content.decode()

    assert "0.50000000 BTC" in legs and "64,000.25 HKD" in legs
    assert "000000000000" not in legs  # never the 18 decimals of storage
    assert "2026-11-23 10:00:00 HKT" in legs or "HKT" in legs
    assert "intraday cycle 2026-11-23 10:00 HKT" in batches
    assert 'title="2026-11-23 02:00:00 UTC"' in batches  # made at 10:00 HKT: UTC on hover
    assert ">SG1<" in batches


def test_every_str_names_codes_not_ids(settled_day):
    leg = Leg.objects.filter(asset__code="HKD").get()
    batch = Batch.objects.get()

    assert str(leg) == f"leg {leg.id} outbound 64,000.25 HKD (pending)"
    assert str(batch) == f"batch {batch.id} SG1 (open)"


@pytest.mark.para(23)
def test_an_approval_says_what_it_would_do_from_what_to_what(admin_client, settled_day):
    asker = User.objects.create_user("alice", is_staff=True)
    asker.groups.add(Group.objects.get(name="ops_operator"))
    leg = Leg.objects.filter(asset__code="BTC").get()
    approval = approval_request(
        kind="leg_confirm", payload={"leg_id": leg.id, "evidence": "call-back ref CB-1"}, user=asker, now=timezone.now()
    )
    cap = approval_request(kind="cap_change", payload={"total_hkd": "90000000"}, user=asker, now=timezone.now())

    page = admin_client.get(f"/admin/controls/approvalrequest/{approval.id}/change/").content.decode()
    listing = admin_client.get("/admin/controls/approvalrequest/").content.decode()
    cap_page = admin_client.get(f"/admin/controls/approvalrequest/{cap.id}/change/").content.decode()

    expected = f"confirm by hand the inbound leg of 0.50000000 BTC from SG1 (batch {leg.batch_id}, intraday cycle of 2026-11-23 10:00 HKT"
    assert expected in page and "evidence: call-back ref CB-1" in page
    assert expected in listing
    assert "change the unsettled cap: total (HKD): 100,000,000.00 -&gt; 90,000,000.00" in cap_page
    assert "alice" in page and "HKT" in page
