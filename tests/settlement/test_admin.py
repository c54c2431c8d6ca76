"""Every admin page operations use loads, and admin actions go through the services."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.urls import reverse

from controls.models import ApprovalRequest
from settlement.models import Leg
from settlement.services.cycles import cycle_run
from settlement.services.trades import trades_ingest
from tests.factories import trade

pytestmark = pytest.mark.django_db
MONDAY = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong"))


@pytest.fixture
def populated(network):
    trades_ingest(
        items=[{**trade(), "executed_at": (MONDAY - timedelta(hours=1)).isoformat()}, trade(base="DOGE")],
        actor="engine",
        now=MONDAY,
    )
    return cycle_run(kind="intraday", as_of=MONDAY, actor="test")


def ops_user(name: str, group: str) -> User:
    user = User.objects.create_user(name, is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    return user


def test_every_changelist_and_change_page_loads(client, populated):
    client.force_login(User.objects.create_superuser("root"))
    for model, _ in admin.site._registry.items():
        meta = model._meta
        listing = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist"))
        assert listing.status_code == 200, meta.label
        first = model._default_manager.first()
        if first is not None:
            page = client.get(reverse(f"admin:{meta.app_label}_{meta.model_name}_change", args=[first.pk]))
            assert page.status_code == 200, meta.label


def test_an_ops_viewer_can_read_but_not_change(client, populated):
    client.force_login(ops_user("viewer", "ops_viewer"))
    assert client.get(reverse("admin:settlement_trade_changelist")).status_code == 200
    assert client.get(reverse("admin:registry_operator_add")).status_code == 403


@pytest.mark.para(13, 23)
def test_admin_four_eyes_for_a_manual_leg_confirmation(client, populated):
    maker, checker = ops_user("maker", "ops_operator"), ops_user("checker", "ops_approver")
    leg = Leg.objects.get(asset__code="BTC")

    client.force_login(maker)
    client.post(
        reverse("admin:settlement_leg_changelist"),
        {"action": "request_manual_confirmation", "_selected_action": [leg.id]},
    )
    approval = ApprovalRequest.objects.get()
    client.post(
        reverse("admin:controls_approvalrequest_changelist"), {"action": "approve", "_selected_action": [approval.id]}
    )
    approval.refresh_from_db()
    assert approval.status == "pending"  # a maker is not an approver

    client.force_login(checker)
    client.post(
        reverse("admin:controls_approvalrequest_changelist"), {"action": "approve", "_selected_action": [approval.id]}
    )

    approval.refresh_from_db()
    leg.refresh_from_db()
    assert (approval.status, leg.status) == ("approved", "confirmed")
