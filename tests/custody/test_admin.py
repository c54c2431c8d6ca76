"""The custody back office: the breaks queue (filters, take, resolve with a
note), the instruction outbox exports, and the dashboard's breaks-by-age card."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from custody.models import Break, Instruction
from custody.services.breaks import break_raise
from custody.services.instructions import instructions_write
from settlement.models import Leg

from .test_api import HKT

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, network):
    client.force_login(User.objects.create_superuser("boss", password="x"))
    return client


def raise_break(network, key="k", kind="unmatched_receipt", hours_old=0):
    brk, _ = break_raise(
        key=key,
        kind=kind,
        asset_id=network.usdc.id,
        amount=Decimal(3),
        description=f"{kind} for the admin test",
        actor="test",
        at=timezone.now() - timedelta(hours=hours_old),
    )
    return brk


@pytest.mark.para(12)
def test_the_breaks_queue_filters_by_kind_and_age_and_resolves_with_a_note(admin_client, network):
    old = raise_break(network, key="old", kind="short_delivery", hours_old=30)
    raise_break(network, key="new")

    aged = admin_client.get("/admin/custody/break/?age=24h").content.decode()
    by_kind = admin_client.get("/admin/custody/break/?kind__exact=unmatched_receipt").content.decode()
    admin_client.post(
        "/admin/custody/break/", {"action": "take", "_selected_action": [old.id], "index": 0}, follow=True
    )
    events = list(old.events.values_list("id", flat=True))
    form = {
        "resolution": "SG1 sent the rest off-line",
        "events-TOTAL_FORMS": len(events),
        "events-INITIAL_FORMS": len(events),
        "events-MIN_NUM_FORMS": 0,
        "events-MAX_NUM_FORMS": 1000,
        **{f"events-{n}-id": event for n, event in enumerate(events)},
        **{f"events-{n}-brk": old.id for n in range(len(events))},
    }
    saved = admin_client.post(f"/admin/custody/break/{old.id}/change/", form)
    assert saved.status_code == 302, saved.content.decode()[:2000]

    assert "short_delivery for the admin test" in aged and "unmatched_receipt for the admin test" not in aged
    assert "unmatched_receipt for the admin test" in by_kind and "short_delivery for the admin" not in by_kind
    old.refresh_from_db()
    assert (old.status, old.owner, old.resolution) == ("resolved", "user:boss", "SG1 sent the rest off-line")
    assert list(old.events.values_list("action", flat=True)) == ["opened", "taken", "resolved"]


def test_instructions_export_as_csv_and_json(admin_client, network):
    from datetime import datetime

    from settlement.services.cycles import cycle_run
    from settlement.services.legs import leg_confirm
    from settlement.services.trades import trades_ingest
    from tests.factories import trade

    monday = datetime(2026, 11, 23, 10, 0, tzinfo=HKT)
    item = trade(base="BTC", quote="USDC", price="64000", quantity="1", buy=("SG1", "s"), sell=("HK1", "pro-1"))
    item["executed_at"] = (monday - timedelta(hours=1)).isoformat()
    trades_ingest(items=[item], actor="engine", now=monday - timedelta(minutes=59))
    batch = cycle_run(kind="intraday", as_of=monday, actor="test").batches.get()
    leg_confirm(leg_id=batch.legs.get(direction="inbound").id, evidence={"t": 1}, actor="t", as_of=monday)
    instructions_write(as_of=monday)
    instructions_write(as_of=monday)  # idempotent
    instruction = Instruction.objects.get()
    assert instruction.leg == Leg.objects.get(direction="outbound")

    csv = admin_client.post(
        "/admin/custody/instruction/", {"action": "export_csv", "_selected_action": [instruction.id], "index": 0}
    )
    as_json = admin_client.post(
        "/admin/custody/instruction/", {"action": "export_json", "_selected_action": [instruction.id], "index": 0}
    )

    lines = csv.content.decode().splitlines()
    assert lines[0].startswith("id,reference,leg,counterparty,rail,asset,amount,from,to,deadline")
    assert f"SOB-{batch.id}-{instruction.leg_id}" in lines[1]
    assert json.loads(as_json.content)[0]["amount"] == "1.00000000"


def test_the_dashboard_shows_breaks_by_age(admin_client, network):
    raise_break(network, key="a", hours_old=30)
    raise_break(network, key="b", kind="missing_delivery", hours_old=2)
    resolved = raise_break(network, key="c")
    Break.objects.filter(pk=resolved.pk).update(status="resolved")

    page = admin_client.get("/ops/").content.decode()

    assert "Fails and breaks by age" in page
    assert "missing_delivery: 1" in page and "unmatched_receipt: 1" in page
