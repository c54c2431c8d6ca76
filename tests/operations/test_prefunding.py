"""Prefunding in operations: designated custodian accounts in the network
file, the dashboard's cover card, the records export, the admin pages."""

import csv
import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from controls.exceptions import InvalidInput
from controls.models import ApprovalRequest
from operations.services.network import network_load
from registry.models import BankAccount, Wallet
from settlement.models import PrefundingFreeze, PrefundingHold
from settlement.services.prefunding import freeze_create, hold_release
from tests.settlement.prefunding.conftest import prefunding_network

pytestmark = pytest.mark.django_db
DEMO = Path(__file__).resolve().parents[2] / "demo" / "network.toml"


@pytest.fixture
def pf(db):
    return prefunding_network()


# --- the network file ----------------------------------------------------------------------------


def designate(text: str) -> str:
    """The demo file (which designates each operator's custodian wallet and
    HKD account) with one more SG1 bank account designated."""
    return (
        text
        + '\n[[bank_account]]\noperator = "SG1"\nrail = "hkd-chats"\nnumber = "099-1"\nbank = "Example Bank"\ndesignated = true\n'
    )


@pytest.mark.para(10)
def test_the_network_file_designates_custodian_wallets_and_accounts():
    text = designate(DEMO.read_text(encoding="utf-8"))

    network_load(text=text, actor="test")
    again = network_load(text=text, actor="test")

    designated = Wallet.objects.filter(designated=True).values_list("operator__code", flat=True)
    assert sorted(designated) == ["HK1", "JP1", "SG1"]
    assert BankAccount.objects.get(number="099-1").designated
    assert not BankAccount.objects.get(number="004-100200-838").designated  # omitted: false
    assert not again.changed


def test_a_bad_designated_value_names_the_key_and_line():
    text = designate(DEMO.read_text(encoding="utf-8")).replace("designated = true", 'designated = "yes"', 1)
    with pytest.raises(InvalidInput) as info:
        network_load(text=text, actor="test")
    assert 'key "designated"' in info.value.message and info.value.message.startswith("line ")


# --- dashboard, records, admin -------------------------------------------------------------------


@pytest.mark.para(10)
def test_the_dashboard_shows_cover_per_operator_and_asset_with_its_age(client, pf):
    pf.fund("SG1", "sg-1", "USDC", "100")
    pf.attest("SG1", "USDC", "80")  # a breach
    client.force_login(User.objects.create_user("ops", is_staff=True))

    page = client.get("/ops/").content.decode()

    assert "Prefunding cover by the designated custodians" in page
    assert '<span class="state breach">breach</span>' in page
    assert "-20.000000" in page  # the headroom, at the asset's scale
    assert " s ago (max 15 min)" in page


@pytest.mark.para(22)
def test_export_records_has_every_hold_its_events_funding_and_freezes(pf, tmp_path):
    pf.fund("SG1", "sg-1", "USDC", "100")
    pf.hold("O1", "40", operator="SG1", account="sg-1", asset="USDC")
    hold_release(operator="SG1", order_id="O1", actor="test", now=timezone.now())
    freeze_create(operator="SG1", reason="test", actor="test", now=timezone.now())
    today = timezone.localdate().isoformat()

    out = StringIO()
    call_command("export_records", "--from", today, "--to", today, "--out", str(tmp_path / "x"), "--json", stdout=out)

    manifest = json.loads(out.getvalue())
    read = {
        name: list(csv.DictReader((tmp_path / "x" / f"{name}.csv").open()))
        for name in (
            "prefunding_holds",
            "prefunding_hold_events",
            "prefunding_funding_events",
            "prefunding_freezes",
            "prefunding_attestations",
        )
    }
    hold = read["prefunding_holds"][0]
    assert (hold["order_id"], hold["operator.code"], hold["account"], hold["status"], hold["amount"]) == (
        "O1",
        "SG1",
        "sg-1",
        "released",
        "40.000000",
    )
    assert [e["kind"] for e in read["prefunding_hold_events"]] == ["created", "released"]
    assert read["prefunding_funding_events"][0]["kind"] == "deposit"
    assert read["prefunding_freezes"][0]["operator.code"] == "SG1"
    assert len(read["prefunding_attestations"]) == 8
    assert manifest["files"]["prefunding_hold_events.csv"]["rows"] == 2


def test_the_hold_page_shows_its_events_and_a_freeze_can_be_asked_to_lift(client, pf):
    pf.fund("SG1", "sg-1", "USDC", "100")
    pf.hold("O1", "40", operator="SG1", account="sg-1", asset="USDC")
    freeze = freeze_create(operator="SG1", actor="test", now=timezone.now() - timedelta(seconds=1))
    user = User.objects.create_user("olga", is_staff=True, is_superuser=True)
    user.groups.add(Group.objects.get(name="ops_operator"))
    client.force_login(user)

    hold = PrefundingHold.objects.get()
    page = client.get(reverse("admin:settlement_prefundinghold_change", args=[hold.id])).content.decode()
    for model in ("prefundingbalance", "prefundinghold", "fundingevent", "prefundingcover", "prefundingfreeze"):
        assert client.get(reverse(f"admin:settlement_{model}_changelist")).status_code == 200
    client.post(
        reverse("admin:settlement_prefundingfreeze_changelist"),
        {"action": "ask_to_lift", "_selected_action": [freeze.id]},
    )

    assert "created" in page and "40.000000" in page
    approval = ApprovalRequest.objects.get()
    assert (approval.kind, approval.payload["freeze_id"]) == ("prefunding_lift", freeze.id)
    assert PrefundingFreeze.objects.get().status == "active"  # until a second person approves
